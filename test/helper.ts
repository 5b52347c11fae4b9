/**
 * Test scaffolding, in the manner of fastify/demo's `build(t)`: every test gets its own app on its own
 * Redis key prefix, closed and wiped in teardown. Redis is the real one on 127.0.0.1:6379.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { buildApp, type App, type AppOptions } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';

export const TEST_REDIS_URL = 'redis://127.0.0.1:6379';

type Teardown = { teardown(fn: () => unknown): void };

export function uniquePrefix(label = 't'): string {
  return `test-${label}-${randomBytes(5).toString('hex')}`;
}

/** A config as from the environment (so it is validated the same way), with a fresh key prefix. */
export function testConfig(env: Record<string, string> = {}, overrides: Partial<Config> = {}): Config {
  const config = loadConfig({
    REDIS_URL: TEST_REDIS_URL,
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

/** Deletes every key of a prefix: the org data (`prefix:…`) and the BullMQ queues (`{prefix:q}…`). */
export async function wipePrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    for (const pattern of [`${prefix}:*`, `{${prefix}:q}*`]) {
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (batch.length > 0) await redis.unlink(...batch);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

export async function build(t: Teardown, options: { env?: Record<string, string>; config?: Partial<Config> } & AppOptions = {}): Promise<App> {
  const config = testConfig(options.env, options.config);
  const app = await buildApp(config, options);
  t.teardown(async () => {
    await app.close();
    await wipePrefix(config.keyPrefix);
  });
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
