/**
 * What `npm start` does on a developer's machine so that one command brings the whole system up:
 * an encryption key generated once into the data folder, and a private redis-server when none answers.
 * Production sets ENCRYPTION_KEYS and REDIS_URL and never reaches this code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';

export async function localEncryptionKeys(dataDir: string): Promise<{ keys: string; created: boolean }> {
  const file = path.join(dataDir, 'encryption-keys');
  if (existsSync(file)) return { keys: (await readFile(file, 'utf8')).trim(), created: false };
  await mkdir(dataDir, { recursive: true });
  const keys = `local1:${randomBytes(32).toString('base64')}`;
  // Written aside, then linked into place (a link never replaces a file): processes started together on
  // a fresh DATA_DIR (api, workers, sandbox) all end up with the first key, and none reads a half-written file.
  const draft = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(draft, `${keys}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
    return { keys, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { keys: (await readFile(file, 'utf8')).trim(), created: false };
  } finally {
    await unlink(draft);
  }
}

export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class RedisServerMissingError extends Error {
  constructor() {
    super('No Redis answers on 127.0.0.1:6379 and redis-server is not installed: run `apt-get install redis-server` (or set REDIS_URL)');
  }
}

/** Starts redis-server with AOF on and its data in `<dataDir>/redis`; it stops when we exit. */
export async function startPrivateRedis(dataDir: string, port = 6379): Promise<ChildProcess> {
  if (spawnSync('redis-server', ['--version']).error) throw new RedisServerMissingError();
  const dir = path.resolve(dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  for (let waited = 0; waited < 5000; waited += 100) {
    if (await tcpAnswers('127.0.0.1', port)) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
}
