import { settleKeysAndArgs, settleLua, type Settlement } from './delivery-log.ts';
import { EVENT_RETENTION_SECONDS } from './event-log.ts';
import type { Keys } from './keys.ts';
import { READ_STORED_LUA, readArgs, type RedisClient, type StoredRead, type StoredValue } from './redis.ts';

/**
 * Per-endpoint isolation for webhook delivery, kept in Redis so every worker process shares it.
 *
 * BullMQ has one wait list per queue and no per-group concurrency, so a dead endpoint with a big backlog
 * would fill every worker slot and starve the others. Two things stop that, both decided by one Lua call
 * before a delivery job makes its request:
 *
 * - Bounded in-flight requests per endpoint: a sorted set of leases (job id → start time). A job that finds
 *   its endpoint at the limit reserves the endpoint's next free turn; unless the delivery service can wait
 *   for a slot in the worker (a fast endpoint, see its waiting room), it is put back in BullMQ's delayed set
 *   until then, so its slot goes to another endpoint's job and a backlog returns at the pace the endpoint
 *   answers, not in a stampede.
 *   Leases expire (timeout + margin), so a crashed worker cannot leak them, and are re-entrant by job id,
 *   so a stalled job picked up again keeps its own lease.
 * - A circuit breaker: after `breakerFailureThreshold` consecutive failures the endpoint is "open" for a
 *   cooldown that doubles with each trip. Its jobs are parked in the delayed set until the cooldown ends
 *   without making requests. Then one probe request at a time is admitted (half-open); a success closes the
 *   breaker, a failure re-opens it with a longer cooldown.
 *
 * The endpoint's health hash holds the breaker, the turn reservations, a moving average of its latency,
 * and `failingSince`, the start of the current failure streak, which decides when an endpoint that keeps
 * failing is disabled. A streak lasts while some failed delivery is due to try again (`streakUntil`: its
 * retry time plus the longest the gate can hold it back); a failure after that starts a new streak, so that
 * a quiet spell after the last retry gave up does not count as days of failing.
 */

export interface EndpointGateTuning {
  maxInFlightPerEndpoint: number;
  breakerFailureThreshold: number;
  breakerBaseCooldownMs: number;
  breakerMaxCooldownMs: number;
  /** How long a lease lives without being released: the request timeout plus this margin. */
  leaseMarginMs: number;
  /** The longest a job waits for a turn at a busy endpoint before asking again. */
  maxPostponeMs: number;
}

export const DEFAULT_GATE_TUNING: EndpointGateTuning = {
  // WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT overrides it. Half of a worker process's 200 delivery slots: one
  // endpoint answering in 50 ms can take 2,000 deliveries/s, and a stuck one leaves a process half its slots.
  // With 50, benchmark 4's single endpoint (1,667 timeouts/s, ≈ 50 ms per request under that load) fell 30 s
  // behind; with 100, 6 s; with 200, 4 s, but one slow endpoint could then take a whole process.
  maxInFlightPerEndpoint: 100,
  breakerFailureThreshold: 5,
  breakerBaseCooldownMs: 10_000,
  breakerMaxCooldownMs: 10 * 60_000,
  leaseMarginMs: 5_000,
  maxPostponeMs: 30_000,
};

export type Admission =
  /** `read`: what the caller asked to read on admission, in order (null when missing), as bytes. */
  | { admitted: true; read: StoredValue[] }
  /** The breaker is open; `retryInMs` is the rest of its cooldown. */
  | { admitted: false; reason: 'parked'; retryInMs: number }
  /** The endpoint has its maximum of requests in flight; `retryInMs` is the job's reserved turn. */
  | { admitted: false; reason: 'busy'; retryInMs: number; latencyMs: number };

export interface Outcome {
  /** When the current failure streak started (ms), or null after a success. */
  failingSinceMs: number | null;
  /** Whether this failure opened (or re-opened) the breaker. */
  opened: boolean;
  /** The waiter's admission when the slot was handed over to it (see `finish`), else null. */
  handedOver: Extract<Admission, { admitted: true }> | null;
}

