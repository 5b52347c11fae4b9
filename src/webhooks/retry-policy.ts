/**
 * When to retry a failed webhook delivery.
 *
 * The schedule lists, in seconds, the wait after each failed attempt: after attempt n fails the next one
 * comes `schedule[n - 1]` seconds later, ±20 % jitter so that endpoints recovering from an outage are not hit
 * by every queued event at the same instant. Once the schedule is used up there is no further retry.
 *
 * A receiver's `Retry-After` (seconds or an HTTP date) can postpone a retry but never bring it forward:
 * the delay is the later of the jittered scheduled delay and Retry-After. Otherwise an endpoint answering
 * "503, Retry-After: 1" through a short outage would burn the whole multi-day schedule in seconds.
 * Retry-After is capped at the larger of 24 h and the scheduled step, so a receiver cannot park an event
 * indefinitely, and no delay is ever shorter than 1 s.
 */
export type RetrySchedule = readonly number[];

const JITTER = 0.2;
const MIN_DELAY_MS = 1000;
const RETRY_AFTER_CAP_MS = 24 * 60 * 60 * 1000;

/** Parses a comma-separated list of whole seconds such as `5,300,1800`; throws on anything else. */
export function parseRetrySchedule(text: string): RetrySchedule {
  if (text.trim() === '') throw new Error('retry schedule must list at least one delay in seconds');
  return text.split(',').map((entry, index) => {
    const trimmed = entry.trim();
    const seconds = Number(trimmed);
    if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(seconds) || seconds < 1) {
      throw new Error(`retry schedule entry ${index + 1} ("${trimmed}") must be a whole number of seconds, at least 1`);
    }
    return seconds;
  });
}

/**
 * Milliseconds to wait before the attempt after `attemptNumber` (1 = the first delivery) failed,
 * or null when the schedule is exhausted and the delivery has definitely failed.
 */
export function nextRetryDelayMs({
  schedule,
  attemptNumber,
  retryAfterHeader,
  random = Math.random,
  nowMs = Date.now(),
}: {
  schedule: RetrySchedule;
  attemptNumber: number;
  retryAfterHeader?: string | undefined;
  /** Uniform in [0, 1), like Math.random; injected by tests. */
  random?: () => number;
  /** The clock an HTTP-date Retry-After is measured against. */
  nowMs?: number;
}): number | null {
  if (!Number.isSafeInteger(attemptNumber) || attemptNumber < 1) {
    throw new RangeError(`attemptNumber must be a whole number from 1, got ${attemptNumber}`);
  }
  const stepSeconds = schedule[attemptNumber - 1];
  if (stepSeconds === undefined) return null;

  const stepMs = stepSeconds * 1000;
  const jitteredMs = stepMs * (1 + JITTER * (2 * random() - 1));
  const retryAfterMs = Math.min(parseRetryAfterMs(retryAfterHeader, nowMs) ?? 0, Math.max(RETRY_AFTER_CAP_MS, stepMs));
  return Math.round(Math.max(jitteredMs, retryAfterMs, MIN_DELAY_MS));
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. Anything unparseable is ignored. */
function parseRetryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : date - nowMs;
}
