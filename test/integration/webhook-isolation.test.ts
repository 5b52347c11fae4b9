import t from 'tap';
import { DEFAULT_GATE_TUNING } from '../../src/storage/webhook-endpoint-gate.ts';
import { startReceiver } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack } from '../fixtures/webhook-stack.ts';

const BACKLOG = 500;
const NEW_EVENTS = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

t.test('a hanging endpoint with a backlog does not delay another endpoint', { timeout: 120_000 }, async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_TIMEOUT_MS: '2000' } });

  let openOnA = 0;
  let maxOpenOnA = 0;
  // A never answers: every request hangs until the sender's timeout.
  const hanging = await startReceiver(t, (_request, res) => {
    openOnA += 1;
    maxOpenOnA = Math.max(maxOpenOnA, openOnA);
    res.on('close', () => {
      openOnA -= 1;
    });
  });
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
  await healthy.waitFor((all) => new Set(all.map((r) => r.id)).size >= NEW_EVENTS, 30_000);

  const latencies = healthy.received
    .filter((request) => committedAt.has(request.id))
    .map((request) => request.receivedAt - (committedAt.get(request.id) ?? 0))
    .sort((a, b) => a - b);
  t.equal(new Set(healthy.received.map((r) => r.id)).size, NEW_EVENTS, 'B received every new event');
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  t.comment(`B latency over ${latencies.length} events: p50 ${p50} ms, p99 ${p99} ms, max ${latencies.at(-1)} ms`);
  t.comment(`A: ${hanging.received.length} requests started, at most ${maxOpenOnA} at once`);
  t.ok(p99 < 1000, `B's p99 latency (${p99} ms) is under 1 s`);
  t.ok(maxOpenOnA <= DEFAULT_GATE_TUNING.maxInFlightPerEndpoint, `A never had more than ${DEFAULT_GATE_TUNING.maxInFlightPerEndpoint} requests in flight`);
  t.ok(
    hanging.received.length < 100,
    `the breaker parked A's backlog instead of trying each of its ${BACKLOG + NEW_EVENTS} events (${hanging.received.length} requests)`,
  );
});
