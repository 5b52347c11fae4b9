/** Processes sharing a Redis with different encryption keys are stopped before they seal anything. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { runAdminCommand } from '../../src/cli/admin.ts';
import type { EncryptionKey } from '../../src/config.ts';
import { checkEncryptionKeys, EncryptionKeyMismatchError } from '../../src/storage/encryption-key-check.ts';
import { createKeys } from '../../src/storage/keys.ts';
import { connectTestRedis, testConfig, testRedisEnv, uniquePrefix, wipePrefix } from '../helper.ts';
import { exited, tempDir } from '../process-helper.ts';

const newKey = (kid: string): EncryptionKey => ({ kid, key: randomBytes(32) });
const asEnv = (keys: EncryptionKey[]) => keys.map((key) => `${key.kid}:${key.key.toString('base64')}`).join(',');

t.test('the first key under a kid is remembered; the same kid with other material is refused', async (t) => {
  const redis = connectTestRedis();
  t.teardown(() => redis.quit());
  const prefix = uniquePrefix('keycheck');
  t.teardown(() => wipePrefix(prefix));
  const keys = createKeys(prefix);
  const [k1, k2] = [newKey('k1'), newKey('k2')];

  await checkEncryptionKeys(redis, keys, [k1]);
  await checkEncryptionKeys(redis, keys, [k1]);
  await checkEncryptionKeys(redis, keys, [k2, k1]);
  await checkEncryptionKeys(redis, keys, [k2]);
  t.pass('a restart, a rotation (new key first) and a retired key all start');
  t.same(Object.keys(await redis.hgetall(keys.encryptionKeyFingerprints)).sort(), ['k1', 'k2']);
  t.notMatch(JSON.stringify(await redis.hgetall(keys.encryptionKeyFingerprints)), new RegExp(`${k1.key.toString('hex')}|${k1.key.toString('base64')}`), 'no key material stored');

  await t.rejects(checkEncryptionKeys(redis, keys, [k2, newKey('k1')]), EncryptionKeyMismatchError);
  await t.rejects(checkEncryptionKeys(redis, keys, [newKey('local1')]), {
    message: /^ENCRYPTION_KEYS: none of its keys is one this deployment's data \(KEY_PREFIX\) was sealed with \(k1, k2\)/,
  });
  t.notOk(await redis.hexists(keys.encryptionKeyFingerprints, 'local1'), 'an unrelated key is not recorded');
  await t.rejects(checkEncryptionKeys(redis, keys, [newKey('k2')]), { message: /^ENCRYPTION_KEYS: key "k2" is not the key "k2" that this deployment's data/ });

  const otherPrefix = uniquePrefix('keycheck-other');
  t.teardown(() => wipePrefix(otherPrefix));
  await checkEncryptionKeys(redis, createKeys(otherPrefix), [newKey('k1')]);
  t.pass('another deployment (KEY_PREFIX) on the same Redis has keys of its own');
});

t.test('processes started together with different keys: exactly one of them registers its keys', async (t) => {
  const redis = connectTestRedis();
  t.teardown(() => redis.quit());
  for (const kidOf of [() => 'k1', (index: number) => `k${index}`]) {
    const prefix = uniquePrefix('keycheck-race');
    t.teardown(() => wipePrefix(prefix));
    const keys = createKeys(prefix);
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, index) => checkEncryptionKeys(redis, keys, [newKey(kidOf(index))])));
    t.equal(results.filter((result) => result.status === 'fulfilled').length, 1);
  }
});

t.test('a workers process and an admin command with another key for the same KEY_PREFIX do not start', async (t) => {
  const prefix = uniquePrefix('keycheck-process');
  t.teardown(() => wipePrefix(prefix));
  const config = testConfig({ KEY_PREFIX: prefix });
  await runAdminCommand(config, ['create-org', '--name', 'A', '--email', 'keys@b.test', '--password', 'long enough']);

  await t.rejects(runAdminCommand({ ...config, encryptionKeys: [newKey(config.encryptionKeys[0]!.kid)] }, ['rotate-keys']), EncryptionKeyMismatchError);
  const dataDir = await tempDir(t, 'keycheck');
  const child = spawn(process.execPath, ['--import=tsx', 'src/main.ts', 'workers'], {
    env: { ...process.env, ...testRedisEnv, KEY_PREFIX: prefix, DATA_DIR: dataDir, ENCRYPTION_KEYS: asEnv([newKey(config.encryptionKeys[0]!.kid)]), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  t.equal(await exited(child), 1);
  t.match(stderr, /Plugboard failed to start: ENCRYPTION_KEYS: key "test1" is not the key/);
});
