/**
 * `npm start` as an operator runs it: a real child process on free ports, its own key prefix and data
 * folder, against the shared Redis. Also the local-defaults path (private redis-server) and the Redis
 * safety check, each against a throwaway redis-server so the shared one is never reconfigured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import t from 'tap';
import { startPrivateRedis, tcpAnswers } from '../../src/local/dev-defaults.ts';
import { checkRedisSettings, UnsafeRedisError } from '../../src/storage/redis.ts';
import { testRedisEnv, uniquePrefix, wipePrefix } from '../helper.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function tempDir(t: { teardown(fn: () => unknown): void }, label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `plugboard-${label}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function startPlugboard(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import=tsx', 'src/main.ts', 'all'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return { child, output };
}

t.test('npm start: ready, prints a usable demo key, serves the API, exits 0 on SIGTERM after in-flight requests', async (t) => {
  const [port, sandboxPort] = [await freePort(), await freePort()];
  const prefix = uniquePrefix('start');
  const dataDir = await tempDir(t, 'start');
  t.teardown(() => wipePrefix(prefix));
  const { child, output } = startPlugboard({
    PORT: String(port),
    SANDBOX_PORT: String(sandboxPort),
    KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    ...testRedisEnv,
    BOOTSTRAP_DEMO: 'true',
    LOG_LEVEL: 'warn',
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;

  await waitFor('/readyz', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
  t.ok(existsSync(path.join(dataDir, 'encryption-keys')), 'a local encryption key was generated into DATA_DIR');
  const credentials = await waitFor('the demo key', async () => {
    const id = /client_id:\s+(\S+)/.exec(output.stdout)?.[1];
    const secret = /client_secret:\s+(\S+)/.exec(output.stdout)?.[1];
    return id && secret ? { id, secret } : undefined;
  });

  const token = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: credentials.id, client_secret: credentials.secret }),
  });
  t.equal(token.status, 200);
  const { access_token: accessToken } = (await token.json()) as { access_token: string };
  const organization = await fetch(`${base}/plug/organization`, { headers: { authorization: `Bearer ${accessToken}` } });
  t.equal(organization.status, 200);
  t.equal(((await organization.json()) as { name: string }).name, 'Demo organization');
  t.equal((await fetch(`http://127.0.0.1:${sandboxPort}/`)).status < 500, true, 'the sandbox site answers');

  // A request whose body is still arriving when SIGTERM comes must still get its answer.
  const body = JSON.stringify({ grant_type: 'client_credentials', client_id: credentials.id, client_secret: credentials.secret });
  const inFlight = new Promise<number>((resolve, reject) => {
    const req = request(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(body.slice(0, 10));
    setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => req.end(body.slice(10)), 300);
    }, 100);
  });
  t.equal(await inFlight, 200, 'the in-flight request finished');

  const started = Date.now();
  t.equal(await exited(child), 0, 'exit code 0');
  t.ok(Date.now() - started < 10_000, 'within the shutdown grace period');
  t.match(output.stderr, /SIGTERM: shutting down/);
  t.notMatch(output.stderr, /shutdown step failed/);
});

t.test('an invalid configuration exits non-zero and names every problem', async (t) => {
  const dataDir = await tempDir(t, 'badconfig');
  const { child, output } = startPlugboard({ PORT: 'abc', SANDBOX_PORT: '-1', DATA_DIR: dataDir, ...testRedisEnv });
  t.equal(await exited(child), 1);
  t.match(output.stderr, /Invalid configuration/);
  t.match(output.stderr, /PORT must be an integer between 0 and 65535 \(got "abc"\)/);
  t.match(output.stderr, /SANDBOX_PORT must be an integer/);
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
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));

  await t.rejects(checkRedisSettings(redis, logger), UnsafeRedisError);
  await t.rejects(checkRedisSettings(redis, logger), { message: /maxmemory-policy is "allkeys-lru"/ });

  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await checkRedisSettings(redis, logger);
  t.match(lines.join(''), /neither AOF nor RDB/);
});
