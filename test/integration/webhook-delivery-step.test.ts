import t, { type Test } from 'tap';
import { createWebhookDeliveryService, DEFAULT_MAX_LOCAL_WAIT_MS, MIN_LOCAL_RECHECK_MS, type WebhookDeliveryService } from '../../src/services/webhook-delivery.ts';
import { createDeliveryLog, MAX_ATTEMPTS_LOGGED_PER_EVENT } from '../../src/storage/delivery-log.ts';
import { packJson, unpackJson } from '../../src/storage/packed-json.ts';
import { connectTestRedis } from '../helper.ts';
import { commitEvent, createEndpoint, startWebhookStack, type WebhookStack } from '../fixtures/webhook-stack.ts';
import { answer, startReceiver } from '../fixtures/webhook-receiver.ts';

/**
 * One delivery step, called directly (no worker), for the cases a running system rarely hits at the right
 * moment: the endpoint disabled or deleted, or the event gone, between fan-out and delivery; the endpoint
 * at its in-flight limit when the step starts.
 */
async function setUp(t: Test) {
  const stack = await startWebhookStack(t, { isWorkerInProcess: false });
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  const redis = connectTestRedis();
  t.teardown(() => redis.disconnect());
  const orgKeys = stack.container.services.ctx.keys.org(stack.org.organizationId);
  const job = { organizationId: stack.org.organizationId, endpointId: endpoint.id, eventId: event.id, attemptNumber: 1, trigger: 'event' as const };
  const run = () => stack.container.services.webhookDeliveries.run(job, 'lease-1');
  const leasesHeld = () => redis.zcard(orgKeys.webhookEndpointInFlight(endpoint.id));
  const gaveUp = () => redis.zrange(orgKeys.webhookEndpointFailed(endpoint.id), 0, -1);
  return { stack, receiver, endpoint, event, run, leasesHeld, gaveUp };
}

const patch = (stack: WebhookStack, id: string, payload: object) =>
  stack.app.inject({ method: 'PATCH', url: `/plug/webhooks/endpoints/${id}`, headers: stack.org.headers, payload });

t.test('a disabled endpoint: no request, the lease is given back, and the delivery waits for recover', async (t) => {
  const { stack, receiver, endpoint, event, run, leasesHeld, gaveUp } = await setUp(t);
  t.equal((await patch(stack, endpoint.id, { isEnabled: false })).statusCode, 200);
  t.same(await run(), { kind: 'finished' });
  t.equal(receiver.received.length, 0);
  t.equal(await leasesHeld(), 0);
  t.same(await gaveUp(), [event.id]);
});

t.test('a deleted endpoint: no request, nothing kept', async (t) => {
  const { stack, receiver, endpoint, run, leasesHeld, gaveUp } = await setUp(t);
  const deleted = await stack.app.inject({ method: 'DELETE', url: `/plug/webhooks/endpoints/${endpoint.id}`, headers: stack.org.headers });
  t.equal(deleted.statusCode, 204);
  t.same(await run(), { kind: 'finished' });
  t.equal(receiver.received.length, 0);
  t.equal(await leasesHeld(), 0);
  t.same(await gaveUp(), []);
});

t.test('an endpoint deleted between the gate reading its record and the step reading its secrets: as if deleted before', async (t) => {
  const { stack, receiver, endpoint, run, leasesHeld, gaveUp } = await setUp(t);
  // Its record read by the gate, as it was; its secrets already gone with the deletion's commit.
  const { ctx } = stack.container.services;
  await ctx.redis.unlink(ctx.keys.org(stack.org.organizationId).webhookEndpointSecrets(endpoint.id));
  t.same(await run(), { kind: 'finished' }, 'finished, not failed (a failed job would be retried and logged as a failure)');
  t.equal(receiver.received.length, 0);
  t.equal(await leasesHeld(), 0);
  t.same(await gaveUp(), []);
});

t.test('an enabled endpoint: one request carrying the event as committed, the lease given back', async (t) => {
  const { receiver, event, run, leasesHeld, gaveUp } = await setUp(t);
  t.same(await run(), { kind: 'finished' });
  t.equal(receiver.received.length, 1);
  t.same(JSON.parse(receiver.received[0]?.body ?? ''), event);
  t.equal(await leasesHeld(), 0);
  t.same(await gaveUp(), []);
});

t.test('a redirect is not a delivery: no redirect is followed, the attempt failed and is retried later', async (t) => {
  const { stack, receiver, event, run, leasesHeld } = await setUp(t);
  receiver.respond = (_request, res) => res.writeHead(302, { location: `${receiver.url}/elsewhere` }).end();
  t.match(await run(), { kind: 'later' });
  t.equal(receiver.received.length, 1);
  t.equal(await leasesHeld(), 0);
  const attempts = await stack.app.inject({ url: `/plug/events/${event.id}/attempts`, headers: stack.org.headers });
  t.match(attempts.json(), { data: [{ responseStatus: 302, outcome: 'failed' }] });
});

