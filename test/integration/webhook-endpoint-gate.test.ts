import t, { type Test } from 'tap';
import { createKeys } from '../../src/storage/keys.ts';
import { unpackJson } from '../../src/storage/packed-json.ts';
import type { StoredRead, StoredValue } from '../../src/storage/redis.ts';
import { createEndpointGate, DEFAULT_GATE_TUNING, type EndpointGateTuning } from '../../src/storage/webhook-endpoint-gate.ts';
import { connectTestRedis, uniquePrefix, wipePrefix } from '../helper.ts';

/** The gate on its own: the hand-over (a finish that gives its slot to a waiter, admitted in the same call), failure streaks. */
const ORG = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';
const ENDPOINT = 'whe_aaaaaaaaaaaaaaaaaaaaaaaaaa';

async function setUp(t: Test, maxInFlightPerEndpoint = 2, tuning: Partial<EndpointGateTuning> = {}) {
  const prefix = uniquePrefix('gate');
  const redis = connectTestRedis();
  t.teardown(async () => {
    await wipePrefix(prefix);
    redis.disconnect();
  });
  const keys = createKeys(prefix);
  const gate = createEndpointGate(redis, keys, 1_000, { ...DEFAULT_GATE_TUNING, maxInFlightPerEndpoint, ...tuning });
  const orgKeys = keys.org(ORG);
  await redis.set(orgKeys.webhookEndpoint(ENDPOINT), 'endpoint record');
  await redis.set(orgKeys.event('evt_a'), Buffer.from([0x31, 0x20, 0x01, 0xff, 0x00]));
  const entryId = await redis.xadd(orgKeys.events, '*', 'body', Buffer.from([0x01, 0xff, 0x00]));
  // Two string keys, a stream entry and one that does not exist.
  const toRead: StoredRead[] = [
    orgKeys.webhookEndpoint(ENDPOINT),
    orgKeys.event('evt_a'),
    { stream: orgKeys.events, entryId: entryId ?? '' },
    { stream: orgKeys.events, entryId: '0-1' },
  ];
  const inFlight = () => redis.zrange(orgKeys.webhookEndpointInFlight(ENDPOINT), 0, -1);
  const admitted = async (leaseId: string) => t.match(await gate.admit(ORG, ENDPOINT, leaseId), { admitted: true }, `${leaseId} admitted`);
  const fail = (leaseId: string) => gate.finish(ORG, ENDPOINT, leaseId, { delivered: false, latencyMs: 5, retryInMs: 1000 });
  return { redis, gate, orgKeys, toRead, inFlight, admitted, fail };
}

/** What was read, as byte arrays: a value's, each field's and value's of an entry, or null. */
const asBytes = (values: StoredValue[] | undefined) => values?.map((value) => (Array.isArray(value) ? value.map((part) => [...part]) : value && [...value]));
const ENTRY_READ = [[...Buffer.from('body')], [0x01, 0xff, 0x00]];

t.test('an admission reads what it is asked to: string values and stream entries, null for what is missing', async (t) => {
  const { gate, toRead } = await setUp(t);
  const admission = await gate.admit(ORG, ENDPOINT, 'lease-1', toRead);
  t.same(asBytes(admission.admitted ? admission.read : undefined), [[...Buffer.from('endpoint record')], [0x31, 0x20, 0x01, 0xff, 0x00], ENTRY_READ, null]);
});