/** A waiter to hand a freed slot to: its lease, and what its admission reads (as `admit`'s). */
export interface Handover {
  leaseId: string;
  readOnAdmission: StoredRead[];
}

/** How an admitted request went, for `finish`. */
export interface FinishedRequest {
  delivered: boolean;
  latencyMs: number;
  /** After a failure: when its delivery tries again, null when it gave up. */
  retryInMs?: number | null;
  /** Logs the attempt and settles the delivery in the same call. */
  settlement?: Settlement;
  /** After a success, the waiter the slot goes to. */
  handover?: Handover;
}

/**
 * The health hash outlives its last write by the events' retention: no delivery can finish later than that,
 * and a request that was in flight when its endpoint was deleted cannot leave the hash behind for good.
 */
const HEALTH_TTL_SECONDS = EVENT_RETENTION_SECONDS;

// Redis's clock, not the workers': leases and cooldowns written by one process are read by others.
const NOW_MS = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

// KEYS: 1 in-flight leases, 2 health, 3… keys to read once admitted. ARGV: 1 lease id, 2 max in flight,
// 3 lease ms, 4 breaker threshold, 5 longest postponement ms, 6 '1' to reserve the turn a busy answer
// names, '0' to only name it, 7… the entry ids of KEYS[3…] (see `readArgs`). Returns { 'admitted' | 'parked'
// | 'busy', ms to wait, then what KEYS[3…] hold when admitted, or the endpoint's typical latency (ms) when busy }.
const ADMIT_SCRIPT = `${NOW_MS}
${READ_STORED_LUA}
local leaseMs = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - leaseMs)
local limit = tonumber(ARGV[2])
local failures = tonumber(redis.call('HGET', KEYS[2], 'failures') or '0')
if failures >= tonumber(ARGV[4]) then
  local openUntil = tonumber(redis.call('HGET', KEYS[2], 'openUntil') or '0')
  if now < openUntil then return { 'parked', openUntil - now } end
  limit = 1
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then
  -- Busy: reserve the next free turn. Turns are spaced by the endpoint's typical latency divided by its
  -- slots (before any request finished: the age of the oldest one in flight), so a backlog comes back at
  -- the pace the endpoint can take instead of all at once. At least 0.1 ms apart: the field is stored with
  -- 14 significant digits, which leaves one decimal of a millisecond timestamp.
  local latency = tonumber(redis.call('HGET', KEYS[2], 'latencyMs') or '-1')
  if latency < 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    latency = now - tonumber(oldest[2])
  end
  local turn = math.max(now, tonumber(redis.call('HGET', KEYS[2], 'nextTurnAt') or '0')) + math.max(latency / limit, 0.1)
  turn = math.min(turn, now + tonumber(ARGV[5]))
  if ARGV[6] == '1' then
    redis.call('HSET', KEYS[2], 'nextTurnAt', turn)
    redis.call('EXPIRE', KEYS[2], ${HEALTH_TTL_SECONDS})
  end
  return { 'busy', math.floor(turn - now), math.floor(latency) }
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], leaseMs)
local reply = { 'admitted', 0 }
for i = 3, #KEYS do reply[i] = readStored(KEYS[i], ARGV[4 + i]) end
return reply
`;

