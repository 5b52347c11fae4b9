import type { Keys } from './keys.ts';
import type { RedisClient } from './redis.ts';

/**
 * The organization's pending credential timers: one sorted set, member = timer id, score = when it is due
 * (ms). The credential store writes it inside each transition's commit, so it always matches the records;
 * BullMQ wake-up jobs only say "look at this organization's timers now" (see the credential store).
 *
 * Firing is claim → run → release. A claim moves due timers' scores to a lease deadline in one call, so two
 * processes never run the same timer at once; a process that dies mid-run leaves its claims to come due again
 * when the lease ends. A run's own commit removes or moves the timer; release removes what is still held
 * under this claim's lease (a timer whose transition was refused as stale, or changed nothing).
 */

// KEYS: 1 timers. ARGV: 1 now ms, 2 lease deadline ms, 3 limit. Returns the claimed ids.
const CLAIM_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return due
`;

// KEYS: 1 timers. ARGV: 1 lease deadline ms, then ids. Removes the ids still held under that lease.
const RELEASE_SCRIPT = `
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == lease then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 'OK'
`;

export interface TimerClaim {
  ids: string[];
  leaseUntilMs: number;
}

type WithTimerScripts = RedisClient & {
  plugboardClaimTimers(numKeys: number, ...args: (string | number)[]): Promise<string[]>;
  plugboardReleaseTimers(numKeys: number, ...args: (string | number)[]): Promise<string>;
};

export function createTimerIndex(redis: RedisClient, keys: Keys) {
  redis.defineCommand('plugboardClaimTimers', { lua: CLAIM_SCRIPT });
  redis.defineCommand('plugboardReleaseTimers', { lua: RELEASE_SCRIPT });
  const scripts = redis as WithTimerScripts;
  const timersKey = (organizationId: string) => keys.org(organizationId).timers;

  return {
    async claimDue(organizationId: string, nowMs: number, leaseMs: number, limit: number): Promise<TimerClaim> {
      const leaseUntilMs = nowMs + leaseMs;
      const ids = await scripts.plugboardClaimTimers(1, timersKey(organizationId), nowMs, leaseUntilMs, limit);
      return { ids, leaseUntilMs };
    },

    async release(organizationId: string, claim: TimerClaim, ids: string[]): Promise<void> {
      if (ids.length > 0) await scripts.plugboardReleaseTimers(1, timersKey(organizationId), claim.leaseUntilMs, ...ids);
    },

    /** Of these ids, the ones with no pending timer. */
    async missing(organizationId: string, ids: string[]): Promise<string[]> {
      if (ids.length === 0) return [];
      const scores = await redis.zmscore(timersKey(organizationId), ...ids);
      return ids.filter((_, index) => scores[index] === null);
    },

    /** Adds timers that are not pending; one that is (perhaps claimed) keeps its score. */
    async addMissing(organizationId: string, timers: { id: string; runAtMs: number }[]): Promise<void> {
      if (timers.length > 0) await redis.zadd(timersKey(organizationId), 'NX', ...timers.flatMap((timer) => [timer.runAtMs, timer.id]));
    },

    /** When the first timer due after `afterMs` (exclusive) and by `untilMs` is due, or null when there is none. */
    async nextDueMs(organizationId: string, afterMs: number, untilMs: number): Promise<number | null> {
      const from = Number.isFinite(afterMs) ? `(${afterMs}` : '-inf';
      const [, score] = await redis.zrangebyscore(timersKey(organizationId), from, untilMs, 'WITHSCORES', 'LIMIT', 0, 1);
      return score === undefined ? null : Number(score);
    },
  };
}
