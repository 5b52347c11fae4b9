/**
 * What the API answers when Redis is away, full, or refuses part of a change: a quick 503 in the envelope,
 * reads that keep working, and no change that is made but reported as failed. Outages run against a
 * throwaway redis-server (never the shared test Redis); the refused queue write uses an ACL user of the
 * shared one, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import t, { type Test } from 'tap';
import { QUEUE_NAMES } from '../../src/queues.ts';
import { STALL_PROBE, watchConnection } from '../../src/storage/redis.ts';
import { createCredential, describe, eventsOf, hasDetail, SANDBOX_PROVIDER, submitCode, SUCCESS, waitForCredential } from '../credentials-helper.ts';
import { build, buildStack, capturingLogger, connectTestRedis, createOrganization, TEST_REDIS_URL } from '../helper.ts';
import { waitFor } from '../process-helper.ts';
import { createPrivateRedis } from '../resilience/private-redis.ts';

const isCluster = Boolean(process.env.TEST_REDIS_CLUSTER_NODES?.trim());
const newCredential = (username: string) => ({ providerId: SANDBOX_PROVIDER, username, password: 'pass_good' });

async function privateRedisApp(t: Test) {
  const redis = await createPrivateRedis();
  t.teardown(() => redis.destroy());
  const { lines, logger } = capturingLogger();
  const app = await build(t, { env: { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '' }, logger });
  const org = await createOrganization(app);
  const logged = (message: string) =>
    lines.map((line) => JSON.parse(line) as { msg: string; level: number; connection?: string; err?: unknown }).filter((line) => line.msg === message);
  return { redis, app, org, logged };
}

/**
 * An app whose Redis user may read and write everything of its deployment except BullMQ's queues, which it may
 * only read: every queue write is refused (NOPERM) while the data writes go through. `allowQueueWrites` lifts it.
 */
