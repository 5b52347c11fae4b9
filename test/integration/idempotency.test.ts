import { randomBytes } from 'node:crypto';
import { Type } from 'typebox';
import t from 'tap';
import type { App } from '../../src/app.ts';
import { errors } from '../../src/errors.ts';
import { sha256Hex } from '../../src/crypto/hashing.ts';
import { canonicalJson } from '../../src/plugins/idempotency.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { build, createOrganization, keysMatching, uniquePrefix } from '../helper.ts';

/**
 * Test-only routes that opt in with `config: { idempotent: true }`: one counts its runs, one can be held
 * open to test concurrency, one fails with a 500 first and succeeds afterwards.
 */
function idempotentRoutes(state: { runs: number; release?: () => void; failNext: boolean; busyNext?: boolean }) {
  return async (app: App) => {
    const Body = Type.Object({ name: Type.String(), tags: Type.Optional(Type.Array(Type.String())) }, { additionalProperties: false });
    app.post('/plug/test-things', { config: { idempotent: true }, preHandler: app.requireAccessToken, schema: { body: Body } }, async (request, reply) => {
      state.runs += 1;
      return reply.code(201).header('location', `/plug/test-things/${state.runs}`).header('preference-applied', 'wait=5').send({ run: state.runs, name: request.body.name, secret: 'shown-once' });
    });
    app.post('/test-slow', { config: { idempotent: true } }, async () => {
      state.runs += 1;
      await new Promise<void>((resolve) => (state.release = resolve));
      return { run: state.runs };
    });
    app.post('/test-flaky', { config: { idempotent: true } }, async () => {
      state.runs += 1;
      if (state.failNext) {
        state.failNext = false;
        throw new Error('database on fire');
      }
      if (state.busyNext) {
        state.busyNext = false;
        throw errors.conflict({ message: 'A provider step is still in flight' });
      }
      return { run: state.runs };
    });
  };
}

t.test('same key and body replays the first response; a different body is a 409', async (t) => {
  const state = { runs: 0, failNext: false };
  const app = await build(t, { routes: idempotentRoutes(state) });
  const org = await createOrganization(app);
  const send = (payload: object, key = 'key-1', headers: Record<string, string> = org.headers) =>
    app.inject({ method: 'POST', url: '/plug/test-things', headers: { ...headers, 'idempotency-key': key }, payload });

  const first = await send({ name: 'a', tags: ['x'] });
  t.equal(first.statusCode, 201);
  t.notOk(first.headers['idempotent-replayed']);

  // Same fields in another order are the same request.
  const again = await app.inject({
    method: 'POST',
    url: '/plug/test-things',
    headers: { ...org.headers, 'idempotency-key': 'key-1', 'content-type': 'application/json' },
    payload: '{"tags":["x"],"name":"a"}',
  });
  t.equal(again.statusCode, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.headers.location, '/plug/test-things/1');
  t.equal(again.headers['preference-applied'], 'wait=5', 'an answer that waited says so again');
  t.match(again.headers['content-type'], /application\/json/);
  t.same(again.json(), first.json());
  t.equal(state.runs, 1, 'the handler ran once');

  const different = await send({ name: 'b' });
  t.equal(different.statusCode, 409);
  t.equal(different.json().errors[0].details.errorId, 'PB_IDEMPOTENCY_KEY_REUSED');

  const newKey = await send({ name: 'b' }, 'key-2');
  t.equal(newKey.statusCode, 201);
  t.equal(state.runs, 2);

  const noKey = await app.inject({ method: 'POST', url: '/plug/test-things', headers: org.headers, payload: { name: 'a' } });
  t.equal(noKey.statusCode, 201, 'without the header every request runs');
  t.equal(state.runs, 3);

  // Keys are per organization: another org's identical key is a fresh request.
  const otherOrg = await createOrganization(app);
  const other = await send({ name: 'a', tags: ['x'] }, 'key-1', otherOrg.headers);
  t.equal(other.statusCode, 201);
  t.notOk(other.headers['idempotent-replayed']);
  t.equal(state.runs, 4);

  const badKey = await send({ name: 'a' }, 'has space');
  t.equal(badKey.statusCode, 400);
  t.equal(badKey.json().errors[0].param, 'idempotency-key');
});

