import t from 'tap';
import { runAdminCommand, UsageError } from '../../src/cli/admin.ts';
import { call, createCredential, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { sessionHeaders } from '../dashboard-helper.ts';
import { buildStack, createOrganization, keysMatching } from '../helper.ts';

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