t.test('a successful request hands its slot to the waiter, admitted with what it reads, the count unchanged', async (t) => {
  const { gate, toRead, inFlight, admitted } = await setUp(t);
  await admitted('lease-1');
  await admitted('lease-other');
  t.match(await gate.admit(ORG, ENDPOINT, 'lease-2'), { admitted: false, reason: 'busy' }, 'the endpoint is full');
  const outcome = await gate.finish(ORG, ENDPOINT, 'lease-1', { delivered: true, latencyMs: 12, handover: { leaseId: 'lease-2', readOnAdmission: toRead } });
  t.equal(outcome.failingSinceMs, null);
  t.equal(outcome.handedOver?.admitted, true);
  t.same(
    asBytes(outcome.handedOver?.read),
    [[...Buffer.from('endpoint record')], [0x31, 0x20, 0x01, 0xff, 0x00], ENTRY_READ, null],
    'its reads, bytes as stored',
  );
  t.same((await inFlight()).sort(), ['lease-2', 'lease-other'], 'lease-1 gone, lease-2 in, still two');
});

t.test('a hand-over with a settlement reads the right keys and settles too', async (t) => {
  const { redis, gate, orgKeys, toRead, inFlight, admitted } = await setUp(t, 1);
  await admitted('lease-1');
  const settlement = { organizationId: ORG, eventId: 'evt_a', endpointId: ENDPOINT, attemptJson: '{"n":1}', settlement: 'succeeded' as const, nowMs: Date.now() };
  const outcome = await gate.finish(ORG, ENDPOINT, 'lease-1', { delivered: true, latencyMs: 12, settlement, handover: { leaseId: 'lease-2', readOnAdmission: toRead.slice(1) } });
  t.same(asBytes(outcome.handedOver?.read), [[0x31, 0x20, 0x01, 0xff, 0x00], ENTRY_READ, null]);
  t.same((await redis.lrangeBuffer(orgKeys.attempts('evt_a'), 0, -1)).map(unpackJson), ['{"n":1}'], 'the attempt is logged');
  t.same(await inFlight(), ['lease-2']);
});

t.test('no hand-over after a failure, nor of a lease that was no longer held', async (t) => {
  const { gate, toRead, inFlight, admitted } = await setUp(t);
  await admitted('lease-1');
  const failed = await gate.finish(ORG, ENDPOINT, 'lease-1', { delivered: false, latencyMs: 12, retryInMs: 1000, handover: { leaseId: 'lease-2', readOnAdmission: toRead } });
  t.equal(failed.handedOver, null, 'a failing endpoint gets the waiter only if the breaker lets it ask');
  t.same(await inFlight(), [], 'lease-1 released, lease-2 not admitted');

  await admitted('lease-3');
  await gate.release(ORG, ENDPOINT, 'lease-3');
  const late = await gate.finish(ORG, ENDPOINT, 'lease-3', { delivered: true, latencyMs: 12, handover: { leaseId: 'lease-4', readOnAdmission: toRead } });
  t.equal(late.handedOver, null, 'handing over a slot nobody held would put one more request in flight');
  t.same(await inFlight(), []);
});

t.test('a failure streak lasts while a failed delivery is due to try again; a failure after that starts a new one', async (t) => {
  // Retries may run this late: a 100 ms breaker cooldown, a 100 ms postponement, and the 1 s request timeout plus a 100 ms margin.
  const { gate, admitted, redis, orgKeys } = await setUp(t, 2, { breakerMaxCooldownMs: 100, maxPostponeMs: 100, leaseMarginMs: 100, breakerFailureThreshold: 100 });
  const fail = async (leaseId: string, retryInMs: number | null) => {
    await admitted(leaseId);
    return (await gate.finish(ORG, ENDPOINT, leaseId, { delivered: false, latencyMs: 5, retryInMs })).failingSinceMs;
  };
  const streakStart = await fail('lease-1', 200);
  t.type(streakStart, 'number');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal(await fail('lease-2', null), streakStart, 'the retry, late but within what the gate can hold it back: the same streak');
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(await fail('lease-3', 200), streakStart, 'still within the first retry\'s time: a delivery that gave up does not end it');
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const restarted = await fail('lease-4', null);
  t.ok(restarted !== null && streakStart !== null && restarted - streakStart >= 3000, 'after every retry was due: a new streak');
  t.equal(await redis.hget(orgKeys.webhookEndpointHealth(ENDPOINT), 'failures'), '1', "the breaker counts the new streak's failures only");
  await new Promise((resolve) => setTimeout(resolve, 100));
  const afterGaveUp = await fail('lease-5', 1000);
  t.ok(afterGaveUp !== null && restarted !== null && afterGaveUp > restarted, 'a failure that gave up holds no streak open');

  await admitted('lease-6');
  t.equal((await gate.finish(ORG, ENDPOINT, 'lease-6', { delivered: true, latencyMs: 5 })).failingSinceMs, null, 'a success ends it');
  const afterSuccess = await fail('lease-7', 1000);
  t.ok(afterSuccess !== null && afterGaveUp !== null && afterSuccess > afterGaveUp, 'and the next failure starts afresh');
});

