/**
 * A throwaway redis-server for tests that stop Redis on purpose (never the shared one on 6379): AOF with
 * `appendfsync always`, so every write acknowledged to a client is on disk before the answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { tcpAnswers } from '../../src/local/dev-defaults.ts';
import { freePort, sleep } from '../bench/lib/system.ts';

export interface PrivateRedis {
  url: string;
  start(): Promise<void>;
  /** A crash: no chance to flush anything. */
  kill(): Promise<void>;
  /** A clean stop (SHUTDOWN): Redis finishes writing its AOF and exits. */
  shutdown(): Promise<void>;
  /** Stops the process (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Lets a frozen process go on (SIGCONT). */
  thaw(): void;
  /** Stops the server for good and removes its data. */
  destroy(): Promise<void>;
}

/**
 * A test process that tap ends at its timeout runs no teardown, and the server would outlive it: started through
 * util-linux's setpriv (which then becomes redis-server), the kernel kills it when the test process dies.
 */
const DIES_WITH_THE_TEST = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];

export async function createPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plugboard-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'];

  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const redis: PrivateRedis = {
    url,
    async start() {
      const [command, ...commandArgs] = [...DIES_WITH_THE_TEST, 'redis-server', ...args];
      server = spawn(command!, commandArgs, { stdio: 'ignore' });
      for (let waited = 0; waited < 10_000; waited += 50) {
        // Answering on the port is not enough: Redis refuses commands while it replays the AOF.
        if ((await tcpAnswers('127.0.0.1', port)) && (await isLoaded(url))) return;
        await sleep(50);
      }
      throw new Error(`redis-server did not start on port ${port}`);
    },
    async kill() {
      if (!server) return;
      server.kill('SIGKILL');
      await exited(server);
    },
    async shutdown() {
      if (!server) return;
      const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
      // SHUTDOWN never answers: the connection just closes.
      await client.shutdown().catch(() => {});
      client.disconnect();
      await exited(server);
    },
    freeze() {
      server?.kill('SIGSTOP');
    },
    thaw() {
      server?.kill('SIGCONT');
    },
    async destroy() {
      await redis.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}

async function isLoaded(url: string): Promise<boolean> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  try {
    await client.connect();
    return /loading:0/.test(await client.info('persistence'));
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
