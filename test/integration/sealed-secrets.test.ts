import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import { createSealedSecrets } from '../../src/storage/sealed-secrets.ts';
import { build } from '../helper.ts';

t.test('secrets are sealed at rest, bound to their key and field, and rotate to the first key', async (t) => {
  const app = await build(t);
  const { ctx } = app.services;
  const key = `${ctx.keys.org('org_cccccccccccccccccccccccccc').credentialSecrets('crd_1')}`;
  await ctx.secrets.write(key, { password: 'hunter2-provider-password' });

  const raw = await ctx.redis.hget(key, 'password');
  t.notMatch(raw, /hunter2/, 'no clear text in Redis');
  t.equal(await ctx.secrets.read(key, 'password'), 'hunter2-provider-password');

  await ctx.redis.hset(key, 'session', raw!);
  await t.rejects(ctx.secrets.read(key, 'session'), 'a sealed value copied to another field does not open');
  await ctx.redis.hdel(key, 'session');

  const newKey = { kid: 'next', key: randomBytes(32) };
  const rotatedBox = createSecretBox([newKey, ...ctx.config.encryptionKeys]);
  const rotated = createSealedSecrets(ctx.redis, ctx.keys, rotatedBox);
  t.same(await rotated.rotateAll(), { scanned: 1, resealed: 1 });
  t.match(await ctx.redis.hget(key, 'password'), /^enc1:next:/);
  t.equal(await rotated.read(key, 'password'), 'hunter2-provider-password');
  t.same(await rotated.rotateAll(), { scanned: 1, resealed: 0 }, 'a second run has nothing left to do');
  const onlyNewKey = createSealedSecrets(ctx.redis, ctx.keys, createSecretBox([newKey]));
  t.equal(await onlyNewKey.read(key, 'password'), 'hunter2-provider-password', 'the old key can be retired');
});
