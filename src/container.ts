import pino, { type Logger } from 'pino';
import type { Config } from './config.ts';
import { createSecretBox } from './crypto/secret-box.ts';
import { closeQueues, createQueues } from './queues.ts';
import { createServices, type Services } from './services/index.ts';
import type { DnsResolver } from './services/webhook-delivery.ts';
import { createKeys } from './storage/keys.ts';
import { closeRedisClient, createRedisClient, duplicateForQueues, watchConnection, type ConnectionWatch, type RedisClient } from './storage/redis.ts';
import { createSealedSecrets } from './storage/sealed-secrets.ts';
import { loggerOptions } from './logger.ts';
import { createWorkMetrics, type WorkMetrics } from './work-metrics.ts';

export interface DependencyOverrides {
  logger?: Logger;
  redis?: RedisClient;
  now?: () => Date;
  /** The DNS resolver behind webhook delivery's SSRF guard (tests stub it). */
  webhookDnsResolver?: DnsResolver;
}

export interface Container {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  /** BullMQ's connection (queues and workers); see `duplicateForQueues`. */
  queueRedis: RedisClient;
  /** Whether `redis` and `queueRedis` answer right now (health checks, the Redis gate, workers pausing). */
  redisWatches: { redis: ConnectionWatch; queueRedis: ConnectionWatch };
  services: Services;
  /** What this process's workers did, served on `/metrics`. */
  workMetrics: WorkMetrics;
  close(): Promise<void>;
}

/** Builds everything a process needs except its listeners: API, workers and CLIs all start here. */
export function createContainer(config: Config, overrides: DependencyOverrides = {}): Container {
  const logger = overrides.logger ?? pino(loggerOptions(config));
  const ownsRedis = !overrides.redis;
  const redis = overrides.redis ?? createRedisClient(config, `${config.keyPrefix}:main`);
  const keys = createKeys(config.keyPrefix);
  const secretBox = createSecretBox(config.encryptionKeys);
  const ctx = {
    config,
    logger,
    redis,
    keys,
    secretBox,
    secrets: createSealedSecrets(redis, keys, secretBox),
    now: overrides.now ?? (() => new Date()),
  };
  const queueRedis = duplicateForQueues(redis, `${config.keyPrefix}:queues`);
  const redisWatches = { redis: watchConnection(redis, logger, 'main'), queueRedis: watchConnection(queueRedis, logger, 'queues') };
  const queues = createQueues(queueRedis, keys);
  const workMetrics = createWorkMetrics();
  const services = createServices(ctx, queues, {
    webhookDelivery: { resolve: overrides.webhookDnsResolver, onAttempt: workMetrics.deliveryAttempted },
  });
  return {
    config,
    logger,
    redis,
    queueRedis,
    redisWatches,
    services,
    workMetrics,
    async close() {
      redisWatches.redis.stop();
      redisWatches.queueRedis.stop();
      await closeQueues(queues);
      await closeRedisClient(queueRedis);
      if (ownsRedis) await closeRedisClient(redis);
    },
  };
}
