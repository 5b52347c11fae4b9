import t from 'tap';
import { runAdminCommand, UsageError } from '../../src/cli/admin.ts';
import { call, createCredential, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { manualClock, sessionHeaders } from '../dashboard-helper.ts';
import { build, buildStack, createOrganization, keysMatching } from '../helper.ts';
import { waitFor } from '../process-helper.ts';
import { SWEEPS_AFTER_REMOVAL_MS } from '../../src/services/organization-removal.ts';
import { startCredentialReconciler } from '../../workers/reconciler.ts';

t.test('delete-org removes everything of the organization, ends its access at once, and leaves the others alone', async (t) => {
  const stack = await buildStack(t);
  const { app, config, org } = stack;
  const { redis, keys } = app.services.ctx;
  const other = { ...stack, org: await createOrganization(app, 'Other org') };

  const connected = await waitForCredential(stack, (await createCredential(stack, 'pass_good')).id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  // One with an open challenge: timers and a login state of its own.
  await waitForCredential(stack, (await createCredential(stack, 'pass_mfa')).id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  // Loopback, and for an event type nothing here sends: no delivery runs.
  t.equal((await call(stack, 'POST', '/plug/webhooks/endpoints', { url: 'http://127.0.0.1:9/plugboard', eventTypes: ['webhook.test'] })).statusCode, 201);
  const kept = await waitForCredential(other, (await createCredential(other, 'pass_good')).id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const dashboard = await sessionHeaders(app, org.email, org.password);
  const held = await keysMatching(redis, keys.org(org.organizationId).everyKey);
  t.ok(held.some((key) => key.endsWith(':secrets')) && held.some((key) => key.includes(':whe:')) && held.some((key) => key.endsWith(':events')), 'the organization holds data');

  await t.rejects(runAdminCommand(config, ['delete-org', '--org', org.organizationId, '--confirm', other.org.organizationId]), UsageError, 'the id must be given twice');
  await t.rejects(runAdminCommand(config, ['delete-org', '--org', 'org_*', '--confirm', 'org_*']), { message: 'Organization not found' }, 'no pattern gets into the scan');
  const removed = (await runAdminCommand(config, ['delete-org', '--org', org.organizationId, '--confirm', org.organizationId])) as Record<string, unknown>;
  t.match(removed, { organizationId: org.organizationId, apiKeysRevoked: 1, usersRemoved: 1 });
  t.ok((removed.keysDeleted as number) > 0, 'and says how many keys went');

  t.same(await keysMatching(redis, keys.org(org.organizationId).everyKey), [], 'no key of it is left');
  t.equal(await redis.sismember(keys.organizations, org.organizationId), 0, 'the reconcilers no longer visit it');
  t.equal(await redis.exists(keys.clientId(org.clientId)), 0, 'nor its client id');
  t.equal(await redis.exists(keys.userEmail(org.email)), 0, "nor its users' emails");
  t.equal((await call(stack, 'GET', `/plug/credentials/${connected.id}`)).statusCode, 401, 'its access tokens stop working');
  t.equal((await app.inject({ url: '/dashboard/me', headers: dashboard })).statusCode, 401, 'its dashboard sessions too');
  t.equal((await app.inject({ method: 'POST', url: '/oauth2/token', payload: { grant_type: 'client_credentials', client_id: org.clientId, client_secret: org.clientSecret } })).statusCode, 401);
  t.match((await call(other, 'GET', `/plug/credentials/${kept.id}`)).body, { id: kept.id, status: 'CONNECTION_SUCCESS' }, 'another organization is untouched');
  t.ok(await app.services.organizations.createOrganization({ name: 'Again', email: org.email, password: org.password }), 'the email can sign up again');
  await t.rejects(runAdminCommand(config, ['delete-org', '--org', org.organizationId, '--confirm', org.organizationId]), { message: 'Organization not found' });
});

t.test('keys written after the removal by work that was in flight are swept again by the reconciler, twice', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now, env: { RECONCILE_INTERVAL_SECONDS: '1' } });
  const org = await createOrganization(app);
  const { redis, keys } = app.services.ctx;
  const { organizationRemoval } = app.services;
  const orgKeys = keys.org(org.organizationId);
  // What a request authenticated just before the revocation, or a delivery being answered, writes afterwards.
  const writeLate = () => Promise.all([redis.set(orgKeys.credential('crd_late'), 'late'), redis.set(orgKeys.webhookEndpointHealth('whe_late'), 'late')]);

  await organizationRemoval.remove(org.organizationId);
  t.same(
    await redis.zrange(keys.organizationSweepsDue, 0, -1, 'WITHSCORES'),
    SWEEPS_AFTER_REMOVAL_MS.flatMap((delayMs, index) => [`${org.organizationId}@${index + 1}`, String(clock.now().getTime() + delayMs)]),
    'the later sweeps are booked (before the first ran: a removal cut short is finished by them)',
  );
  await writeLate();
  t.same(await organizationRemoval.sweepDue(), { sweeps: 0, keysDeleted: 0 }, 'not due yet');
  t.equal((await keysMatching(redis, orgKeys.everyKey)).length, 2);

  const reconciler = startCredentialReconciler(app.container);
  t.teardown(() => reconciler.close());
  clock.advance(SWEEPS_AFTER_REMOVAL_MS[0]);
  await waitFor('the first later sweep', async () => ((await keysMatching(redis, orgKeys.everyKey)).length === 0 ? true : undefined), 10_000);
  t.equal(await redis.zcard(keys.organizationSweepsDue), 1, 'one sweep to go');
  // The last sweep is run by hand below, not by a pass of the reconciler.
  await reconciler.close();

  await writeLate();
  clock.advance(SWEEPS_AFTER_REMOVAL_MS[1]);
  t.same(await organizationRemoval.sweepDue(), { sweeps: 1, keysDeleted: 2 });
  t.same(await keysMatching(redis, orgKeys.everyKey), [], 'nothing of it is left');
  t.equal(await redis.zcard(keys.organizationSweepsDue), 0, 'and no sweep is booked any more');
});