t.test('a delivery that gave up and is then delivered leaves the gave-up set, so recover does not send it again', async (t) => {
  const { stack, endpoint, event, run, gaveUp } = await setUp(t);
  await patch(stack, endpoint.id, { isEnabled: false });
  await run();
  t.same(await gaveUp(), [event.id]);
  await patch(stack, endpoint.id, { isEnabled: true });
  t.same(await run(), { kind: 'finished' });
  t.same(await gaveUp(), []);
});

t.test(`an event's attempt log keeps its newest ${MAX_ATTEMPTS_LOGGED_PER_EVENT} attempts`, async (t) => {
  const { stack, endpoint, event } = await setUp(t);
  const { redis, keys } = stack.container.services.ctx;
  const log = createDeliveryLog(redis, keys);
  const organizationId = stack.org.organizationId;
  for (let n = 1; n <= MAX_ATTEMPTS_LOGGED_PER_EVENT + 1; n++) {
    await log.settle({ organizationId, eventId: event.id, endpointId: endpoint.id, attemptJson: JSON.stringify({ n }), settlement: 'retrying', nowMs: Date.now() });
  }
  const attemptsKey = keys.org(organizationId).attempts(event.id);
  t.equal(await redis.llen(attemptsKey), MAX_ATTEMPTS_LOGGED_PER_EVENT);
  const oldest = await redis.lindexBuffer(attemptsKey, 0);
  t.same(JSON.parse(unpackJson(oldest ?? packJson('{}', 'attempt'))), { n: 2 }, 'the first attempt is the one dropped');
});

/**
 * Fills the endpoint's in-flight set to its limit with leases of other (imaginary) jobs. With
 * `firstExpiresInMs`, one of them is old enough that the gate drops it (lease expiry, by Redis's clock) that
 * long from now: a slot frees with no timing on the test's side. The endpoint is known to answer in 1 ms,
 * so the gate hands out near turns.
 */
async function occupyEveryLease(setup: Awaited<ReturnType<typeof setUp>>, firstExpiresInMs?: number) {
  const { stack, endpoint } = setup;
  const { ctx, webhookDeliveries } = stack.container.services;
  const key = ctx.keys.org(stack.org.organizationId).webhookEndpointInFlight(endpoint.id);
  const { maxInFlightPerEndpoint, leaseMarginMs } = webhookDeliveries.gate.tuning;
  const leaseMs = stack.container.config.webhookTimeoutMs + leaseMarginMs;
  const [seconds, micros] = await ctx.redis.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const startedAt = (i: number) => (i === 0 && firstExpiresInMs !== undefined ? now - leaseMs + firstExpiresInMs : now);
  await ctx.redis.hset(ctx.keys.org(stack.org.organizationId).webhookEndpointHealth(endpoint.id), 'latencyMs', 1);
  await ctx.redis.zadd(key, ...Array.from({ length: maxInFlightPerEndpoint }, (_, i) => [startedAt(i), `other-${i}`]).flat());
}

/**
 * Records, in order, the gate's asks (`admit <lease>`) and finishes (`finish <lease> sent` / `… answered`)
 * of a delivery service, by wrapping its gate's methods until the test ends.
 */
function recordGateCalls(t: Test, gate: WebhookDeliveryService['gate']): string[] {
  const calls: string[] = [];
  const { admit, finish } = gate;
  gate.admit = (...args) => {
    calls.push(`admit ${args[2]}`);
    return admit(...args);
  };
  gate.finish = async (...args) => {
    calls.push(`finish ${args[2]} sent`);
    const outcome = await finish(...args);
    calls.push(`finish ${args[2]} answered`);
    return outcome;
  };
  t.teardown(() => {
    gate.admit = admit;
    gate.finish = finish;
  });
  return calls;
}

t.test('a busy endpoint that frees a slot within the wait: the step waits in the worker and delivers', async (t) => {
  const setup = await setUp(t);
  await occupyEveryLease(setup, 5);
  t.same(await setup.run(), { kind: 'finished' }, 'delivered, not put back in the queue');
  t.equal(setup.receiver.received.length, 1);
});

t.test('a busy endpoint that stays busy: the step gives its slot back and comes again later', async (t) => {
  const setup = await setUp(t);
  await occupyEveryLease(setup);
  const started = Date.now();
  const step = await setup.run();
  t.match(step, { kind: 'later', next: { attemptNumber: 1 } }, 'postponed, not counted as an attempt');
  t.ok(Date.now() - started < DEFAULT_MAX_LOCAL_WAIT_MS + 500, 'after the wait in the worker, not at its turn');
  t.equal(setup.receiver.received.length, 0, 'no request was made');
});