// KEYS: 1 in-flight leases, 2 health, 3 and 4 (with a settlement) the delivery log's, then (with a hand-over)
// the keys to read for the waiter. ARGV: 1 '1' success / '0' failure, 2 threshold, 3 base cooldown ms, 4 max
// cooldown ms, 5 latency ms of the request, 6 lease id, 7 lease id of the waiter to hand the slot to ('' for
// none), 8 lease ms, 9 '1' with a settlement, '0' without, 10 after a failure, how long its streak lasts
// without another (ms, -1 when the delivery gave up), 11… the settlement, with keys 3 and 4, and last the
// entry ids of the keys to read (see `readArgs`). Releases the lease, records the outcome, and settles
// the delivery when asked to. After a success, a lease that was still held goes to the waiter (the count in
// flight does not change, so no limit is crossed). Returns { failingSince ms or -1, 1 if the breaker opened
// now, then, when the slot was handed over, 1 and what the keys to read hold }.
const FINISH_SCRIPT = `${NOW_MS}
${READ_STORED_LUA}
local released = redis.call('ZREM', KEYS[1], ARGV[6])
local firstToRead = 3
if ARGV[9] == '1' then ${settleLua(3, 11)}
  firstToRead = 5
end
local previous = tonumber(redis.call('HGET', KEYS[2], 'latencyMs') or ARGV[5])
redis.call('HSET', KEYS[2], 'latencyMs', math.floor(0.8 * previous + 0.2 * tonumber(ARGV[5])))
redis.call('EXPIRE', KEYS[2], ${HEALTH_TTL_SECONDS})
if ARGV[1] == '1' then
  redis.call('HDEL', KEYS[2], 'failures', 'trips', 'openUntil', 'failingSince', 'streakUntil')
  if ARGV[7] == '' or released == 0 then return { -1, 0 } end
  redis.call('ZADD', KEYS[1], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  local reply = { -1, 0, 1 }
  local firstEntryId = #ARGV - (#KEYS - firstToRead)
  for i = firstToRead, #KEYS do reply[4 + i - firstToRead] = readStored(KEYS[i], ARGV[firstEntryId + i - firstToRead]) end
  return reply
end
local streakUntil = tonumber(redis.call('HGET', KEYS[2], 'streakUntil') or '0')
if now > streakUntil then
  -- A new streak: the breaker's count of the old one's failures goes with it.
  redis.call('HDEL', KEYS[2], 'failures', 'trips')
  redis.call('HSET', KEYS[2], 'failingSince', now)
else
  redis.call('HSETNX', KEYS[2], 'failingSince', now)
end
if tonumber(ARGV[10]) >= 0 then redis.call('HSET', KEYS[2], 'streakUntil', math.max(streakUntil, now + tonumber(ARGV[10]))) end
local failingSince = tonumber(redis.call('HGET', KEYS[2], 'failingSince'))
local failures = redis.call('HINCRBY', KEYS[2], 'failures', 1)
local openUntil = tonumber(redis.call('HGET', KEYS[2], 'openUntil') or '0')
-- Failures of requests that started before the breaker opened land while it is open: they do not re-trip it.
if failures >= tonumber(ARGV[2]) and now >= openUntil then
  local trips = redis.call('HINCRBY', KEYS[2], 'trips', 1)
  local cooldown = math.min(tonumber(ARGV[3]) * 2 ^ (trips - 1), tonumber(ARGV[4]))
  redis.call('HSET', KEYS[2], 'openUntil', now + cooldown)
  return { failingSince, 1 }
end
return { failingSince, 0 }
`;