t.test('stored responses are sealed: a secret in a response is not readable in Redis', async (t) => {
  const state = { runs: 0, failNext: false };
  const app = await build(t, { routes: idempotentRoutes(state) });
  const org = await createOrganization(app);
  await app.inject({ method: 'POST', url: '/plug/test-things', headers: { ...org.headers, 'idempotency-key': 'k' }, payload: { name: 'a' } });
  const { redis, keys } = app.services.ctx;
  const stored = await keysMatching(redis, `${keys.prefix}:*idem*`);
  t.equal(stored.length, 2, 'a claim and a sealed response');
  for (const key of stored) {
    const values = (await redis.type(key)) === 'hash' ? Object.values(await redis.hgetall(key)) : [await redis.get(key)];
    for (const value of values) t.notMatch(value, /shown-once/);
    t.ok((await redis.ttl(key)) > 23 * 3600, 'kept for 24 h');
  }
});

t.test('the claim keeps a keyed digest of the request, which a copy of Redis cannot test guesses against; it outlives a key rotation', async (t) => {
  const state = { runs: 0, failNext: false };
  const oldKey = `old:${randomBytes(32).toString('base64')}`;
  const env = { KEY_PREFIX: uniquePrefix('idem-keys'), ENCRYPTION_KEYS: oldKey };
  const before = await build(t, { env, routes: idempotentRoutes(state) });
  const org = await createOrganization(before);
  const request = { method: 'POST' as const, url: '/plug/test-things', headers: { ...org.headers, 'idempotency-key': 'k' }, payload: { name: 'hunter2' } };
  t.equal((await before.inject(request)).statusCode, 201);

  const { redis, keys } = before.services.ctx;
  const [claim] = (await keysMatching(redis, `${keys.prefix}:*idem:*`)).filter((key) => !key.endsWith(':secrets'));
  const stored = JSON.parse((await redis.get(claim!))!) as { fingerprint: string };
  const plainHash = sha256Hex(canonicalJson({ method: request.method, url: request.url, body: request.payload }));
  t.not(stored.fingerprint, plainHash);
  t.notOk(stored.fingerprint.includes(plainHash));
  t.match(stored.fingerprint, /^old\.[0-9a-f]{64}$/, 'names the key it was made with');

  const after = await build(t, { env: { ...env, ENCRYPTION_KEYS: `new:${randomBytes(32).toString('base64')},${oldKey}` }, routes: idempotentRoutes(state) });
  const replayed = await after.inject(request);
  t.equal(replayed.statusCode, 201);
  t.equal(replayed.headers['idempotent-replayed'], 'true');
  t.equal(state.runs, 1);
  t.equal((await after.inject({ ...request, payload: { name: 'hunter3' } })).statusCode, 409, 'another body still differs');
});

t.test('a second request while the first runs gets 409 in-flight', async (t) => {
  const state: { runs: number; release?: () => void; failNext: boolean } = { runs: 0, failNext: false };
  const app = await build(t, { routes: idempotentRoutes(state) });
  const request = () => app.inject({ method: 'POST', url: '/test-slow', headers: { 'idempotency-key': 'slow' }, payload: {} });
  const first = request();
  while (!state.release) await new Promise((resolve) => setTimeout(resolve, 5));
  const second = await request();
  t.equal(second.statusCode, 409);
  t.equal(second.json().errors[0].details.errorId, 'PB_IDEMPOTENCY_KEY_IN_FLIGHT');
  state.release();
  t.equal((await first).statusCode, 200);
  const third = await request();
  t.equal(third.headers['idempotent-replayed'], 'true');
  t.equal(state.runs, 1);
});

t.test('a 5xx releases the key so a retry runs again; 5xx bodies carry no internals', async (t) => {
  const state = { runs: 0, failNext: true };
  const app = await build(t, { routes: idempotentRoutes(state) });
  const request = () => app.inject({ method: 'POST', url: '/test-flaky', headers: { 'idempotency-key': 'retry-me' }, payload: {} });
  const failed = await request();
  t.equal(failed.statusCode, 500);
  t.notMatch(failed.body, /on fire/);
  const retried = await request();
  t.equal(retried.statusCode, 200);
  t.notOk(retried.headers['idempotent-replayed']);
  t.equal(state.runs, 2);
});

