/**
 * What differs between one Redis and a cluster: walking the key space and checking the server settings.
 * On `npm run test:cluster` the organizations below land on different masters, so these tests fail if
 * `scanAll` looked at one node only.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import t from 'tap';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import { newEvent } from '../../src/services/events.ts';
import { checkRedisSettings, dataNodes, getMany, isCluster, scanAll, UnsafeRedisError } from '../../src/storage/redis.ts';
import { createSealedSecrets } from '../../src/storage/sealed-secrets.ts';
import { build } from '../helper.ts';

const organizationIds = Array.from({ length: 24 }, (_, i) => `org_${String(i).padStart(26, 'a')}`);

t.test('scanAll finds the keys of every organization, on every master', async (t) => {
  const app = await build(t);
  const { redis, keys } = app.services.ctx;
  await Promise.all(organizationIds.map((id) => redis.set(keys.org(id).record, '{}')));

  const found = [];
  for await (const batch of scanAll(redis, `${keys.prefix}:*`, 5)) found.push(...batch);
  t.same(found.sort(), organizationIds.map((id) => keys.org(id).record).sort());

  const nodes = await dataNodes(redis);
  if (isCluster(redis)) {
    const holding = await Promise.all(nodes.map((node) => node.dbsize()));
    t.ok(holding.filter((count) => count > 0).length > 1, 'the keys are spread over several masters');
  } else {
    t.same(nodes, [redis], 'one Redis is its own only node');
  }
});

t.test('getMany reads any number of keys of one organization in order, in bounded commands', async (t) => {
  const app = await build(t);
  const { redis, keys } = app.services.ctx;
  const orgKeys = keys.org(organizationIds[0] ?? '');
  const ids = Array.from({ length: 2500 }, (_, i) => `crd_${i}`);
  await redis.mset(...ids.filter((_, i) => i % 7 !== 0).flatMap((id) => [orgKeys.credential(id), id]));
  const values = await getMany(redis, ids.map((id) => orgKeys.credential(id)));
  t.same(values, ids.map((id, i) => (i % 7 === 0 ? null : id)), 'values in key order, null where missing');
  t.same(await getMany(redis, []), []);
});

t.test('commits of many organizations in the same tick, beside plain reads, all succeed', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const now = new Date();
  // Issued together so a client that batches commands (auto-pipelining) sees them in one batch.
  const results = await Promise.all(
    organizationIds.flatMap((organizationId) => [
      events.commit({
        organizationId,
        mutations: [{ op: 'set', key: ctx.keys.org(organizationId).credential('crd_1'), value: '{"version":1}' }],
        events: [newEvent('credential.created', { credential: { id: 'crd_1' } }, now)],
      }),
      ctx.redis.get(ctx.keys.org(organizationId).record),
    ]),
  );
  t.same(results, organizationIds.flatMap(() => [true, null]));
});

t.test('rotate-keys re-seals secrets wherever they live', async (t) => {
  const app = await build(t);
  const { ctx } = app.services;
  const secretKeys = organizationIds.map((id) => ctx.keys.org(id).credentialSecrets('crd_1'));
  await Promise.all(secretKeys.map((key) => ctx.secrets.write(key, { password: 'provider-password' })));

  const next = { kid: 'next', key: randomBytes(32) };
  const rotated = createSealedSecrets(ctx.redis, ctx.keys, createSecretBox([next, ...ctx.config.encryptionKeys]));
  t.same(await rotated.rotateAll(), { scanned: secretKeys.length, resealed: secretKeys.length });
  const onlyNext = createSealedSecrets(ctx.redis, ctx.keys, createSecretBox([next]));
  for (const key of secretKeys) t.equal(await onlyNext.read(key, 'password'), 'provider-password');
});

t.test('the start-up check accepts noeviction and, on a cluster, refuses a single master that may evict', async (t) => {
  const app = await build(t);
  const { redis } = app.services.ctx;
  const logger = pino({ level: 'silent' });
  await t.resolves(checkRedisSettings(redis, logger));
  // Changing a server setting is only safe on the throwaway cluster; the single test Redis is shared.
  if (!isCluster(redis)) return;
  const last = (await dataNodes(redis)).at(-1)!;
  await last.config('SET', 'maxmemory-policy', 'allkeys-lru');
  t.teardown(() => last.config('SET', 'maxmemory-policy', 'noeviction'));
  const refusal = await checkRedisSettings(redis, logger).catch((error: unknown) => error);
  t.type(refusal, UnsafeRedisError);
  t.match((refusal as Error).message, `"allkeys-lru" on cluster node ${last.options.host}:${last.options.port}`);
});
