import { UnrecoverableError, Worker } from 'bullmq';
import t from 'tap';
import { workFor } from '../../src/domain/credential-jobs.ts';
import type { CredentialRecord, CredentialView } from '../../src/domain/credential-state.ts';
import { newId } from '../../src/ids.ts';
import { QUEUE_NAMES } from '../../src/queues.ts';
import { workerOptions } from '../../workers/worker-options.ts';
import { call, connectWithMfa, createCredential, describe, eventsOf, hasDetail, mfaOf, storedRecord, waitForCredential } from '../credentials-helper.ts';
import { buildStack, createOrganization, build } from '../helper.ts';
import { waitFor } from '../process-helper.ts';

t.test('pass_good connects and finds two accounts', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_good', { correlationId: 'customer-42' });
  t.match(created, { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS', correlationId: 'customer-42', mfa: null });
  t.notOk('password' in created, 'the password is never returned');

  const connected = await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  t.match(connected, { status: 'CONNECTION_SUCCESS', isAccessible: true, isCustomerActionRequired: false, mfaSession: null });
  t.ok(connected.lastSyncedAt && connected.nextSyncAt, 'sync times are set');

  type AccountPage = { data: { id: string; type: string; credentialId: string; createdAt: string }[]; page: object };
  const accounts = await call<AccountPage>(stack, 'GET', `/plug/credentials/${created.id}/accounts`);
  t.equal(accounts.statusCode, 200);
  t.same(accounts.body.data.map((account) => account.type).sort(), ['ELECTRIC', 'GAS']);
  t.same(accounts.body.page, { number: 0, size: 20, totalElements: 2, totalPages: 1 }, 'a list in SPEC §1 pages');
  const [oldest, newest] = accounts.body.data;
  t.ok(oldest && newest && `${oldest.createdAt}${oldest.id}` < `${newest.createdAt}${newest.id}`, 'oldest first by default');
  const second = await call<AccountPage>(stack, 'GET', `/plug/credentials/${created.id}/accounts?size=1&page=1`);
  t.same(second.body.data.map((account) => account.id), [newest?.id]);
  const newestFirst = await call<AccountPage>(stack, 'GET', `/plug/credentials/${created.id}/accounts?sort=createdAt,desc`);
  t.same(newestFirst.body.data.map((account) => account.id), [newest?.id, oldest?.id]);
  t.equal((await call(stack, 'GET', `/plug/credentials/${created.id}/accounts?sort=name`)).statusCode, 400);
  for (const account of accounts.body.data) t.match(account, { id: /^acc_/, credentialId: created.id });
  const one = await call(stack, 'GET', `/plug/accounts/${accounts.body.data[0]?.id}`);
  t.equal(one.statusCode, 200);
  const all = await call<{ data: unknown[]; page: { totalElements: number } }>(stack, 'GET', '/plug/accounts?size=1');
  t.match(all.body, { page: { number: 0, size: 1, totalElements: 2, totalPages: 2 } });

  t.same(describe(await eventsOf(stack, created.id)), ['created', '→ LOGIN_AND_DATA_DISCOVERY_SUCCESS', 'connected']);
});

t.test('pass_bad, pass_locked and pass_flaky end where SPEC §3 says', async (t) => {
  const stack = await buildStack(t);
  const bad = await createCredential(stack, 'pass_bad');
  const locked = await createCredential(stack, 'pass_locked');
  const flaky = await createCredential(stack, 'pass_flaky');

  t.match(await waitForCredential(stack, bad.id, hasDetail('INVALID_CREDENTIALS')), { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true });
  t.match(await waitForCredential(stack, locked.id, hasDetail('OTHER_ACCESS_LIMITATION')), { status: 'CONNECTION_FAILURE' });
  await waitForCredential(stack, flaky.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const flakyEvents = describe(await eventsOf(stack, flaky.id));
  t.same(flakyEvents, ['created', '→ PROVIDER_WEBSITE_INACCESSIBLE', '→ LOGIN_AND_DATA_DISCOVERY_SUCCESS', 'connected'], 'the outage shows, once');
});

t.test('a login out of quick retries is tried again at nextSyncAt until the provider answers', async (t) => {
  // One try per round, a second apart: pass_flaky answers 503 twice, then logs in.
  const stack = await buildStack(t, { env: { PROVIDER_RETRY_ATTEMPTS: '1', PROVIDER_OUTAGE_RETRY_SECONDS: '1' } });
  const flaky = await createCredential(stack, 'pass_flaky');
  const waiting = await waitForCredential(stack, flaky.id, (credential) => credential.nextSyncAt !== null && credential.statusDetail === 'PROVIDER_WEBSITE_INACCESSIBLE');
  t.match(waiting, { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: false, statusMessage: /trying again at nextSyncAt/ });
  t.ok(Date.parse(waiting.nextSyncAt ?? '') - Date.parse(waiting.lastModifiedAt) <= 1_000, 'the next try is PROVIDER_OUTAGE_RETRY_SECONDS away');
  const connected = await waitForCredential(stack, flaky.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'), 15_000);
  t.ok(connected.nextSyncAt && Date.parse(connected.nextSyncAt) - Date.now() > 3_600_000, 'then the daily sync takes over');
  t.same(
    describe(await eventsOf(stack, flaky.id)),
    ['created', '→ PROVIDER_WEBSITE_INACCESSIBLE', '→ LOGIN_AND_DATA_DISCOVERY_SUCCESS', 'connected'],
    'the tries in between are the same outage: no status change each time',
  );
});

t.test('the credentials API: list filters and pages, PATCH, disable, delete, tenants', async (t) => {
  const stack = await buildStack(t);
  const good = await createCredential(stack, 'pass_good', { correlationId: 'a' });
  const bad = await createCredential(stack, 'pass_bad', { correlationId: 'b' });
  await waitForCredential(stack, good.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  await waitForCredential(stack, bad.id, hasDetail('INVALID_CREDENTIALS'));

  type Page = { data: CredentialView[]; page: { number: number; size: number; totalElements: number; totalPages: number } };
  const list = (query: string) => call<Page>(stack, 'GET', `/plug/credentials?${query}`);
  t.same((await list('sort=createdAt,asc')).body.data.map((c) => c.id), [good.id, bad.id]);
  t.same((await list('')).body.data.map((c) => c.id), [bad.id, good.id], 'newest first by default');
  t.same((await list('status=CONNECTION_FAILURE')).body.data.map((c) => c.id), [bad.id]);
  t.same((await list('isCustomerActionRequired=true')).body.data.map((c) => c.id), [bad.id]);
  t.same((await list('correlationId=a')).body.data.map((c) => c.id), [good.id]);
  t.same((await list('statusDetail=LOGIN_AND_DATA_DISCOVERY_SUCCESS')).body.data.map((c) => c.id), [good.id]);
  t.match((await list('size=1&page=1')).body, { data: [{ id: good.id }], page: { number: 1, size: 1, totalElements: 2, totalPages: 2 } });
  const badSort = await list('sort=username,up');
  t.equal(badSort.statusCode, 400);
  t.match(badSort.body, { errors: [{ param: 'sort', message: /createdAt\[,asc\|desc\].*\(desc when no direction is given\)/ }] }, 'the answer says the direction may be left out');
  t.same((await list('sort=createdAt')).body.data.map((c) => c.id), [bad.id, good.id], 'which is desc');
  t.equal((await list('size=101')).statusCode, 400);
  // The unfiltered list by createdAt pages the creation index; a filter every credential passes goes through
  // the in-memory path: both must give the same pages.
  for (const order of ['asc', 'desc']) {
    for (const [size, page] of [[1, 0], [1, 1], [1, 2], [2, 0], [20, 0]]) {
      const query = `sort=createdAt,${order}&size=${size}&page=${page}`;
      t.same((await list(query)).body, (await list(`${query}&providerId=${good.providerId}`)).body, `same page for ${query}`);
    }
  }

  const fixed = await call<CredentialView>(stack, 'PATCH', `/plug/credentials/${bad.id}`, { password: 'pass_good' });
  t.match(fixed.body, { statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' }, 'a new password means a new login');
  await waitForCredential(stack, bad.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const renamed = await call<CredentialView>(stack, 'PATCH', `/plug/credentials/${bad.id}`, { correlationId: 'c' });
  t.match(renamed.body, { correlationId: 'c', statusDetail: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS' }, 'a new correlationId changes nothing else');
  t.equal((await call(stack, 'PATCH', `/plug/credentials/${bad.id}`, { color: 'red' })).statusCode, 400);

  type AccountPage = { data: { id: string; credentialId: string }[]; page: { totalElements: number } };
  const accountsOf = async (query: string) => (await call<AccountPage>(stack, 'GET', `/plug/accounts?${query}`)).body;
  t.equal((await accountsOf('')).page.totalElements, 4, 'both credentials found two accounts');
  for (const credential of [good, bad]) {
    const own = await accountsOf(`credentialId=${credential.id}&sort=createdAt,asc`);
    t.same(own.data.map((account) => account.credentialId), [credential.id, credential.id], `only the accounts of ${credential.correlationId}`);
    t.same((await accountsOf(`credentialId=${credential.id}&size=1&page=1&sort=createdAt,asc`)).data, own.data.slice(1), 'and they page');
  }

  const disabled = await call<CredentialView>(stack, 'POST', `/plug/credentials/${good.id}/disable`);
  t.match(disabled.body, { status: 'CONNECTION_FAILURE', statusDetail: 'DISABLED', isActive: false, isCustomerActionRequired: false });
  t.equal((await call(stack, 'POST', `/plug/credentials/${good.id}/disable`)).statusCode, 200, 'disabling twice is fine');

  const other = await createOrganization(stack.app, 'Someone else');
  const foreign = await stack.app.inject({ method: 'GET', url: `/plug/credentials/${good.id}`, headers: other.headers });
  t.equal(foreign.statusCode, 404, "another organization's credential does not exist for them");
  const foreignDelete = await stack.app.inject({ method: 'DELETE', url: `/plug/credentials/${good.id}`, headers: other.headers });
  t.equal(foreignDelete.statusCode, 404);

  t.equal((await call(stack, 'DELETE', `/plug/credentials/${good.id}`)).statusCode, 204);
  t.equal((await call(stack, 'GET', `/plug/credentials/${good.id}`)).statusCode, 404);
  t.equal((await call(stack, 'GET', `/plug/credentials/${good.id}/accounts`)).statusCode, 404);
  const types = (await eventsOf(stack, good.id)).map((event) => event.type);
  t.same(types.slice(-3), ['credential.status_changed', 'credential.disabled', 'credential.deleted']);
  t.equal((await call<{ page: { totalElements: number } }>(stack, 'GET', '/plug/accounts')).body.page.totalElements, 2, 'its accounts went with it');

  const invalid = await call(stack, 'POST', '/plug/credentials', { providerId: 'prv_aaaaaaaaaaaaaaaaaaaaaaaaaa', username: 'u', password: 'p' });
  t.match(invalid, { statusCode: 400, body: { errors: [{ param: 'providerId' }] } });
  const extra = await call(stack, 'POST', '/plug/credentials', { providerId: good.providerId, username: 'u', password: 'p', extraFields: { pin: '1' } });
  t.match(extra, { statusCode: 400, body: { errors: [{ param: 'extraFields.pin' }] } });
});

t.test('providers and the event log', async (t) => {
  const stack = await buildStack(t);
  type ProviderPage = { data: { id: string; name: string; isSandbox: boolean }[]; page: { totalElements: number } };
  const providers = await call<ProviderPage>(stack, 'GET', '/plug/providers');
  t.ok(providers.body.data.length >= 2 && providers.body.data.every((p) => p.isSandbox));
  const names = providers.body.data.map((provider) => provider.name);
  t.same(names, [...names].sort((a, b) => a.localeCompare(b)), 'by name');
  t.same(providers.body.page, { number: 0, size: 20, totalElements: names.length, totalPages: 1 });
  const lastByName = await call<ProviderPage>(stack, 'GET', '/plug/providers?size=1&sort=name,desc');
  t.same(lastByName.body.data.map((provider) => provider.name), [names.at(-1)]);
  t.equal(lastByName.body.page.totalElements, names.length);
  t.equal((await call(stack, 'GET', '/plug/providers?sort=createdAt')).statusCode, 400);
  const first = providers.body.data[0]?.id ?? '';
  t.match((await call(stack, 'GET', `/plug/providers/${first}`)).body, { id: first, mfaMethods: ['SMS', 'CALL', 'EMAIL', 'APP'] });
  t.equal((await call(stack, 'GET', '/plug/providers/prv_aaaaaaaaaaaaaaaaaaaaaaaaaa')).statusCode, 404);

  const one = await createCredential(stack, 'pass_good');
  const two = await createCredential(stack, 'pass_bad');
  await waitForCredential(stack, one.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  await waitForCredential(stack, two.id, hasDetail('INVALID_CREDENTIALS'));
  const page = await call<{ data: { id: string; type: string }[]; nextCursor: string | null }>(stack, 'GET', '/plug/events?limit=2');
  t.equal(page.body.data.length, 2);
  t.ok(page.body.nextCursor);
  const rest = await call<{ data: { id: string }[]; nextCursor: string | null }>(stack, 'GET', `/plug/events?after=${page.body.nextCursor}&limit=100`);
  t.equal(rest.body.nextCursor, null);
  t.equal(new Set([...page.body.data, ...rest.body.data].map((e) => e.id)).size, 2 + rest.body.data.length, 'no event twice');
  const connectedOnly = await call<{ data: { type: string }[] }>(stack, 'GET', '/plug/events?type=credential.connected');
  t.same(connectedOnly.body.data.map((e) => e.type), ['credential.connected']);
  t.match(await call(stack, 'GET', '/plug/events?after=evt_aaaaaaaaaaaaaaaaaaaaaaaaaa'), { statusCode: 400, body: { errors: [{ param: 'after' }] } });
  const firstEvent = page.body.data[0];
  t.match((await call(stack, 'GET', `/plug/events/${firstEvent?.id}`)).body, { id: firstEvent?.id, type: firstEvent?.type });
  t.equal((await call(stack, 'GET', '/plug/events/evt_aaaaaaaaaaaaaaaaaaaaaaaaaa')).statusCode, 404);
});

t.test("the reconciler's full pass re-creates a missing challenge timer and its wake-up", async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  await stack.stopWorkers();
  const { services, config } = stack.app.container;
  const orgKeys = services.ctx.keys.org(stack.org.organizationId);
  const record = (await storedRecord(stack, created.id)) as CredentialRecord;
  const [timer] = workFor(record, config).timers;
  t.equal(timer?.kind, 'challenge_expiry');
  t.equal(Number(await services.ctx.redis.zscore(orgKeys.timers, timer?.id ?? '')), Date.parse(record.mfa?.expiresAt ?? ''), 'the commit wrote the timer');
  await services.ctx.redis.zrem(orgKeys.timers, timer?.id ?? '');
  await services.queues.timers.obliterate({ force: true });

  t.same(await services.connections.reconcile({ everyCredential: false }), { checked: 0, rescheduled: 0 }, 'a regular pass reads only stepping credentials');
  t.same(await services.connections.reconcile({ everyCredential: true }), { checked: 1, rescheduled: 1 });
  t.equal(Number(await services.ctx.redis.zscore(orgKeys.timers, timer?.id ?? '')), Date.parse(record.mfa?.expiresAt ?? ''), 'the reconciler put it back');
  const wakes = await services.queues.timers.getDelayed();
  t.equal(wakes.length, 1, 'with a wake-up job');
  t.equal(wakes[0]?.data.organizationId, stack.org.organizationId);
  t.ok((wakes[0]?.timestamp ?? 0) + (wakes[0]?.delay ?? 0) >= Date.parse(record.mfa?.expiresAt ?? ''), 'due when the timer is');
  t.same(await services.connections.reconcile({ everyCredential: true }), { checked: 1, rescheduled: 0 }, 'a timer that exists is not added again');

  await services.ctx.redis.zrem(orgKeys.timers, timer?.id ?? '');
  await stack.startWorkers();
  // Waited for here, not by stopping the workers: closing aborts a pass still under way.
  const restored = await waitFor("the workers' first pass", async () => (await services.ctx.redis.zscore(orgKeys.timers, timer?.id ?? '')) ?? undefined, 10_000);
  t.equal(Number(restored), Date.parse(record.mfa?.expiresAt ?? ''), "the workers' first pass is a full one");
});

t.test('the full pass reads the creation index, drops ids without a record and deletes the obsolete scheduled set', async (t) => {
  const stack = await buildStack(t);
  const good = await createCredential(stack, 'pass_good');
  const bad = await createCredential(stack, 'pass_bad');
  await waitForCredential(stack, good.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  await waitForCredential(stack, bad.id, hasDetail('INVALID_CREDENTIALS'));
  await stack.stopWorkers();
  const { services, config } = stack.app.container;
  const { redis } = services.ctx;
  const orgKeys = services.ctx.keys.org(stack.org.organizationId);
  const [syncTimer] = workFor((await storedRecord(stack, good.id)) as CredentialRecord, config).timers;
  t.equal(syncTimer?.kind, 'sync');
  t.same(workFor((await storedRecord(stack, bad.id)) as CredentialRecord, config), { step: null, timers: [] }, 'a failed credential has no work');
  t.same(await redis.smembers(orgKeys.credentialsStepping), [], 'neither has a step in flight');
  t.equal(await redis.exists(orgKeys.obsoleteCredentialsScheduled), 0, 'no commit writes the obsolete set');

  await redis.zrem(orgKeys.timers, syncTimer?.id ?? '');
  await redis.sadd(orgKeys.obsoleteCredentialsScheduled, good.id, bad.id); // as an earlier version left it
  const dangling = newId('crd');
  await redis.zadd(orgKeys.credentials, Date.now(), dangling);

  t.same(await services.connections.reconcile({ everyCredential: false }), { checked: 0, rescheduled: 0 }, 'a regular pass reads only stepping credentials');
  t.equal(await redis.exists(orgKeys.obsoleteCredentialsScheduled), 1, 'and leaves the obsolete set to the full pass');
  t.same(await services.connections.reconcile({ everyCredential: true, stop: AbortSignal.abort() }), { checked: 0, rescheduled: 0 }, 'a pass told to stop reads nothing more');
  t.same(await services.connections.reconcile({ everyCredential: true }), { checked: 2, rescheduled: 1 }, 'both are read, the sync timer re-created');
  t.equal(Number(await redis.zscore(orgKeys.timers, syncTimer?.id ?? '')), Date.parse(syncTimer?.runAt ?? ''), 'due when it was');
  t.equal(await redis.exists(orgKeys.obsoleteCredentialsScheduled), 0, 'the obsolete set is gone');
  t.same((await redis.zrange(orgKeys.credentials, 0, -1)).sort(), [good.id, bad.id].sort(), 'the id without a record left the creation index');
  t.same(await services.connections.reconcile({ everyCredential: true }), { checked: 2, rescheduled: 0 });
});

t.test('every reconciler pass re-enqueues a step lost between its commit and its enqueue', async (t) => {
  const stack = await buildStack(t);
  await stack.stopWorkers();
  const { services } = stack.app.container;
  const orgKeys = services.ctx.keys.org(stack.org.organizationId);
  const created = await createCredential(stack, 'pass_good');
  const record = (await storedRecord(stack, created.id)) as CredentialRecord;
  const step = workFor(record, stack.config).step;
  t.ok(step, 'a new credential has a login step');
  t.same(await services.ctx.redis.smembers(orgKeys.credentialsStepping), [created.id], 'the commit put it in the stepping index');
  await services.queues.credentialSteps.remove(step?.jobId ?? '');

  t.same(await services.connections.reconcile({ everyCredential: false }), { checked: 1, rescheduled: 1 });
  t.ok(await services.queues.credentialSteps.getJob(step?.jobId ?? ''), 'the step job is back');
  await stack.startWorkers();
  await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  t.same(await services.ctx.redis.smembers(orgKeys.credentialsStepping), [], 'the step is done: the commit took it out');
  t.same(await services.connections.reconcile({ everyCredential: true }), { checked: 1, rescheduled: 0 }, 'the full pass still reads it, and its sync timer exists');
  t.same(await services.connections.reconcile({ everyCredential: false }), { checked: 0, rescheduled: 0 });
});

t.test('a step whose job failed for good (its workers kept dying) runs again on the next reconciler pass', async (t) => {
  const stack = await buildStack(t);
  await stack.stopWorkers();
  const { container } = stack.app;
  const created = await createCredential(stack, 'pass_good');
  const step = workFor((await storedRecord(stack, created.id)) as CredentialRecord, stack.config).step;
  // What BullMQ does to a job found stalled more often than allowed: fails it without running it.
  const failing = new Worker(QUEUE_NAMES.credentialSteps, async () => {
    throw new UnrecoverableError('job stalled more than allowable limit');
  }, workerOptions(container, { concurrency: 1 }));
  await new Promise((resolve) => failing.once('failed', resolve));
  await failing.close();
  const job = await container.services.queues.credentialSteps.getJob(step?.jobId ?? '');
  t.equal(await job?.isFailed(), true, 'the step job failed; the credential still waits for it');

  t.same(await container.services.connections.reconcile({ everyCredential: false }), { checked: 1, rescheduled: 1 });
  t.equal(await job?.isWaiting(), true, 'back in the queue');
  await stack.startWorkers();
  await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
});

t.test("a provider's error text becomes statusMessage tidied: one line, bounded, without the customer's secrets", async (t) => {
  const stack = await buildStack(t, {
    // A site that echoes what it was sent in its error page.
    site: (site) =>
      site.addHook('preHandler', async (request, reply) => {
        const body = request.body as { username?: string; password?: string } | undefined;
        if (request.url !== '/login' || !body?.password?.startsWith('echo')) return;
        await reply.status(401).send({ error: 'invalid', message: `Wrong password\n\t"${body.password}" for ${body.username}. ${'Try again. '.repeat(60)}` });
      }),
  });
  const created = await createCredential(stack, 'echo-s3cret-Pa55');
  const failed = await waitForCredential(stack, created.id, hasDetail('INVALID_CREDENTIALS'));
  t.match(failed.statusMessage, /^Wrong password "\[redacted\]" for user-/);
  t.notMatch(failed.statusMessage, /echo-s3cret-Pa55|\n|\t/);
  t.ok((failed.statusMessage?.length ?? Infinity) <= 300, 'at most 300 characters');
  t.match(failed.statusMessage, /…$/, 'cut, and says so');
  const events = JSON.stringify(await eventsOf(stack, created.id));
  t.notMatch(events, /echo-s3cret-Pa55/, 'nor in the events or webhooks');
});

t.test('a PATCH repeating the stored login details starts a login only where the last one failed', async (t) => {
  const stack = await buildStack(t);
  const patch = (id: string, body: object) => call<CredentialView>(stack, 'PATCH', `/plug/credentials/${id}`, body);

  const asked = await waitForCredential(stack, (await createCredential(stack, 'pass_mfa')).id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const retried = await patch(asked.id, { username: asked.username, password: 'pass_mfa' });
  t.equal(retried.statusCode, 200);
  t.match(retried.body, { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', mfa: { challengeId: mfaOf(asked).challengeId } }, 'the open challenge stays');

  const connected = await connectWithMfa(stack, 'pass_mfa');
  const again = await patch(connected.id, { password: 'pass_mfa', correlationId: 'kept' });
  t.match(again.body, { statusDetail: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS', correlationId: 'kept', mfaSession: connected.mfaSession }, 'the MFA session stays');
  t.equal((await storedRecord(stack, connected.id))?.step, null, 'and no login runs');
  const versionBefore = (await storedRecord(stack, connected.id))?.version;
  const repeated = await patch(connected.id, { username: connected.username, password: 'pass_mfa', correlationId: 'kept' });
  t.equal(repeated.statusCode, 200);
  t.equal(repeated.body.lastModifiedAt, again.body.lastModifiedAt, 'a PATCH that changes nothing commits nothing');
  t.equal((await storedRecord(stack, connected.id))?.version, versionBefore);
  const changed = await patch(connected.id, { password: 'pass_good' });
  t.match(changed.body, { statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' }, 'a different password is a new login');

  const failed = await waitForCredential(stack, (await createCredential(stack, 'pass_bad')).id, hasDetail('INVALID_CREDENTIALS'));
  const typedAgain = await patch(failed.id, { password: 'pass_bad' });
  t.match(typedAgain.body, { statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' }, 'after a failure the same details try again');
  await waitForCredential(stack, failed.id, hasDetail('INVALID_CREDENTIALS'));
});

t.test("the same details again while the worker commits the login's outcome leave the challenge it opened", async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const { ctx, connections } = stack.app.container.services;
  const created = await createCredential(stack, 'pass_mfa');
  const step = (await storedRecord(stack, created.id))?.step;
  if (!step) throw new Error('the login step is pending');
  // The worker's commit lands while the PATCH compares the stored secrets: the PATCH's first commit is refused.
  const readSecrets = ctx.secrets.readAll.bind(ctx.secrets);
  let isWorkerDone = false;
  t.teardown(() => {
    ctx.secrets.readAll = readSecrets;
  });
  ctx.secrets.readAll = async (key: string) => {
    if (!isWorkerDone) {
      isWorkerDone = true;
      await connections.runStep({ organizationId: stack.org.organizationId, credentialId: created.id, stepId: step.id }, { isFinal: true });
    }
    return readSecrets(key);
  };
  const patched = await call<CredentialView>(stack, 'PATCH', `/plug/credentials/${created.id}`, { password: 'pass_mfa' });
  t.ok(isWorkerDone, 'the outcome was committed in between');
  t.equal(patched.statusCode, 200);
  t.equal((await storedRecord(stack, created.id))?.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', 'the challenge stays open');
  t.same(describe(await eventsOf(stack, created.id)), ['created', '→ MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', 'mfa.method_required'], 'no second login');
});

t.test('the providerId filter lists the credentials of that provider only', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const create = async (providerId: string) =>
    (await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: { providerId, username: 'u', password: 'p' } })).json() as { id: string };
  const electric = await create('prv_sandboxelectricxxxxxxxxxxx');
  const gas = await create('prv_sandboxgasxxxxxxxxxxxxxxxx');
  const list = async (query: string) =>
    ((await app.inject({ url: `/plug/credentials?${query}`, headers: org.headers })).json() as { data: { id: string }[]; page: { totalElements: number } });
  t.same((await list('providerId=prv_sandboxgasxxxxxxxxxxxxxxxx')).data.map((c) => c.id), [gas.id]);
  t.same((await list('providerId=prv_sandboxelectricxxxxxxxxxxx')).data.map((c) => c.id), [electric.id]);
  t.equal((await list('providerId=prv_sandboxenergyukxxxxxxxxxxx')).page.totalElements, 0);
});

t.test('deletes of one credential at once: one 204, the others the 404 a delete after it gets', async (t) => {
  const stack = await buildStack(t);
  const deletes = 30;
  const created = await createCredential(stack, 'pass_good');
  await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  // The v1 API's DELETE is the same service call.
  const url = `/plug/credentials/${created.id}`;
  const answers = await Promise.all(Array.from({ length: deletes }, () => call(stack, 'DELETE', url)));
  const statuses = answers.map((answer) => answer.statusCode);
  t.equal(statuses.filter((status) => status === 204).length, 1, `one deletes it (${statuses.join(' ')})`);
  t.equal(statuses.filter((status) => status === 404).length, deletes - 1, 'the others find it gone');
  const after = await call(stack, 'DELETE', url);
  t.same(answers.find((answer) => answer.statusCode === 404)?.body, after.body, 'the same 404 as a delete after them all');
});

t.test('PATCHes of one credential at once: each is applied or a 409 to retry, never a 500', async (t) => {
  const stack = await buildStack(t);
  const patches = 80;
  const created = await createCredential(stack, 'pass_good');
  await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'));
  const url = `/plug/credentials/${created.id}`;
  const answers = await Promise.all(Array.from({ length: patches }, (_, i) => call(stack, 'PATCH', url, { correlationId: `c-${i}` })));
  const statuses = answers.map((answer) => answer.statusCode);
  t.equal(statuses.filter((status) => status === 200 || status === 409).length, patches, `200s and 409s only (${statuses.join(' ')})`);
  t.ok(statuses.includes(200), 'some are applied');
  const refused = answers.find((answer) => answer.statusCode === 409);
  if (refused) t.match(refused.body, { errors: [{ type: 'conflict', details: { errorId: 'PB_CONFLICT' }, message: /concurrently; retry/ }] }, 'the 409 says to retry');
  const final = (await call<{ correlationId: string }>(stack, 'GET', url)).body;
  const applied = answers.filter((answer) => answer.statusCode === 200).map((answer) => (answer.body as { correlationId: string }).correlationId);
  t.ok(applied.includes(final.correlationId), 'the credential holds one of the applied changes');
});