t.test('a 409 is not kept either: the retry runs against the state as it is by then', async (t) => {
  const state = { runs: 0, failNext: false, busyNext: true };
  const app = await build(t, { routes: idempotentRoutes(state) });
  const request = () => app.inject({ method: 'POST', url: '/test-flaky', headers: { 'idempotency-key': 'busy' }, payload: {} });
  t.equal((await request()).statusCode, 409);
  const retried = await request();
  t.equal(retried.statusCode, 200);
  t.notOk(retried.headers['idempotent-replayed']);
  t.equal((await request()).headers['idempotent-replayed'], 'true', 'the success is kept');
  t.equal(state.runs, 2);
});

t.test('a credential created under a key whose answer was lost in a crash is found by the retry, not made twice', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const login = { providerId: SANDBOX_PROVIDER, username: 'crash@example.com', password: 'pass_good', correlationId: 'cust-1' };
  const create = (key: string, payload: object = login, headers = org.headers) =>
    app.inject({ method: 'POST', url: '/plug/credentials', headers: { ...headers, 'idempotency-key': key }, payload });
  const { keys, redis } = app.services.ctx;
  // What a process killed between its commit and storing the answer leaves once its claim expires: nothing.
  const forgetAnswer = (key: string, organizationId = org.organizationId) =>
    redis.del(keys.org(organizationId).idempotency(sha256Hex(key)), keys.org(organizationId).idempotencyResponse(sha256Hex(key)));

  const first = await create('crash-1');
  t.equal(first.statusCode, 201);
  const { id } = first.json() as { id: string };
  await forgetAnswer('crash-1');
  const retried = await create('crash-1');
  t.equal(retried.statusCode, 201);
  t.notOk(retried.headers['idempotent-replayed'], 'run again, not replayed');
  t.equal((retried.json() as { id: string }).id, id, 'the credential the first run made');
  t.equal(retried.headers.location, `/plug/credentials/${id}`);

  await forgetAnswer('crash-1');
  for (const other of [{ username: 'someone-else' }, { password: 'pass_mfa' }, { correlationId: 'cust-2' }]) {
    const reused = await create('crash-1', { ...login, ...other });
    t.equal(reused.statusCode, 409, JSON.stringify(other));
    t.match(reused.json(), { errors: [{ details: { errorId: 'PB_IDEMPOTENCY_KEY_REUSED' } }] });
  }

  const another = await create('crash-2');
  t.not((another.json() as { id: string }).id, id, 'another key, another credential');
  const stranger = await createOrganization(app, 'Stranger');
  const theirs = await create('crash-1', login, stranger.headers);
  t.equal(theirs.statusCode, 201);
  t.not((theirs.json() as { id: string }).id, id, "the same key in another organization is that organization's own");
  const listed = await app.inject({ url: '/plug/credentials', headers: org.headers });
  t.equal((listed.json() as { page: { totalElements: number } }).page.totalElements, 2, 'two keys, two credentials');
});

t.test('a webhook endpoint created under a key whose answer was lost is found by the retry, with its secret', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const create = (url: string) =>
    app.inject({ method: 'POST', url: '/plug/webhooks/endpoints', headers: { ...org.headers, 'idempotency-key': 'endpoint-1' }, payload: { url } });
  const { keys, redis } = app.services.ctx;
  const forgetAnswer = () => redis.del(keys.org(org.organizationId).idempotency(sha256Hex('endpoint-1')), keys.org(org.organizationId).idempotencyResponse(sha256Hex('endpoint-1')));

  const first = await create('https://hooks.example.com/a');
  t.equal(first.statusCode, 201);
  await forgetAnswer();
  const retried = await create('https://hooks.example.com/a');
  t.equal(retried.statusCode, 201);
  t.match(retried.json(), { id: first.json().id, secret: first.json().secret }, 'the same endpoint, and the secret the lost answer held');
  await forgetAnswer();
  t.match((await create('https://hooks.example.com/b')).json(), { errors: [{ details: { errorId: 'PB_IDEMPOTENCY_KEY_REUSED' } }] });
  const listed = await app.inject({ url: '/plug/webhooks/endpoints', headers: org.headers });
  t.equal((listed.json() as { data: unknown[] }).data.length, 1);
});

t.test('canonical JSON ignores key order and undefined fields', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
  t.equal(canonicalJson(null), 'null');
});