async function appWithReadOnlyQueues(t: Test) {
  const user = `plugboard-test-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const shared = connectTestRedis();
  t.teardown(async () => {
    await shared.acl('DELUSER', user);
    shared.disconnect();
  });
  const prefix = `test-acl-${randomBytes(5).toString('hex')}`;
  const queueKeys = `{${prefix}:q}*`;
  await shared.acl('SETUSER', user, 'on', `>${password}`, `~${prefix}:*`, `%R~${queueKeys}`, '&*', '+@all');
  const url = new URL(TEST_REDIS_URL);
  url.username = user;
  url.password = password;
  const app = await build(t, { env: { REDIS_URL: url.toString(), KEY_PREFIX: prefix } });
  const org = await createOrganization(app);
  const allowQueueWrites = () => shared.acl('SETUSER', user, `~${queueKeys}`);
  return { app, org, shared, allowQueueWrites };
}

t.test('while Redis is down, requests are a 503 at once; health, readiness and metrics still answer; then it recovers', async (t) => {
  const { redis, app, org, logged } = await privateRedisApp(t);
  t.equal((await app.inject({ method: 'GET', url: '/plug/providers', headers: org.headers })).statusCode, 200);

  await redis.kill();
  await waitFor('the loss to be noticed', async () => (app.container.redisWatches.redis.isUp() ? undefined : true), 5_000);
  const startedAt = Date.now();
  const refused = await app.inject({ method: 'GET', url: '/plug/providers', headers: org.headers });
  t.ok(Date.now() - startedAt < 1_000, 'answered at once, not when Redis is back');
  t.equal(refused.statusCode, 503);
  t.equal(refused.headers['retry-after'], '5');
  t.ok(refused.headers['plug-version'], 'refused before the version check, it still names the version');
  t.match(refused.json(), { errors: [{ type: 'serviceUnavailable', details: { errorId: 'PB_STORE_UNAVAILABLE' } }] });
  const v1 = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } });
  t.same(v1.json(), { status: 503, message: 'The service cannot reach its data store; try again shortly' }, 'v1 in its own shape');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.body, /plugboard_redis_up\{connection="main"\} 0/);

  await redis.start();
  await waitFor('the connection to come back by itself', async () => (app.container.redisWatches.redis.isUp() ? true : undefined), 5_000);
  t.equal((await app.inject({ method: 'GET', url: '/plug/providers', headers: org.headers })).statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /plugboard_redis_up\{connection="main"\} 1/);
  const refusals = logged('The service cannot reach its data store; try again shortly');
  t.ok(refusals.length >= 2, 'each 503 is logged');
  t.ok(refusals.every((line) => line.level === 40 && line.err === undefined), 'as a warning without a stack trace: the outage is already logged');
  const outage = (message: string) => logged(message).filter((line) => line.connection === 'main');
  t.equal(outage('Redis connection lost; commands wait until it is back').length, 1, 'the outage is logged once, however many reconnect attempts');
  t.equal(outage('Redis connection is back').length, 1);

  await app.close();
  t.equal(outage('Redis connection lost; commands wait until it is back').length, 1, 'closing on purpose is no outage');
});

t.test('a Redis that stops answering without closing the connection: a 503 at once after the probe notices, nothing sent is lost', async (t) => {
  const { redis, app, org, logged } = await privateRedisApp(t);
  t.teardown(() => redis.thaw());
  const { redisWatches } = app.container;
  t.equal((await app.inject({ method: 'GET', url: '/plug/providers', headers: org.headers })).statusCode, 200);
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /plugboard_queue_jobs/, 'the queues connection is open too');

  redis.freeze();
  // Sent before the stall is known: it waits for Redis and is carried out, not dropped.
  const sentBefore = app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: newCredential('frozen') });
  // Both connections (data and BullMQ's) are probed, each on its own: /metrics reads the queues' one.
  await waitFor('the stall to be noticed', async () => (redisWatches.redis.isUp() || redisWatches.queueRedis.isUp() ? undefined : true), 5_000);
  const startedAt = Date.now();
  const refused = await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: newCredential('refused') });
  t.equal(refused.statusCode, 503);
  t.match(refused.json(), { errors: [{ details: { errorId: 'PB_STORE_UNAVAILABLE' } }] });
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  t.match(metrics.body, /plugboard_redis_up\{connection="main"\} 0/);
  t.ok(Date.now() - startedAt < 1_000, 'a request, readiness and metrics answered at once, not when Redis is back');

  redis.thaw();
  t.equal((await sentBefore).statusCode, 201, 'the request sent before the stall was known completes');
  await waitFor('the probe to be answered', async () => (redisWatches.redis.isUp() ? true : undefined), 5_000);
  const listed = await app.inject({ method: 'GET', url: '/plug/credentials', headers: org.headers });
  t.same(
    listed.json().data.map((credential: { username: string }) => credential.username),
    ['frozen'],
    'the refused request left nothing behind',
  );
  const onMain = (message: string) => logged(message).filter((line) => line.connection === 'main');
  t.equal(onMain('Redis does not answer though connected; requests get a 503 until it does').length, 1, 'the stall is logged once');
  t.equal(onMain('Redis answers again').length, 1);
});

t.test('CLIENT PAUSE WRITE (as in a failover) counts as a stall: PING still answers there, scripts and writes wait', async (t) => {
  const { redis, app, org } = await privateRedisApp(t);
  const admin = new Redis(redis.url);
  t.teardown(async () => {
    await admin.client('UNPAUSE');
    admin.disconnect();
  });
  await admin.client('PAUSE', 10_000, 'WRITE');
  await waitFor('the pause to be noticed', async () => (app.container.redisWatches.redis.isUp() ? undefined : true), 5_000);
  t.equal((await app.inject({ method: 'GET', url: '/plug/credentials', headers: org.headers })).statusCode, 503);
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);

  await admin.client('UNPAUSE');
  await waitFor('the probe to be answered', async () => (app.container.redisWatches.redis.isUp() ? true : undefined), 5_000);
  t.equal((await app.inject({ method: 'GET', url: '/plug/credentials', headers: org.headers })).statusCode, 200);
});

t.test('a watch stopped on a client that lives on leaves no listener or probe behind', async (t) => {
  const client = new Redis(TEST_REDIS_URL);
  t.teardown(() => client.disconnect());
  await client.ping();
  const counted = () => ['error', 'close', 'reconnecting', 'ready', 'end'].map((name) => client.listenerCount(name));
  const before = counted();
  const watch = watchConnection(client, capturingLogger().logger, 'shared');
  t.notSame(counted(), before, 'the watch listens while it runs');
  watch.stop();
  t.same(counted(), before);
  const sent = client.stream.bytesWritten;
  await new Promise((resolve) => setTimeout(resolve, 3 * STALL_PROBE.intervalMs));
  t.equal(client.stream.bytesWritten, sent, 'no probe was sent after stop');
});

t.test('Redis full (noeviction): reads go on, a write is a 503 rather than a 500', async (t) => {
  const { redis, app, org } = await privateRedisApp(t);
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  await admin.config('SET', 'maxmemory', String(used - 100_000));

  const read = await app.inject({ method: 'GET', url: '/plug/credentials', headers: org.headers });
  t.equal(read.statusCode, 200, 'the rate limiter counts no request it cannot write down, but lets it through');
  const write = await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: newCredential('full') });
  t.equal(write.statusCode, 503);
  t.match(write.json(), { errors: [{ type: 'serviceUnavailable', details: { errorId: 'PB_STORE_UNAVAILABLE' } }] });
  t.notMatch(write.body, /OOM|maxmemory/, 'no Redis internals');

  await admin.config('SET', 'maxmemory', '0');
  t.equal((await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: newCredential('full') })).statusCode, 201);
});

t.test('a credential committed while its login cannot be queued is a 201 (replayed as such), and the reconciler queues the login', { skip: isCluster && 'ACL users are per node' }, async (t) => {
  const { app, org, allowQueueWrites } = await appWithReadOnlyQueues(t);

  const request = { method: 'POST' as const, url: '/plug/credentials', headers: { ...org.headers, 'idempotency-key': 'queue-refused-1' }, payload: newCredential('queued-later') };
  const created = await app.inject(request);
  t.equal(created.statusCode, 201, 'the commit stands, so the answer says so');
  const replayed = await app.inject(request);
  t.equal(replayed.statusCode, 201);
  t.equal(replayed.headers['idempotent-replayed'], 'true');
  t.equal(replayed.json().id, created.json().id, 'the retry is the same credential, not a second one');
  const list = await app.inject({ method: 'GET', url: '/plug/credentials', headers: org.headers });
  t.equal(list.json().page.totalElements, 1);
  // Counted as the test's own user: this app's user may not run BullMQ's scripts on the queue.
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const steps = new Queue(QUEUE_NAMES.credentialSteps, { connection, prefix: app.services.ctx.keys.queuePrefix });
  t.teardown(async () => {
    await steps.close();
    connection.disconnect();
  });
  const stepJobs = () => steps.getJobCounts('waiting', 'delayed');
  t.same(await stepJobs(), { waiting: 0, delayed: 0 }, 'no login was queued');

  await allowQueueWrites();
  await app.services.connections.reconcile({ everyCredential: false });
  t.same(await stepJobs(), { waiting: 1, delayed: 0 }, 'the reconciler queued it');
});

t.test('a recover whose deliveries cannot be queued leaves them on the gave-up list for the next one', { skip: isCluster && 'ACL users are per node' }, async (t) => {
  const { app, org, shared } = await appWithReadOnlyQueues(t);
  const endpoint = await app.services.webhooks.createEndpoint(org.organizationId, { url: 'https://hooks.example.com/a' });
  const failedKey = app.services.ctx.keys.org(org.organizationId).webhookEndpointFailed(endpoint.id);
  await shared.zadd(failedKey, 1_000, 'evt_a', 2_000, 'evt_b');

  await t.rejects(app.services.webhooks.recover(org.organizationId, endpoint.id, new Date(0)), /NOPERM/);
  t.same(await shared.zrange(failedKey, 0, -1, 'WITHSCORES'), ['evt_a', '1000', 'evt_b', '2000'], 'both back, with the times they gave up');
});

t.test("Redis full just as the provider accepts a code: the step keeps the answer until Redis takes it, and the code is sent once", async (t) => {
  const redis = await createPrivateRedis();
  t.teardown(() => redis.destroy());
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  const FULL_FOR_MS = 1_500;
  let codesPosted = 0;
  const stack = await buildStack(t, {
    env: { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '' },
    site: (site) =>
      site.addHook('onSend', async (request, _reply, payload) => {
        if (request.url !== '/mfa/code') return payload;
        codesPosted++;
        // Redis fills up while the site answers, so the worker holds a session it cannot write down.
        const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
        await admin.config('SET', 'maxmemory', String(used - 100_000));
        setTimeout(() => void admin.config('SET', 'maxmemory', '0'), FULL_FOR_MS);
        return payload;
      }),
  });
  const created = await createCredential(stack, 'pass_mfa_code');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  t.equal((await submitCode(stack, asked, '123456', {})).statusCode, 202);

  const connected = await waitForCredential(stack, created.id, hasDetail(SUCCESS), 10_000);
  t.equal(connected.status, 'CONNECTION_SUCCESS');
  t.equal(codesPosted, 1, 'the code went to the provider once');
  t.notOk(describe(await eventsOf(stack, created.id)).includes('mfa.method_required'), 'no new challenge');
});
