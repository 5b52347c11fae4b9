import t from 'tap';
import { DEFAULT_GATE_TUNING } from '../../src/storage/webhook-endpoint-gate.ts';
import { startReceiver, type ReceivedWebhook, type Teardown } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack } from '../fixtures/webhook-stack.ts';

const BACKLOG = 500;
const NEW_EVENTS = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** A receiver that never answers: every request hangs until the sender's timeout. Counts the most open at once. */
async function startHangingReceiver(t: Teardown) {
  let open = 0;
  let maxOpen = 0;
  const receiver = await startReceiver(t, (_request, res) => {
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    res.on('close', () => {
      open -= 1;
    });
  });
  return { receiver, maxOpen: () => maxOpen };
}

t.test('a hanging endpoint with a backlog does not delay another endpoint', { timeout: 120_000 }, async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_TIMEOUT_MS: '2000' } });

  const { receiver: hanging, maxOpen: maxOpenOnA } = await startHangingReceiver(t);
  const healthy = await startReceiver(t);
  await createEndpoint(stack, { url: hanging.url });

  for (let i = 0; i < BACKLOG; i += 1) await commitEvent(stack);
  await hanging.waitFor((all) => all.length >= DEFAULT_GATE_TUNING.maxInFlightPerEndpoint, 10_000);
  await createEndpoint(stack, { url: healthy.url });

  const committedAt = new Map<string, number>();
  for (let i = 0; i < NEW_EVENTS; i += 1) {
    const event = await commitEvent(stack);
    committedAt.set(event.id, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // B is judged on the new events only: an event goes to the endpoints that exist when it is fanned out.
  const missingAtB = (received: ReceivedWebhook[]) => {
    const ids = new Set(received.map((request) => request.id));
    return [...committedAt.keys()].filter((id) => !ids.has(id));
  };
  await healthy.waitFor((all) => missingAtB(all).length === 0, 30_000).catch(() => undefined);
  t.same(missingAtB(healthy.received), [], 'B received every new event');

  const firstArrival = new Map<string, number>();
  for (const request of healthy.received) if (!firstArrival.has(request.id)) firstArrival.set(request.id, request.receivedAt);
  const latencies = [...committedAt].map(([id, committed]) => (firstArrival.get(id) ?? Infinity) - committed).sort((a, b) => a - b);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  t.comment(`B latency over ${latencies.length} events: p50 ${p50} ms, p99 ${p99} ms, max ${latencies.at(-1)} ms`);
  t.comment(`A: ${hanging.received.length} requests started, at most ${maxOpenOnA()} at once`);
  t.ok(p99 < 1000, `B's p99 latency (${p99} ms) is under 1 s`);
  t.ok(maxOpenOnA() <= DEFAULT_GATE_TUNING.maxInFlightPerEndpoint, `A never had more than ${DEFAULT_GATE_TUNING.maxInFlightPerEndpoint} requests in flight`);
  // The first requests all start before any has timed out; after them, only the breaker's probes.
  t.ok(
    hanging.received.length <= DEFAULT_GATE_TUNING.maxInFlightPerEndpoint + 10,
    `the breaker parked A's backlog instead of trying each of its ${BACKLOG + NEW_EVENTS} events (${hanging.received.length} requests)`,
  );
});

t.test('WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT sets how many requests one endpoint gets at once', { timeout: 60_000 }, async (t) => {
  const limit = 3;
  const stack = await startWebhookStack(t, { env: { WEBHOOK_TIMEOUT_MS: '3000', WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT: String(limit) } });
  const { receiver, maxOpen } = await startHangingReceiver(t);
  await createEndpoint(stack, { url: receiver.url });
  for (let i = 0; i < 20; i += 1) await commitEvent(stack);
  await receiver.waitFor((all) => all.length >= limit, 10_000);
  // Long enough for the other 17 jobs to be admitted if the limit did not hold; shorter than the timeout.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.equal(maxOpen(), limit, `the endpoint had exactly ${limit} requests open at once`);
  t.equal(receiver.received.length, limit, 'the rest waited for a turn');
});
