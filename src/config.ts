/**
 * Configuration: read once from an environment map, validated, then passed down explicitly.
 * Nothing else in the code base reads `process.env` (only the entry points hand it to `loadConfig`).
 */

import { isIP } from 'node:net';
import { B64TOKEN } from './crypto/hashing.ts';
import { cidrEntries, parseCidrList } from './webhooks/address-guard.ts';
import { parseRetrySchedule } from './webhooks/retry-policy.ts';
import { DEFAULT_GATE_TUNING } from './storage/webhook-endpoint-gate.ts';

export type SmsGatewayKind = 'log' | 'webhook' | 'twilio';

export interface RedisNode {
  host: string;
  port: number;
}

export interface EncryptionKey {
  kid: string;
  key: Buffer;
}

export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  /** The Redis URL, and whether the operator chose it (an unset URL lets `npm start` run a private redis-server). */
  redisUrl: string;
  isRedisUrlExplicit: boolean;
  /** Seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES). Empty means the single Redis at `redisUrl`. */
  redisClusterNodes: RedisNode[];
  keyPrefix: string;
  /** First key encrypts; all of them decrypt. */
  encryptionKeys: EncryptionKey[];
  sandboxPort: number;
  /** A workers process's `/healthz`, `/readyz` and `/metrics` listener (`start:workers` only); 0: none. */
  workersPort: number;
  /** Where connectors reach the sandbox utility site. Defaults to the local one on `sandboxPort`. */
  sandboxBaseUrl: string;
  mfaChallengeTtlSeconds: number;
  mfaMaxAttempts: number;
  sessionWarningSeconds: number;
  syncIntervalSeconds: number;
  sandboxShortSessionSeconds: number;
  /** Credential steps processed at once by one worker process (timers and deliveries have their own limits). */
  workerConcurrency: number;
  /** A job whose worker stops renewing its lock for this long is taken over by another worker. */
  workerLockDurationMs: number;
  /** How often workers look for jobs whose worker died (BullMQ stalled-job check). */
  workerStalledIntervalMs: number;
  /** First delay of the exponential backoff while a provider website is unreachable, and how many tries in all. */
  providerRetryDelayMs: number;
  providerRetryAttempts: number;
  /** After those tries, how long until a login tries the provider again (and again, until it answers). */
  providerOutageRetrySeconds: number;
  /** How often the reconciler re-creates missing credential timers and steps. */
  reconcileIntervalSeconds: number;
  webhookTimeoutMs: number;
  webhookRetryScheduleSeconds: number[];
  webhookDisableAfterSeconds: number;
  /** Requests in flight to one endpoint, across all worker processes: its share of delivery capacity. */
  webhookMaxInFlightPerEndpoint: number;
  webhookMaxEndpoints: number;
  /** CIDRs as configured (validated at start-up); parse with `parseCidrList`. */
  webhookAllowedTargets: string;
  /** How long the previous signing secret keeps signing after `rotateSecret` (SPEC: 24 h). */
  webhookSecretOverlapSeconds: number;
  smsGateway: SmsGatewayKind;
  smsMaxPerHourPerOrganization: number;
  smsWebhookUrl: string | undefined;
  twilio: { accountSid: string; authToken: string; from: string; baseUrl: string } | undefined;
  bootstrapDemo: boolean;
  logLevel: string;
  bodyLimitBytes: number;
  /** How long a client may take to send its whole request (headers and body); then 408 and the socket closes. */
  requestTimeoutMs: number;
  /** Addresses and CIDRs of the proxies in front (their X-Forwarded-For names the client); empty: none. */
  trustProxy: string[];
  /**
   * How long SIGTERM waits for the work in flight (requests, provider round trips of up to 30 s, webhook
   * attempts) before the process exits anyway.
   */
  shutdownGraceSeconds: number;
  rateLimitPerMinute: number;
  tokenRateLimitPerMinute: number;
  /** Wrong passwords per account in 15 minutes, from all addresses together (see services/password-attempts). */
  passwordFailuresPerAccount: number;
  /** Wrong passwords per account in 15 minutes from one address. */
  passwordFailuresPerAccountAndAddress: number;
  accessTokenTtlSeconds: number;
  /** The bearer token `/metrics` asks for (API and workers processes); undefined: `/metrics` is open. */
  metricsToken: string | undefined;
  dataDir: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Collects every problem instead of stopping at the first, so an operator fixes them in one go. */