t.test("what a request in flight when its endpoint was deleted writes afterwards expires with the events' retention", async (t) => {
  const { redis, gate, orgKeys } = await setUp(t);
  await gate.admit(ORG, ENDPOINT, 'lease-1');
  await gate.admit(ORG, ENDPOINT, 'lease-2');
  // The endpoint is deleted (its keys with it) while both requests are out.
  await redis.del(orgKeys.webhookEndpoint(ENDPOINT), orgKeys.webhookEndpointHealth(ENDPOINT), orgKeys.webhookEndpointInFlight(ENDPOINT));
  await gate.finish(ORG, ENDPOINT, 'lease-1', { delivered: true, latencyMs: 4_000 });
  const gaveUp = { organizationId: ORG, eventId: 'evt_a', endpointId: ENDPOINT, attemptJson: '{"n":1}', settlement: 'gave_up' as const, nowMs: Date.now() };
  await gate.finish(ORG, ENDPOINT, 'lease-2', { delivered: false, latencyMs: 4_000, retryInMs: null, settlement: gaveUp });
  for (const key of [orgKeys.webhookEndpointHealth(ENDPOINT), orgKeys.webhookEndpointFailed(ENDPOINT)]) {
    const ttl = await redis.ttl(key);
    t.ok(ttl > 34 * 86400 && ttl <= 35 * 86400, `${key.split(':').pop()} expires (TTL ${ttl} s)`);
  }
});



t.test('once the cooldown is over, the breaker lets one probe through at a time (half-open)', async (t) => {
  const { gate, admitted, fail } = await setUp(t, 5, { breakerFailureThreshold: 2, breakerBaseCooldownMs: 100 });
  await admitted('lease-1');
  await admitted('lease-2');
  await fail('lease-1');
  t.equal((await fail('lease-2')).opened, true, 'the threshold opens the breaker');
  t.match(await gate.admit(ORG, ENDPOINT, 'lease-3'), { admitted: false, reason: 'parked' });
  await new Promise((resolve) => setTimeout(resolve, 150));
  await admitted('probe');
  t.match(await gate.admit(ORG, ENDPOINT, 'lease-4'), { admitted: false, reason: 'busy' }, 'a second request waits for the probe, though the endpoint has 5 slots');
});

t.test('failures of requests that started before the breaker opened do not re-trip it', async (t) => {
  const { redis, admitted, fail, orgKeys } = await setUp(t, 5, { breakerFailureThreshold: 2, breakerBaseCooldownMs: 10_000 });
  for (const lease of ['lease-1', 'lease-2', 'lease-3']) await admitted(lease);
  await fail('lease-1');
  t.equal((await fail('lease-2')).opened, true);
  const openUntil = await redis.hget(orgKeys.webhookEndpointHealth(ENDPOINT), 'openUntil');
  t.equal((await fail('lease-3')).opened, false, 'a late failure lands while it is open');
  t.equal(await redis.hget(orgKeys.webhookEndpointHealth(ENDPOINT), 'openUntil'), openUntil, 'the cooldown is not doubled');
  t.equal(await redis.hget(orgKeys.webhookEndpointHealth(ENDPOINT), 'trips'), '1');
});
