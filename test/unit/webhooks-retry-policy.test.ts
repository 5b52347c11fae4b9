import t from 'tap';
import { nextRetryDelayMs, parseRetrySchedule } from '../../src/webhooks/retry-policy.ts';

const HOUR_MS = 60 * 60 * 1000;
const specDefault = parseRetrySchedule('5,300,1800,7200,18000,36000,50400,72000,86400');
const middle = () => 0.5; // no jitter
const lowest = () => 0; // -20 %
const highest = () => 1 - Number.EPSILON; // just under +20 %

t.test('parseRetrySchedule', async (t) => {
  t.same(specDefault, [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]);
  t.same(parseRetrySchedule(' 5 , 60 '), [5, 60], 'spaces around entries are fine');
  t.throws(() => parseRetrySchedule(''), /at least one delay/);
  t.throws(() => parseRetrySchedule('  '), /at least one delay/);
  for (const [text, position, entry] of [
    ['5,,300', 2, ''],
    ['5,300,', 3, ''],
    ['0', 1, '0'],
    ['5,-1', 2, '-1'],
    ['1.5', 1, '1.5'],
    ['5,5m', 2, '5m'],
    ['1e3', 1, '1e3'],
    ['99999999999999999999', 1, '99999999999999999999'],
  ] as const) {
    t.throws(() => parseRetrySchedule(text), { message: `retry schedule entry ${position} ("${entry}") must be a whole number of seconds, at least 1` }, text);
  }
});

t.test('follows the schedule with ±20 % jitter, then stops', async (t) => {
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 1, random: middle }), 5000);
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 1, random: lowest }), 4000);
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 1, random: highest }), 6000);
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 2, random: middle }), 300_000);
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 9, random: lowest }), 69_120_000, '24 h - 20 %');
  t.equal(nextRetryDelayMs({ schedule: specDefault, attemptNumber: 10, random: middle }), null, 'ten attempts in all');

  const delays = Array.from({ length: 200 }, () => nextRetryDelayMs({ schedule: [100], attemptNumber: 1 }) ?? 0);
  t.ok(delays.every((delay) => delay >= 80_000 && delay <= 120_000), 'Math.random by default, within the band');
  t.ok(new Set(delays).size > 1, 'and actually jittered');
});

t.test('never waits less than a second', async (t) => {
  t.equal(nextRetryDelayMs({ schedule: [1], attemptNumber: 1, random: lowest }), 1000);
});

t.test('rejects attempt numbers that cannot exist', async (t) => {
  for (const attemptNumber of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => nextRetryDelayMs({ schedule: specDefault, attemptNumber }), RangeError, String(attemptNumber));
  }
});

t.test('Retry-After postpones a retry but never brings it forward', async (t) => {
  const afterFirst = (retryAfterHeader: string, nowMs?: number) =>
    nextRetryDelayMs({ schedule: specDefault, attemptNumber: 1, retryAfterHeader, random: middle, ...(nowMs === undefined ? {} : { nowMs }) });

  t.equal(afterFirst('120'), 120_000, 'delay-seconds longer than the schedule wins');
  t.equal(afterFirst(' 120 '), 120_000, 'surrounding spaces are tolerated');
  t.equal(afterFirst('1'), 5000, 'a shorter Retry-After keeps the scheduled delay');
  t.equal(afterFirst('0'), 5000);
  t.equal(afterFirst('604800'), 24 * HOUR_MS, 'capped at 24 h');

  const nowMs = Date.parse('2026-03-01T12:00:00Z');
  t.equal(afterFirst('Sun, 01 Mar 2026 12:10:00 GMT', nowMs), 10 * 60 * 1000, 'an HTTP date, measured from now');
  t.equal(afterFirst('Sunday, 01-Mar-26 12:10:00 GMT', nowMs), 10 * 60 * 1000, 'the obsolete RFC 850 form too');
  t.equal(afterFirst('Sun, 01 Mar 2026 11:00:00 GMT', nowMs), 5000, 'a date in the past keeps the schedule');
  t.equal(afterFirst('Fri, 01 Jan 2100 00:00:00 GMT', nowMs), 24 * HOUR_MS, 'a far date is capped');
  t.ok(Math.abs((afterFirst(new Date(Date.now() + 60_000).toUTCString()) ?? 0) - 60_000) < 2000, 'the real clock by default');

  for (const junk of ['soon', '-5', '1.5', '']) t.equal(afterFirst(junk), 5000, `"${junk}" is ignored`);

  t.equal(
    nextRetryDelayMs({ schedule: [5, 172_800], attemptNumber: 2, retryAfterHeader: '604800', random: () => 0 }),
    172_800_000,
    'the cap grows with a scheduled step longer than 24 h (even with the jittered step below it)',
  );
  t.equal(
    nextRetryDelayMs({ schedule: specDefault, attemptNumber: 10, retryAfterHeader: '60' }),
    null,
    'Retry-After does not extend an exhausted schedule',
  );
});
