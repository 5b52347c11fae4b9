/**
 * Test scaffolding, in the manner of fastify/demo's `build(t)`: every test gets its own app on its own
 * Redis key prefix, closed and wiped in teardown. Redis is the real one on 127.0.0.1:6379, or the Redis
 * Cluster named by TEST_REDIS_CLUSTER_NODES (`npm run test:cluster` sets it), so the whole suite also
 * proves the code runs on a cluster.
 */
import './fixtures/lingering-handles.ts';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp, type App, type AppOptions } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { loggerOptions } from '../src/logger.ts';
import { scanAll, type RedisClient } from '../src/storage/redis.ts';
import { buildSandboxSite } from '../src/sandbox/site.ts';
import { startWorkers, type RunningWorkers } from '../workers/index.ts';
import { testRedisEnv, wipePrefix } from './fixtures/test-redis.ts';

export { TEST_REDIS_URL, testRedisEnv, connectTestRedis, wipePrefix } from './fixtures/test-redis.ts';

type Teardown = { teardown(fn: () => unknown): void };

/** A logger as in production (same redaction), at the most verbose level, writing its JSON lines into an array. */
export function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: pino(loggerOptions({ logLevel: 'trace' }), stream) };
}

export function uniquePrefix(label = 't'): string {
  return `test-${label}-${randomBytes(5).toString('hex')}`;
}

/** A config as from the environment (so it is validated the same way), with a fresh key prefix. */
export function testConfig(env: Record<string, string> = {}, overrides: Partial<Config> = {}): Config {
  const config = loadConfig({
    ...testRedisEnv,
    KEY_PREFIX: uniquePrefix(),
    ENCRYPTION_KEYS: `test1:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'silent',
    SANDBOX_PORT: '0',
    BOOTSTRAP_DEMO: 'false',
    WEBHOOK_ALLOWED_TARGETS: '127.0.0.0/8,::1/128',
    ...env,
  });
  return { ...config, ...overrides };
}

/** Every key matching `pattern` on every node: what a test uses instead of KEYS, which sees one cluster node only. */
export async function keysMatching(redis: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const batch of scanAll(redis, pattern)) found.push(...batch);
  return found;
}

/** Every value under the given patterns, of every key type, as one text: what secrets-at-rest checks search. */
export async function dumpKeys(redis: RedisClient, patterns: string[]): Promise<string> {
  const parts: string[] = [];
  for (const pattern of patterns) {
    for (const key of await keysMatching(redis, pattern)) {
      const type = await redis.type(key);
      // Deleted since the scan (a worker emptied a set, a job was removed): nothing left to search.
      if (type === 'none') continue;
      parts.push(`${type} ${key}`);
      if (type === 'string') parts.push((await redis.get(key)) ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else parts.push(`(unhandled type ${type})`);
    }
  }
  return parts.join('\n');
}

export interface BuildOptions extends AppOptions {
  env?: Record<string, string>;
  config?: Partial<Config>;
  /** Test-only routes, added before `ready()` so every plugin's onRoute hooks (rate limits, idempotency) see them. */
  routes?: (app: App) => void | Promise<void>;
}

export async function build(t: Teardown, options: BuildOptions = {}): Promise<App> {
  const config = testConfig(options.env, options.config);
  const app = await buildApp(config, options);
  t.teardown(async () => {
    await app.close();
    await wipePrefix(config.keyPrefix);
  });
  await options.routes?.(app);
  await app.ready();
  return app;
}

export interface TestOrganization {
  organizationId: string;
  userId: string;
  clientId: string;
  clientSecret: string;
  email: string;
  password: string;
  accessToken: string;
  headers: { authorization: string };
}

let orgCounter = 0;

/** Creates an organization through the service layer and gets a token the way a client would. */
export async function createOrganization(app: App, name = 'Test org'): Promise<TestOrganization> {
  orgCounter += 1;
  const email = `admin${orgCounter}-${randomBytes(4).toString('hex')}@example.com`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const created = await app.services.organizations.createOrganization({ name, email, password });
  const response = await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    payload: { grant_type: 'client_credentials', client_id: created.clientId, client_secret: created.clientSecret },
  });
  if (response.statusCode !== 200) throw new Error(`token request failed: ${response.statusCode} ${response.body}`);
  const accessToken = (response.json() as { access_token: string }).access_token;
  return { ...created, email, password, accessToken, headers: { authorization: `Bearer ${accessToken}` } };
}

export interface TestStack {
  app: App;
  config: Config;
  /** The environment the config was read from, for a child process that must share it. */
  env: Record<string, string>;
  siteUrl: string;
  org: TestOrganization;
  /** Starts workers in this process (when built without them, or after `stopWorkers`). */
  startWorkers(): Promise<void>;
  /** Stops the in-process workers (teardown does it too). */
  stopWorkers(): Promise<void>;
}

export interface StackOptions {
  env?: Record<string, string>;
  /** Adjust the sandbox site before it listens (e.g. a hook that holds requests). */
  site?: (site: FastifyInstance) => void;
  /** False: the test runs workers itself (e.g. in a child process). */
  isWorkerInProcess?: boolean;
  /** Where the stack logs (e.g. `capturingLogger()`); silent when not given. */
  logger?: AppOptions['logger'];
}

/** Short timings so retries, stalled jobs and the reconciler happen within a test's patience. */
const STACK_DEFAULTS: Record<string, string> = {
  PROVIDER_RETRY_DELAY_MS: '50',
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '500',
  RECONCILE_INTERVAL_SECONDS: '1',
};

/**
 * The whole product on one fresh prefix: the sandbox utility site over HTTP on 127.0.0.1:0, the API, and
 * (unless told otherwise) the workers in this process, plus an organization with a token.
 */
export async function buildStack(t: Teardown, options: StackOptions = {}): Promise<TestStack> {
  const baseEnv = { ...STACK_DEFAULTS, ...options.env };
  const site = buildSandboxSite({ shortSessionSeconds: Number(baseEnv.SANDBOX_SHORT_SESSION_SECONDS ?? 60) });
  options.site?.(site);
  const siteUrl = await site.listen({ host: '127.0.0.1', port: 0 });
  const env: Record<string, string> = {
    ...testRedisEnv,
    KEY_PREFIX: uniquePrefix('crd'),
    ENCRYPTION_KEYS: `test1:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'silent',
    BOOTSTRAP_DEMO: 'false',
    ...baseEnv,
    SANDBOX_PORT: '0',
    SANDBOX_BASE_URL: siteUrl,
  };
  const config = testConfig(env);
  const app = await buildApp(config, { logger: options.logger });
  await app.ready();
  let workers: RunningWorkers | null = options.isWorkerInProcess === false ? null : await startWorkers(app.container);
  const startInProcess = async () => {
    workers ??= await startWorkers(app.container);
  };
  const stopWorkers = async () => {
    await workers?.close();
    workers = null;
  };
  t.teardown(async () => {
    await stopWorkers();
    await app.close();
    await site.close();
    await wipePrefix(config.keyPrefix);
  });
  return { app, config, env, siteUrl, org: await createOrganization(app), startWorkers: startInProcess, stopWorkers };
}
