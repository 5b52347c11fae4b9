import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createSecretBox, type SecretBox } from '../../src/crypto/secret-box.ts';
import { createSealedSecrets } from '../../src/storage/sealed-secrets.ts';
import { writeLegacySecrets } from '../fixtures/legacy-secrets.ts';
import { build } from '../helper.ts';

const ORG = 'org_cccccccccccccccccccccccccc';

t.test('secrets are one sealed binary value at rest, bound to their key, and rotate to the first key', async (t) => {
  const app = await build(t);
  const { ctx } = app.services;
  const key = ctx.keys.org(ORG).credentialSecrets('crd_1');
  const otherKey = ctx.keys.org(ORG).credentialSecrets('crd_2');
  await ctx.secrets.write(key, { password: 'hunter2-provider-password', loginState: 'state-of-the-login' });

  t.equal(await ctx.redis.type(key), 'string', 'one value per key');
  const raw = (await ctx.redis.getBuffer(key))!;
  t.notOk(raw.toString('latin1').includes('hunter2') || raw.toString('latin1').includes('state-of'), 'no clear text in Redis');
  t.equal(await ctx.secrets.read(key, 'password'), 'hunter2-provider-password');
  t.same(await ctx.secrets.readAll(key), { password: 'hunter2-provider-password', loginState: 'state-of-the-login' });
  t.equal(await ctx.secrets.read(key, 'session'), null, 'a field never written');
  t.same(await ctx.secrets.readAll(otherKey), {}, 'a key never written');

  await ctx.redis.set(otherKey, raw);
  await t.rejects(ctx.secrets.readAll(otherKey), 'a sealed value copied to another credential does not open');
  await ctx.redis.del(otherKey);

  const newKey = { kid: 'next', key: randomBytes(32) };
  const rotated = createSealedSecrets(ctx.redis, ctx.keys, createSecretBox([newKey, ...ctx.config.encryptionKeys]));
  t.same(await rotated.rotateAll(), { scanned: 1, resealed: 1 });
  t.same(await rotated.rotateAll(), { scanned: 1, resealed: 0 }, 'a second run has nothing left to do');
  const onlyNewKey = createSealedSecrets(ctx.redis, ctx.keys, createSecretBox([newKey]));
  t.same(await onlyNewKey.readAll(key), { password: 'hunter2-provider-password', loginState: 'state-of-the-login' }, 'the old key can be retired');
});

t.test('a legacy hash of per-field sealed values is read, and rotate-keys converts it with its TTL', async (t) => {
  const app = await build(t);
  const { ctx } = app.services;
  const key = ctx.keys.org(ORG).credentialSecrets('crd_legacy');
  await writeLegacySecrets(ctx, key, { password: 'legacy-password', loginState: 'legacy-state' });
  await ctx.redis.pexpire(key, 600_000);

  t.same(await ctx.secrets.readAll(key), { password: 'legacy-password', loginState: 'legacy-state' });
  t.equal(await ctx.secrets.read(key, 'loginState'), 'legacy-state');
  const password = await ctx.redis.hget(key, 'password');
  await ctx.redis.hset(key, 'session', password!);
  await t.rejects(ctx.secrets.readAll(key), 'a legacy value copied to another field does not open');
  await ctx.redis.hdel(key, 'session');

  // Converted even though its key is still the current one: the layout is what is old.
  t.same(await ctx.secrets.rotateAll(), { scanned: 1, resealed: 1 });
  t.equal(await ctx.redis.type(key), 'string');
  t.ok((await ctx.redis.pttl(key)) > 590_000, 'the TTL is kept');
  t.same(await ctx.secrets.readAll(key), { password: 'legacy-password', loginState: 'legacy-state' });
  t.same(await ctx.secrets.rotateAll(), { scanned: 1, resealed: 0 });
});

t.test('rotate-keys leaves secrets alone that a writer changed after it read them', async (t) => {
  const app = await build(t);
  const { ctx } = app.services;
  const stringKey = ctx.keys.org(ORG).credentialSecrets('crd_string');
  const legacyKey = ctx.keys.org(ORG).credentialSecrets('crd_legacy');
  await ctx.secrets.write(stringKey, { password: 'old' });
  await writeLegacySecrets(ctx, legacyKey, { password: 'old' });

  // The writer's commands go out on the same connection between rotate-keys' read and its replace; each open
  // writes again, so whichever key is being rotated has changed in between.
  const box = createSecretBox([{ kid: 'next', key: randomBytes(32) }, ...ctx.config.encryptionKeys]);
  const writes: Promise<void>[] = [];
  const racing: SecretBox = {
    ...box,
    open(sealed, associatedData) {
      const opened = box.open(sealed, associatedData);
      for (const key of [stringKey, legacyKey]) writes.push(ctx.secrets.write(key, { password: 'newer' }));
      return opened;
    },
  };
  t.same(await createSealedSecrets(ctx.redis, ctx.keys, racing).rotateAll(), { scanned: 2, resealed: 0 });
  await Promise.all(writes);
  t.same(await ctx.secrets.readAll(stringKey), { password: 'newer' });
  t.same(await ctx.secrets.readAll(legacyKey), { password: 'newer' });
});
