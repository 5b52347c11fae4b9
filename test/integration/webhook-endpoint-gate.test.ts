import t, { type Test } from 'tap';
import { createKeys } from '../../src/storage/keys.ts';
import { unpackJson } from '../../src/storage/packed-json.ts';
import type { StoredRead, StoredValue } from '../../src/storage/redis.ts';
import { createEndpointGate, DEFAULT_GATE_TUNING } from '../../src/storage/webhook-endpoint-gate.ts';
import { connectTestRedis, uniquePrefix, wipePrefix } from '../helper.ts';

/** The gate's hand-over, on its own: a finish that gives its slot to a waiter, admitted in the same call. */
const ORG = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';
const ENDPOINT = 'whe_aaaaaaaaaaaaaaaaaaaaaaaaaa';

async function setUp(t: Test, maxInFlightPerEndpoint = 2) {
  const prefix = uniquePrefix('gate');
  const redis = connectTestRedis();
  t.teardown(async () => {
    await wipePrefix(prefix);
    redis.disconnect();
  });
  const keys = createKeys(prefix);
  const gate = createEndpointGate(redis, keys, 1_000, { ...DEFAULT_GATE_TUNING, maxInFlightPerEndpoint });
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
  return { redis, gate, orgKeys, toRead, inFlight, admitted };
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
  const outcome = await gate.finish(ORG, ENDPOINT, 'lease-1', true, 12, undefined, { leaseId: 'lease-2', readOnAdmission: toRead });
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
  const outcome = await gate.finish(ORG, ENDPOINT, 'lease-1', true, 12, settlement, { leaseId: 'lease-2', readOnAdmission: toRead.slice(1) });
  t.same(asBytes(outcome.handedOver?.read), [[0x31, 0x20, 0x01, 0xff, 0x00], ENTRY_READ, null]);
  t.same((await redis.lrangeBuffer(orgKeys.attempts('evt_a'), 0, -1)).map(unpackJson), ['{"n":1}'], 'the attempt is logged');
  t.same(await inFlight(), ['lease-2']);
});

t.test('no hand-over after a failure, nor of a lease that was no longer held', async (t) => {
  const { gate, toRead, inFlight, admitted } = await setUp(t);
  await admitted('lease-1');
  const failed = await gate.finish(ORG, ENDPOINT, 'lease-1', false, 12, undefined, { leaseId: 'lease-2', readOnAdmission: toRead });
  t.equal(failed.handedOver, null, 'a failing endpoint gets the waiter only if the breaker lets it ask');
  t.same(await inFlight(), [], 'lease-1 released, lease-2 not admitted');

  await admitted('lease-3');
  await gate.release(ORG, ENDPOINT, 'lease-3');
  const late = await gate.finish(ORG, ENDPOINT, 'lease-3', true, 12, undefined, { leaseId: 'lease-4', readOnAdmission: toRead });
  t.equal(late.handedOver, null, 'handing over a slot nobody held would put one more request in flight');
  t.same(await inFlight(), []);
});