type GateCommands = RedisClient & {
  // The Buffer variant: the values read can be binary (a stored event's packed envelope).
  webhookGateAdmitBuffer(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<[Buffer, number, ...(StoredValue | number)[]]>;
  webhookGateFinishBuffer(numKeys: number, ...keysThenArgs: (string | number | Buffer)[]): Promise<[number, number, ...(StoredValue | number)[]]>;
};

export function createEndpointGate(redis: RedisClient, keys: Keys, requestTimeoutMs: number, tuning: EndpointGateTuning = DEFAULT_GATE_TUNING) {
  redis.defineCommand('webhookGateAdmit', { lua: ADMIT_SCRIPT });
  redis.defineCommand('webhookGateFinish', { lua: FINISH_SCRIPT });
  const commands = redis as GateCommands;
  const leaseMs = requestTimeoutMs + tuning.leaseMarginMs;
  // The latest a retry due at some time is attempted: parked by an open breaker, postponed by a busy endpoint, its request.
  const retryLatenessMs = tuning.breakerMaxCooldownMs + tuning.maxPostponeMs + leaseMs;

  return {
    tuning,

    /**
     * `readOnAdmission`: keys (in the organization's hash slot) whose values come back with an admission, so
     * the delivery loads its endpoint and event in the same round trip; a postponed job reads nothing.
     * `reserveTurn`: whether a busy answer books the turn it names. A job books one turn per run through the
     * queue; asking again while it waits in the worker must not book more, or every refused ask of a
     * waiting room pushes the endpoint's turns further out and the jobs that do leave come back late.
     */
    async admit(organizationId: string, endpointId: string, leaseId: string, readOnAdmission: StoredRead[] = [], reserveTurn = true): Promise<Admission> {
      const orgKeys = keys.org(organizationId);
      const toRead = readArgs(readOnAdmission);
      const [verdictBytes, ms, ...read] = await commands.webhookGateAdmitBuffer(
        2 + toRead.keys.length,
        orgKeys.webhookEndpointInFlight(endpointId),
        orgKeys.webhookEndpointHealth(endpointId),
        ...toRead.keys,
        leaseId,
        tuning.maxInFlightPerEndpoint,
        leaseMs,
        tuning.breakerFailureThreshold,
        tuning.maxPostponeMs,
        reserveTurn ? '1' : '0',
        ...toRead.entryIds,
      );
      const verdict = verdictBytes.toString();
      if (verdict === 'admitted') return { admitted: true, read: readOnAdmission.map((_, index) => (read[index] as StoredValue) ?? null) };
      if (verdict === 'parked') return { admitted: false, reason: 'parked', retryInMs: ms };
      return { admitted: false, reason: 'busy', retryInMs: ms, latencyMs: Number(read[0] ?? 0) };
    },

    /** Gives the lease back without an outcome: the job found nothing to send. */
    async release(organizationId: string, endpointId: string, leaseId: string): Promise<void> {
      await redis.zrem(keys.org(organizationId).webhookEndpointInFlight(endpointId), leaseId);
    },

    /**
     * Releases the lease and records how the request went, in one call; with `settlement`, the attempt is
     * logged and the delivery settled in the same call (what a delivery whose outcome is final does). With
     * `handover`, a successful request's slot goes straight to that waiter, admitted in the same call: one
     * ask fewer per delivery while an endpoint has a backlog.
     */
    async finish(organizationId: string, endpointId: string, leaseId: string, request: FinishedRequest): Promise<Outcome> {
      const { delivered, latencyMs, retryInMs = null, settlement, handover } = request;
      const orgKeys = keys.org(organizationId);
      const settle = settlement ? settleKeysAndArgs(keys, settlement) : { keys: [], args: [] };
      const toRead = readArgs(handover?.readOnAdmission ?? []);
      const [failingSince, opened, handedOver, ...read] = await commands.webhookGateFinishBuffer(
        2 + settle.keys.length + toRead.keys.length,
        orgKeys.webhookEndpointInFlight(endpointId),
        orgKeys.webhookEndpointHealth(endpointId),
        ...settle.keys,
        ...toRead.keys,
        delivered ? '1' : '0',
        tuning.breakerFailureThreshold,
        tuning.breakerBaseCooldownMs,
        tuning.breakerMaxCooldownMs,
        Math.round(latencyMs),
        leaseId,
        handover?.leaseId ?? '',
        leaseMs,
        settlement ? '1' : '0',
        retryInMs === null ? -1 : retryInMs + retryLatenessMs,
        ...settle.args,
        ...toRead.entryIds,
      );
      return {
        failingSinceMs: failingSince === -1 ? null : failingSince,
        opened: opened === 1,
        handedOver: handedOver === 1 ? { admitted: true, read: toRead.keys.map((_, index) => (read[index] as StoredValue) ?? null) } : null,
      };
    },
  };
}

export type EndpointGate = ReturnType<typeof createEndpointGate>;
