import { EVENT_RETENTION_SECONDS } from './event-log.ts';
import { packJson } from './packed-json.ts';
import type { Keys } from './keys.ts';
import { execTransaction, type RedisClient } from './redis.ts';

/**
 * Where deliveries are recorded: each event's attempt log (the newest attempts, expiring with the event)
 * and each endpoint's gave-up set (what `recover` resends; it expires with its newest entry's event, so a
 * delivery that gives up after its endpoint was deleted cannot leave the set behind for good). The writes
 * are a Lua fragment, not a script of their own, so that the endpoint gate's finish call can record a
 * successful delivery in its round trip.
 */

/** Where a delivery stands after an attempt: `recover` resends the ones that gave up. */
export type DeliverySettlement = 'succeeded' | 'retrying' | 'gave_up';

export const MAX_ATTEMPTS_LOGGED_PER_EVENT = 500;

export interface Settlement {
  organizationId: string;
  eventId: string;
  endpointId: string;
  /** The attempt as JSON; null when no request was made (e.g. the endpoint is disabled). */
  attemptJson: string | null;
  settlement: DeliverySettlement;
  nowMs: number;
}

/**
 * Lua statements that log the attempt and settle the delivery, reading KEYS[k] (the event's attempt log),
 * KEYS[k + 1] (the endpoint's gave-up set) and ARGV[a] … ARGV[a + 5] as `settleKeysAndArgs` lays them out.
 */
export function settleLua(k: number, a: number): string {
  const key = (offset: number) => `KEYS[${k + offset}]`;
  const arg = (offset: number) => `ARGV[${a + offset}]`;
  return `
if ${arg(0)} ~= '' then
  redis.call('RPUSH', ${key(0)}, ${arg(0)})
  redis.call('LTRIM', ${key(0)}, -tonumber(${arg(1)}), -1)
  redis.call('EXPIRE', ${key(0)}, ${arg(2)})
end
if ${arg(3)} == 'succeeded' then
  redis.call('ZREM', ${key(1)}, ${arg(5)})
elseif ${arg(3)} == 'gave_up' then
  redis.call('ZADD', ${key(1)}, ${arg(4)}, ${arg(5)})
  redis.call('ZREMRANGEBYSCORE', ${key(1)}, '-inf', tonumber(${arg(4)}) - tonumber(${arg(2)}) * 1000)
  redis.call('EXPIRE', ${key(1)}, ${arg(2)})
end`;
}

/** The attempt is logged packed (see `packed-json.ts`): one per delivery attempt, kept as long as its event. */
export function settleKeysAndArgs(keys: Keys, settlement: Settlement): { keys: string[]; args: (string | number | Buffer)[] } {
  const orgKeys = keys.org(settlement.organizationId);
  return {
    keys: [orgKeys.attempts(settlement.eventId), orgKeys.webhookEndpointFailed(settlement.endpointId)],
    args: [
      settlement.attemptJson === null ? '' : packJson(settlement.attemptJson, 'attempt'),
      MAX_ATTEMPTS_LOGGED_PER_EVENT,
      EVENT_RETENTION_SECONDS,
      settlement.settlement,
      settlement.nowMs,
      settlement.eventId,
    ],
  };
}

type SettleCommand = RedisClient & { webhookSettleDelivery(...keysThenArgs: (string | number | Buffer)[]): Promise<number> };

export function createDeliveryLog(redis: RedisClient, keys: Keys) {
  redis.defineCommand('webhookSettleDelivery', { numberOfKeys: 2, lua: `${settleLua(1, 1)}\nreturn 1` });
  const commands = redis as SettleCommand;
  return {
    async settle(settlement: Settlement): Promise<void> {
      const settle = settleKeysAndArgs(keys, settlement);
      await commands.webhookSettleDelivery(...settle.keys, ...settle.args);
    },

    /** Events an endpoint never got (it was disabled) join its gave-up set, as deliveries that gave up. */
    async recordMissed(organizationId: string, endpointId: string, eventIds: string[], nowMs: number): Promise<void> {
      const key = keys.org(organizationId).webhookEndpointFailed(endpointId);
      await execTransaction(
        redis
          .multi()
          .zadd(key, ...eventIds.flatMap((eventId) => [nowMs, eventId]))
          .zremrangebyscore(key, '-inf', nowMs - EVENT_RETENTION_SECONDS * 1000)
          .expire(key, EVENT_RETENTION_SECONDS),
        'recordMissed',
      );
    },
  };
}
