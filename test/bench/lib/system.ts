/**
 * Runs Plugboard the way an operator does: API, workers and sandbox site as separate processes
 * (`node --import tsx src/main.ts <role>`), configured only through their environment, on a key prefix of
 * their own. Shared by the benchmarks and the resilience suite, which also kill and restart roles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { parseRedisClusterNodes } from '../../../src/config.ts';
import { tcpAnswers } from '../../../src/local/dev-defaults.ts';
import { QUEUE_NAMES } from '../../../src/queues.ts';
import { createRedisClient } from '../../../src/storage/redis.ts';

export type Role = 'api' | 'workers' | 'sandbox';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = path.join(REPO_ROOT, 'src/main.ts');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export interface SystemOptions {
  redisUrl: string;
  /** A REDIS_CLUSTER_NODES value: when set, every role uses this Redis Cluster instead of `redisUrl`. */
  redisClusterNodes?: string;
  /** A fresh prefix per system; `wipePrefix` removes it afterwards. */
  keyPrefix: string;
  /** Roles started right away; others can be started later with `start`. */
  roles: Role[];
  /** Extra environment for every role (overrides the defaults below). */
  env?: Record<string, string>;
  /** Each role's stdout and stderr go to `<logDir>/<role>.log`. */
  logDir: string;
  /** Roles to run under `--cpu-prof`, writing `.cpuprofile` files (one per thread) into `<logDir>/profiles/<role>`. */
  profile?: Role[];
  /** How many processes the workers role runs (default 1); they share the queues like any deployment's. */
  workersProcesses?: number;
}

export interface System {
  apiUrl: string;
  sandboxUrl: string;
  /** The environment every role runs with (also what an in-process container must use to share its data). */
  env: Record<string, string>;
  /** Starts the role's processes (several for workers when `workersProcesses` says so). */
  start(role: Role): Promise<void>;
  /** SIGTERM and wait for a graceful exit, or SIGKILL to simulate a crash; every process of the role. */
  stop(role: Role, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  isRunning(role: Role): boolean;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function uniqueRunPrefix(label: string): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export async function startSystem(options: SystemOptions): Promise<System> {
  const [port, sandboxPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    ...(options.redisClusterNodes ? { REDIS_CLUSTER_NODES: options.redisClusterNodes } : { REDIS_URL: options.redisUrl }),
    KEY_PREFIX: options.keyPrefix,
    ENCRYPTION_KEYS: `bench1:${randomBytes(32).toString('base64')}`,
    HOST: '127.0.0.1',
    PORT: String(port),
    SANDBOX_PORT: String(sandboxPort),
    LOG_LEVEL: 'warn',
    BOOTSTRAP_DEMO: 'false',
    WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8',
    // A load test is one client hammering the API on purpose.
    RATE_LIMIT_PER_MINUTE: '1000000',
    TOKEN_RATE_LIMIT_PER_MINUTE: '1000000',
    ...options.env,
  };
  const apiUrl = `http://127.0.0.1:${env.PORT}`;
  const sandboxUrl = `http://127.0.0.1:${env.SANDBOX_PORT}`;
  const children = new Map<Role, ChildProcess[]>();
  await mkdir(options.logDir, { recursive: true });
  const profileDir = path.join(options.logDir, 'profiles');
  if (options.profile?.length) await mkdir(profileDir, { recursive: true });

  // A benchmark that throws must not leave servers behind.
  const killAll = () => {
    for (const child of [...children.values()].flat()) child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  const isAlive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
  const isRunning = (role: Role) => (children.get(role) ?? []).some(isAlive);

  function spawnRole(role: Role, logName: string): ChildProcess {
    const profiling = options.profile?.includes(role) ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, role)}`] : [];
    const log = createWriteStream(path.join(options.logDir, `${logName}.log`), { flags: 'a' });
    const child = spawn(process.execPath, [...profiling, '--import', 'tsx', MAIN, role], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    return child;
  }

  async function start(role: Role) {
    if (isRunning(role)) throw new Error(`${role} is already running`);
    const count = role === 'workers' ? (options.workersProcesses ?? 1) : 1;
    const started = Array.from({ length: count }, (_, i) => spawnRole(role, count === 1 ? role : `${role}-${i + 1}`));
    children.set(role, started);
    const exited = Promise.race(
      started.map(
        (child) =>
          new Promise<never>((_, reject) =>
            child.once('exit', (code, signal) => reject(new Error(`${role} exited (${signal ?? code}) while starting; see ${options.logDir}/${role}*.log`))),
          ),
      ),
    );
    exited.catch(() => {});
    await Promise.race([exited, waitUntilReady(role)]);
  }

  async function waitUntilReady(role: Role) {
    if (role === 'api') {
      await waitFor('the API', async () => ((await fetch(`${apiUrl}/readyz`)).ok ? true : undefined), START_TIMEOUT_MS);
    } else if (role === 'sandbox') {
      await waitFor('the sandbox site', async () => ((await tcpAnswers('127.0.0.1', Number(env.SANDBOX_PORT))) ? true : undefined), START_TIMEOUT_MS);
    } else {
      await waitForWorkers();
    }
  }

  /**
   * Workers have no port: they are ready once their BullMQ workers have registered with Redis and their
   * number stops growing. A workers process with no workers at all (feature not built yet) is let through.
   */
  async function waitForWorkers() {
    const redisClusterNodes = options.redisClusterNodes ? parseRedisClusterNodes(options.redisClusterNodes) : [];
    const connection = createRedisClient({ redisUrl: options.redisUrl, redisClusterNodes }, 'system-probe');
    const queues = Object.values(QUEUE_NAMES).map((name) => new Queue(name, { connection, prefix: `{${options.keyPrefix}:q}` }));
    try {
      const count = async () => (await Promise.all(queues.map((queue) => queue.getWorkersCount()))).reduce((a, b) => a + b, 0);
      let previous = -1;
      const deadline = Date.now() + START_TIMEOUT_MS / 2;
      while (Date.now() < deadline) {
        const current = await count();
        if (current > 0 && current === previous) return;
        previous = current;
        await sleep(250);
      }
    } finally {
      await Promise.all(queues.map((queue) => queue.close()));
      connection.disconnect();
    }
  }

  async function stop(role: Role, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') {
    await Promise.all(
      (children.get(role) ?? []).filter(isAlive).map(async (child) => {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  const system: System = {
    apiUrl,
    sandboxUrl,
    env,
    start,
    stop,
    isRunning,
    async close() {
      // The API first (no new work), then workers (finish their jobs), then the sandbox they talk to.
      for (const role of ['api', 'workers', 'sandbox'] as const) await stop(role);
      process.off('exit', killAll);
    },
  };
  try {
    for (const role of options.roles) await start(role);
  } catch (error) {
    await system.close();
    throw error;
  }
  return system;
}
