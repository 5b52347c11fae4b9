import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type RedisClient = Redis;

/**
 * One connection for commands. BullMQ makes its own blocking connections from the same URL.
 * `maxRetriesPerRequest: null` keeps commands queued while Redis restarts instead of failing them.
 */
export function createRedisClient(url: string, name: string): RedisClient {
  return new Redis(url, { connectionName: name, maxRetriesPerRequest: null, enableAutoPipelining: true });
}

export class UnsafeRedisError extends Error {}

/** SPEC §6: Redis must never evict our data; persistence off is allowed but warned about. */
export async function checkRedisSettings(redis: RedisClient, logger: Logger): Promise<void> {
  const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
  if (policy !== 'noeviction') {
    throw new UnsafeRedisError(
      `Redis maxmemory-policy is "${policy}"; Plugboard needs "noeviction" (evicted keys would lose credentials, events and jobs)`,
    );
  }
  const [, appendonly] = (await redis.config('GET', 'appendonly')) as [string, string];
  const [, save] = (await redis.config('GET', 'save')) as [string, string];
  if (appendonly !== 'yes' && save.trim() === '') {
    logger.warn('Redis has neither AOF nor RDB snapshots enabled: a Redis restart loses all data');
  }
}