class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${name} must be an integer between ${min} and ${max} (got "${text}")`);
      return fallback;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (['true', '1', 'yes'].includes(text.toLowerCase())) return true;
    if (['false', '0', 'no'].includes(text.toLowerCase())) return false;
    this.problems.push(`${name} must be true or false (got "${text}")`);
    return fallback;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${text}")`);
      return fallback;
    }
    return text as T;
  }

  url(name: string, fallback: string, protocols: string[]): string {
    const text = this.raw(name) ?? fallback;
    try {
      const parsed = new URL(text);
      // `redis:secret@host` parses, as a URL without a host: its "password" would be shown as a path.
      if (!protocols.includes(parsed.protocol) || !text.startsWith(`${parsed.protocol}//`)) throw new Error('protocol');
      return text.replace(/\/+$/, '');
    } catch {
      // Start-up errors go to logs: a password in the URL (redis://:secret@host) stays out of them.
      this.problems.push(`${name} must be a ${protocols.join(' or ')} URL (got "${redactUrl(text)}")`);
      return fallback;
    }
  }

  require(name: string, reason: string): string {
    const text = this.raw(name);
    if (text === undefined) this.problems.push(`${name} is required ${reason}`);
    return text ?? '';
  }
}

/** A URL fit for a log or an error: whatever sits between the scheme and the last `@` (user, password) is masked. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:(?:\/\/)?).*@/s, '$1***@');
}

export function parseEncryptionKeys(text: string): EncryptionKey[] {
  const keys = text.split(',').map((entry) => {
    const [kid, material, ...rest] = entry.trim().split(':');
    if (!kid || !material || rest.length > 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(kid)) {
      throw new Error('each entry must look like kid:base64(32 bytes)');
    }
    const key = Buffer.from(material, 'base64');
    if (key.length !== 32) throw new Error(`key "${kid}" must decode to exactly 32 bytes`);
    return { kid, key };
  });
  // Sealing takes the first key of a kid and opening looks the kid up: two keys under one kid would seal
  // secrets that no process could open again.
  const repeated = keys.find((key, index) => keys.findIndex((other) => other.kid === key.kid) !== index);
  if (repeated) throw new Error(`key id "${repeated.kid}" appears twice; give each key its own id`);
  return keys;
}

/** `host:port,host:port,…`; an IPv6 host is written in brackets: `[::1]:7001`. */
export function parseRedisClusterNodes(text: string): RedisNode[] {
  return text.split(',').map((entry) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry.trim());
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) throw new Error(`"${entry.trim()}" is not host:port`);
    return { host: match[1] ?? match[2] ?? '', port };
  });
}

export const DEFAULT_RETRY_SCHEDULE = '5,300,1800,7200,18000,36000,50400,72000,86400';