t.test('a delivery waiting in the worker books one turn and asks again at a bounded pace', async (t) => {
  const setup = await setUp(t);
  const { stack, endpoint } = setup;
  const { ctx, webhookDeliveries } = stack.container.services;
  await occupyEveryLease(setup);
  const calls = recordGateCalls(t, webhookDeliveries.gate);
  const started = Date.now();
  t.match(await setup.run(), { kind: 'later' }, 'the endpoint stayed busy for the whole wait');
  const asks = calls.filter((call) => call.startsWith('admit')).length;
  const nextTurnAt = Number(await ctx.redis.hget(ctx.keys.org(stack.org.organizationId).webhookEndpointHealth(endpoint.id), 'nextTurnAt'));
  t.ok(nextTurnAt - started < 200, `the turn booked is the first ask's (${nextTurnAt - started} ms after the start), not the last's (≈ ${DEFAULT_MAX_LOCAL_WAIT_MS} ms)`);
  t.ok(asks > 1, `it asked again while it waited (${asks} asks)`);
  t.ok(asks <= DEFAULT_MAX_LOCAL_WAIT_MS / MIN_LOCAL_RECHECK_MS + 5, `no tighter than one ask per ${MIN_LOCAL_RECHECK_MS} ms (${asks} asks in ${Date.now() - started} ms)`);
});

/**
 * Two deliveries of one process for an endpoint with one free slot, answering `status` after 300 ms: the
 * first takes the slot, the second waits in the worker. Its reserved turn is a minute away (as after a
 * burst of postponements) and it may wait 10 s, so only the first's freed slot explains a quick delivery.
 */
async function twoDeliveriesForOneSlot(t: Test, status: number) {
  const setup = await setUp(t);
  const { stack, endpoint } = setup;
  const { services } = stack.container;
  const deliveries = createWebhookDeliveryService(services.ctx, { webhooks: services.webhooks }, { maxLocalWaitMs: 10_000 });
  const slow = await startReceiver(t, (request, res) => setTimeout(() => answer(status)(request, res), 300));
  t.equal((await patch(stack, endpoint.id, { url: slow.url })).statusCode, 200);
  await occupyEveryLease(setup);
  const orgKeys = services.ctx.keys.org(stack.org.organizationId);
  await services.ctx.redis.zrem(orgKeys.webhookEndpointInFlight(endpoint.id), 'other-0');
  await services.ctx.redis.hset(orgKeys.webhookEndpointHealth(endpoint.id), 'nextTurnAt', Date.now() + 60_000);
  const second = await commitEvent(stack);
  const job = (eventId: string) => ({ organizationId: stack.org.organizationId, endpointId: endpoint.id, eventId, attemptNumber: 1, trigger: 'event' as const });
  const calls = recordGateCalls(t, deliveries.gate);
  const started = Date.now();
  const steps = await Promise.all([deliveries.run(job(setup.event.id), 'lease-1'), deliveries.run(job(second.id), 'lease-2')]);
  const callsFromFirstFinish = calls.slice(calls.indexOf('finish lease-1 sent'));
  return { steps, elapsedMs: Date.now() - started, callsFromFirstFinish, received: slow.received, eventIds: [setup.event.id, second.id], elsewhere: setup.receiver.received };
}

t.test('a slot freed by a success goes at once to the delivery waiting for it, handed over by the finish', async (t) => {
  const { steps, elapsedMs, callsFromFirstFinish, received, eventIds, elsewhere } = await twoDeliveriesForOneSlot(t, 204);
  t.same(steps, [{ kind: 'finished' }, { kind: 'finished' }], 'both delivered');
  t.same(received.map((delivery) => delivery.id).sort(), eventIds.sort(), 'each its own event');
  t.equal(elsewhere.length, 0);
  t.ok(elapsedMs < 5_000, `the second went when the first was done (${elapsedMs} ms), not at its turn a minute away`);
  t.same(
    callsFromFirstFinish,
    ['finish lease-1 sent', 'finish lease-1 answered', 'finish lease-2 sent', 'finish lease-2 answered'],
    "the first's finish handed its slot to the waiter: no ask of its own",
  );
});

t.test('after a failed request the waiter is woken to ask, right behind the call that frees the slot', async (t) => {
  const { steps, elapsedMs, callsFromFirstFinish, received } = await twoDeliveriesForOneSlot(t, 500);
  t.match(steps, [{ kind: 'later' }, { kind: 'later' }], 'both failed and are retried later');
  t.equal(received.length, 2, 'the second was sent too, once the first had failed');
  t.ok(elapsedMs < 5_000, `without waiting for its turn (${elapsedMs} ms)`);
  t.same(
    callsFromFirstFinish.slice(0, 3),
    ['finish lease-1 sent', 'admit lease-2', 'finish lease-1 answered'],
    'the waiter asked right behind the finish that freed its slot, before its answer came back',
  );
});
