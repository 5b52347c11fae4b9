/**
 * The local-defaults path of `npm start` (the generated encryption key, a private redis-server) and the Redis
 * safety check, each against a throwaway redis-server on a free port, so the shared test Redis is never
 * reconfigured.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import t from 'tap';
import { localEncryptionKeys, startPrivateRedis, tcpAnswers } from '../../src/local/dev-defaults.ts';
import { checkRedisSettings, UnsafeRedisError } from '../../src/storage/redis.ts';
import { capturingLogger } from '../helper.ts';
import { exited, freePort, tempDir, waitFor } from '../process-helper.ts';

t.test('processes starting together on a fresh DATA_DIR all get the one key that was written first', async (t) => {
  const dataDir = path.join(await tempDir(t, 'keys'), 'data');
  const results = await Promise.all(Array.from({ length: 8 }, () => localEncryptionKeys(dataDir)));
  t.equal(new Set(results.map((result) => result.keys)).size, 1, 'one key for all');
  t.equal(results.filter((result) => result.created).length, 1, 'written once');
  t.equal((await readFile(path.join(dataDir, 'encryption-keys'), 'utf8')).trim(), results[0]?.keys);
  t.equal((await stat(path.join(dataDir, 'encryption-keys'))).mode & 0o777, 0o600, 'readable by its owner only');
  t.same(await readdir(dataDir), ['encryption-keys'], 'no drafts left behind');
  t.same(await localEncryptionKeys(dataDir), { keys: results[0]?.keys, created: false }, 'and read again on the next start');
});

t.test('startPrivateRedis runs redis-server with AOF in <dataDir>/redis', async (t) => {
  const dataDir = await tempDir(t, 'redis');
  const port = await freePort();
  const child = await startPrivateRedis(dataDir, port);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.ok(await tcpAnswers('127.0.0.1', port));
  const redis = new Redis({ port, lazyConnect: true });
  t.teardown(() => redis.disconnect());
  await redis.set('k', 'v');
  t.same(await redis.config('GET', 'appendonly'), ['appendonly', 'yes']);
  t.same(await redis.config('GET', 'maxmemory-policy'), ['maxmemory-policy', 'noeviction']);
  // Redis 7 keeps AOF files in appendonlydir/, older versions write appendonly.aof.
  const files = await readdir(path.join(dataDir, 'redis'));
  t.ok(files.some((name) => name.startsWith('appendonly')), `AOF present (${files.join(', ')})`);
  child.kill('SIGTERM');
  await exited(child);
  t.notOk(await tcpAnswers('127.0.0.1', port), 'stopped with its parent');
});

t.test('checkRedisSettings refuses an evicting Redis and warns about one without persistence', async (t) => {
  const port = await freePort();
  const dir = await tempDir(t, 'unsafe-redis');
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'], {
    stdio: 'ignore',
  });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  await waitFor('throwaway redis-server', async () => ((await tcpAnswers('127.0.0.1', port)) ? true : undefined), 5000);
  const redis = new Redis({ port });
  t.teardown(() => redis.disconnect());
  const { lines, logger } = capturingLogger();

  await t.rejects(checkRedisSettings(redis, logger), UnsafeRedisError);
  await t.rejects(checkRedisSettings(redis, logger), { message: /maxmemory-policy is "allkeys-lru"/ });

  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await checkRedisSettings(redis, logger);
  t.match(lines.join(''), /neither AOF nor RDB/);
});