export function loadConfig(env: Env): Config {
  const read = new EnvReader(env);
  const port = read.integer('PORT', 3000, 0, 65535);
  const host = read.string('HOST', '127.0.0.1');
  if (!isIP(host) && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host)) {
    read.problems.push(`HOST must be an IP address or a host name (got "${host}")`);
  }
  const sandboxPort = read.integer('SANDBOX_PORT', 3001, 0, 65535);
  const keyPrefix = read.string('KEY_PREFIX', 'pb');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(keyPrefix)) {
    read.problems.push(`KEY_PREFIX may only hold letters, digits, "_", "." and "-" (got "${keyPrefix}")`);
  }

  let encryptionKeys: EncryptionKey[] = [];
  const keysText = read.raw('ENCRYPTION_KEYS');
  if (keysText === undefined) {
    read.problems.push('ENCRYPTION_KEYS is required (npm start generates one into .data/ on a local machine)');
  } else {
    try {
      encryptionKeys = parseEncryptionKeys(keysText);
    } catch (error) {
      read.problems.push(`ENCRYPTION_KEYS: ${(error as Error).message}`);
    }
  }

  let redisClusterNodes: RedisNode[] = [];
  const clusterNodesText = read.raw('REDIS_CLUSTER_NODES');
  if (clusterNodesText !== undefined) {
    if (read.raw('REDIS_URL') !== undefined) {
      read.problems.push('set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (Redis Cluster), not both');
    }
    try {
      redisClusterNodes = parseRedisClusterNodes(clusterNodesText);
    } catch (error) {
      read.problems.push(`REDIS_CLUSTER_NODES must be a comma list of host:port: ${(error as Error).message}`);
    }
  }

  const scheduleText = read.string('WEBHOOK_RETRY_SCHEDULE', DEFAULT_RETRY_SCHEDULE);
  let webhookRetryScheduleSeconds: number[] = [];
  try {
    webhookRetryScheduleSeconds = [...parseRetrySchedule(scheduleText)];
  } catch (error) {
    read.problems.push(`WEBHOOK_RETRY_SCHEDULE: ${(error as Error).message}`);
  }
  const webhookAllowedTargets = read.string('WEBHOOK_ALLOWED_TARGETS', '');
  try {
    parseCidrList(webhookAllowedTargets);
  } catch (error) {
    read.problems.push(`WEBHOOK_ALLOWED_TARGETS: ${(error as Error).message}`);
  }

  const trustProxyText = read.string('TRUST_PROXY', '');
  try {
    parseCidrList(trustProxyText);
  } catch (error) {
    read.problems.push(`TRUST_PROXY: ${(error as Error).message}`);
  }
  // As parseCidrList reads it: an empty entry (a trailing comma) is no address.
  const trustProxy = cidrEntries(trustProxyText);
  const metricsToken = read.raw('METRICS_TOKEN');
  // Sent as `Authorization: Bearer <token>`, so only what a bearer token may hold; long enough not to be guessed
  // (`/metrics` has no rate limit). The value stays out of the problem: start-up problems go to the logs.
  if (metricsToken !== undefined && !new RegExp(`^(?=.{32,1024}$)${B64TOKEN}$`).test(metricsToken)) {
    read.problems.push('METRICS_TOKEN must be 32 to 1024 letters, digits or -._~+/ (a bearer token), e.g. from `openssl rand -hex 32`');
  }
  const smsGateway = read.oneOf<SmsGatewayKind>('SMS_GATEWAY', 'log', ['log', 'webhook', 'twilio']);
  const smsWebhookUrl =
    smsGateway === 'webhook' ? read.url('SMS_WEBHOOK_URL', read.require('SMS_WEBHOOK_URL', 'when SMS_GATEWAY=webhook'), ['http:', 'https:']) : undefined;
  const twilio =
    smsGateway === 'twilio'
      ? {
          accountSid: read.require('TWILIO_ACCOUNT_SID', 'when SMS_GATEWAY=twilio'),
          authToken: read.require('TWILIO_AUTH_TOKEN', 'when SMS_GATEWAY=twilio'),
          from: read.require('TWILIO_FROM', 'when SMS_GATEWAY=twilio'),
          baseUrl: read.url('TWILIO_BASE_URL', 'https://api.twilio.com', ['http:', 'https:']),
        }
      : undefined;

  const config: Config = {
    port,
    host,
    publicUrl: read.url('PUBLIC_URL', `http://${host.includes(':') ? `[${host}]` : host}:${port}`, ['http:', 'https:']),
    redisUrl: read.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    isRedisUrlExplicit: read.raw('REDIS_URL') !== undefined,
    redisClusterNodes,
    keyPrefix,
    encryptionKeys,
    sandboxPort,
    workersPort: read.integer('WORKERS_PORT', 0, 0, 65535),
    sandboxBaseUrl: read.url('SANDBOX_BASE_URL', `http://127.0.0.1:${sandboxPort}`, ['http:', 'https:']),
    mfaChallengeTtlSeconds: read.integer('MFA_CHALLENGE_TTL_SECONDS', 600, 1, 86400),
    mfaMaxAttempts: read.integer('MFA_MAX_ATTEMPTS', 3, 1, 10),
    sessionWarningSeconds: read.integer('SESSION_WARNING_SECONDS', 259200, 0, 365 * 86400),
    syncIntervalSeconds: read.integer('SYNC_INTERVAL_SECONDS', 86400, 1, 365 * 86400),
    sandboxShortSessionSeconds: read.integer('SANDBOX_SHORT_SESSION_SECONDS', 60, 1, 86400),
    workerConcurrency: read.integer('WORKER_CONCURRENCY', 10, 1, 1000),
    workerLockDurationMs: read.integer('WORKER_LOCK_DURATION_MS', 30_000, 500, 600_000),
    workerStalledIntervalMs: read.integer('WORKER_STALLED_INTERVAL_MS', 30_000, 100, 600_000),
    providerRetryDelayMs: read.integer('PROVIDER_RETRY_DELAY_MS', 30_000, 10, 3_600_000),
    providerRetryAttempts: read.integer('PROVIDER_RETRY_ATTEMPTS', 8, 1, 50),
    providerOutageRetrySeconds: read.integer('PROVIDER_OUTAGE_RETRY_SECONDS', 3600, 1, 7 * 86400),
    reconcileIntervalSeconds: read.integer('RECONCILE_INTERVAL_SECONDS', 60, 1, 86400),
    webhookTimeoutMs: read.integer('WEBHOOK_TIMEOUT_MS', 15000, 100, 120000),
    webhookRetryScheduleSeconds,
    webhookDisableAfterSeconds: read.integer('WEBHOOK_DISABLE_AFTER_SECONDS', 432000, 1, 365 * 86400),
    webhookMaxInFlightPerEndpoint: read.integer('WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT', DEFAULT_GATE_TUNING.maxInFlightPerEndpoint, 1, 1000),
    webhookMaxEndpoints: read.integer('WEBHOOK_MAX_ENDPOINTS', 50, 1, 10_000),
    webhookAllowedTargets,
    webhookSecretOverlapSeconds: read.integer('WEBHOOK_SECRET_OVERLAP_SECONDS', 86400, 0, 30 * 86400),
    smsGateway,
    smsMaxPerHourPerOrganization: read.integer('SMS_MAX_PER_HOUR_PER_ORGANIZATION', 100, 1, 1_000_000),
    smsWebhookUrl,
    twilio,
    bootstrapDemo: read.boolean('BOOTSTRAP_DEMO', false),
    logLevel: read.oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    bodyLimitBytes: read.integer('BODY_LIMIT_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: read.integer('REQUEST_TIMEOUT_MS', 30_000, 1000, 600_000),
    trustProxy,
    // A code step is two provider requests of up to 30 s each (the code, then the accounts page): cut short,
    // it runs again elsewhere and sends the code a second time. A process exits as soon as it is idle anyway.
    shutdownGraceSeconds: read.integer('SHUTDOWN_GRACE_SECONDS', 70, 1, 3600),
    rateLimitPerMinute: read.integer('RATE_LIMIT_PER_MINUTE', 1200, 1, 1_000_000),
    tokenRateLimitPerMinute: read.integer('TOKEN_RATE_LIMIT_PER_MINUTE', 60, 1, 1_000_000),
    passwordFailuresPerAccount: read.integer('PASSWORD_FAILURES_PER_ACCOUNT', 100, 1, 1_000_000),
    passwordFailuresPerAccountAndAddress: read.integer('PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS', 10, 1, 1_000_000),
    accessTokenTtlSeconds: read.integer('ACCESS_TOKEN_TTL_SECONDS', 3600, 60, 86400),
    metricsToken,
    dataDir: read.string('DATA_DIR', '.data'),
  };

  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}
