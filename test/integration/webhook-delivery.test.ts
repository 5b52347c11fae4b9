import type { LookupAddress } from 'node:dns';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import type { DeliveryAttempt } from '../../src/services/webhooks.ts';
import { answer, startReceiver, type ReceivedWebhook, type Responder } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack, type WebhookStack } from '../fixtures/webhook-stack.ts';

function verifies(secret: string, request: ReceivedWebhook): boolean {
  try {
    new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

async function attemptsOf(stack: WebhookStack, eventId: string): Promise<DeliveryAttempt[]> {
  const response = await stack.app.inject({ url: `/plug/events/${eventId}/attempts`, headers: stack.org.headers });
  if (response.statusCode !== 200) throw new Error(`attempts: ${response.statusCode} ${response.body}`);
  return (response.json() as { data: DeliveryAttempt[] }).data;
}

async function waitForAttempts(stack: WebhookStack, eventId: string, count: number, timeoutMs = 10_000): Promise<DeliveryAttempt[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const attempts = await attemptsOf(stack, eventId);
    if (attempts.length >= count) return attempts;
    if (Date.now() > deadline) throw new Error(`only ${attempts.length} of ${count} attempts logged for ${eventId}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('a receiver verifying with the standardwebhooks package accepts every delivery', async (t) => {
  const stack = await startWebhookStack(t);
  let endpointSecret = '';
  const receiver = await startReceiver(t, (request, res) => {
    const ok = verifies(endpointSecret, request);
    res.writeHead(ok ? 204 : 400).end();
  });
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  endpointSecret = endpoint.secret;

  const sent = [];
  for (const type of ['credential.created', 'credential.mfa.code_required', 'credential.connected']) sent.push(await commitEvent(stack, type));
  await receiver.waitFor((all) => all.length === 3);

  t.same(receiver.received.map((r) => r.id).sort(), sent.map((e) => e.id).sort(), 'webhook-id is the event id');
  t.ok(receiver.received.every((r) => verifies(endpoint.secret, r)), 'every request verifies');
  const body = JSON.parse(receiver.received[0]?.body ?? '{}') as { id: string; type: string; data: unknown };
  t.match(body, { id: /^evt_/, type: /^credential\./, timestamp: String, data: { credential: { id: 'crd_test' } } }, 'the body is the envelope');
  t.equal(receiver.received[0]?.headers['content-type'], 'application/json');

  const [attempt] = await waitForAttempts(stack, sent[0]!.id, 1);
  t.match(attempt, { id: /^att_/, endpointId: endpoint.id, outcome: 'succeeded', responseStatus: 204, attemptNumber: 1, trigger: 'event', error: null });
});

t.test('500, 500, 500, then 200: the same webhook-id four times on the retry schedule', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1,2,3' } });
  const receiver = await startReceiver(t, (request, res, index) => {
    const status = index < 3 ? 500 : 200;
    res.writeHead(status).end(index < 3 ? 'down for maintenance' : 'ok');
  });
  await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 4, 20_000);

  t.same(new Set(receiver.received.map((r) => r.id)), new Set([event.id]), 'one webhook-id throughout');
  const timestamps = receiver.received.map((r) => Number(r.timestamp));
  t.ok(timestamps.every((ts, i) => i === 0 || ts >= timestamps[i - 1]!), 'webhook-timestamp is fresh per attempt');
  const gaps = receiver.received.slice(1).map((r, i) => r.receivedAt - receiver.received[i]!.receivedAt);
  [1000, 2000, 3000].forEach((scheduled, i) => {
    const gap = gaps[i]!;
    // ±20 % jitter, plus a little for queue latency; never earlier than the jittered minimum.
    t.ok(gap >= scheduled * 0.8 - 50 && gap <= scheduled * 1.2 + 400, `retry ${i + 1} came ${gap} ms after the previous attempt (schedule ${scheduled} ms)`);
  });

  const attempts = await waitForAttempts(stack, event.id, 4);
  t.same(
    attempts.map((a) => [a.attemptNumber, a.responseStatus, a.outcome]),
    [
      [1, 500, 'failed'],
      [2, 500, 'failed'],
      [3, 500, 'failed'],
      [4, 200, 'succeeded'],
    ],
  );
  t.equal(attempts[0]?.responseBody, 'down for maintenance', 'the response body is logged');
  t.ok(attempts.slice(0, 3).every((a) => a.nextAttemptAt !== null) && attempts[3]?.nextAttemptAt === null, 'each failure says when the next try comes');
});

t.test('the schedule used up: the delivery gives up, and recover re-sends it with its original id', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1' } });
  let status = 503;
  const receiver = await startReceiver(t, (_request, res) => res.writeHead(status).end());
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const since = new Date(Date.now() - 1000).toISOString();
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 2, 10_000);
  const attempts = await waitForAttempts(stack, event.id, 2);
  t.equal(attempts[1]?.nextAttemptAt, null, 'no retry after the schedule');

  status = 200;
  const recovered = await stack.app.inject({
    method: 'POST',
    url: `/plug/webhooks/endpoints/${endpoint.id}/recover`,
    headers: stack.org.headers,
    payload: { since },
  });
  t.equal(recovered.statusCode, 202);
  t.same(recovered.json(), { eventIds: [event.id] });
  await receiver.waitFor((all) => all.length === 3);
  t.equal(receiver.received[2]?.id, event.id, 'recover keeps the event id');
  const [, , third] = await waitForAttempts(stack, event.id, 3);
  t.match(third, { trigger: 'recover', outcome: 'succeeded', attemptNumber: 1 });

  const again = await stack.app.inject({
    method: 'POST',
    url: `/plug/webhooks/endpoints/${endpoint.id}/recover`,
    headers: stack.org.headers,
    payload: { since },
  });
  t.same(again.json(), { eventIds: [] }, 'a recovered delivery is not recovered twice');
});

t.test('resend re-delivers an event with its original id to every subscribed endpoint', async (t) => {
  const stack = await startWebhookStack(t);
  const first = await startReceiver(t);
  const second = await startReceiver(t);
  const unsubscribed = await startReceiver(t);
  await createEndpoint(stack, { url: first.url });
  await createEndpoint(stack, { url: second.url, eventTypes: ['credential.created'] });
  await createEndpoint(stack, { url: unsubscribed.url, eventTypes: ['credential.deleted'] });
  const event = await commitEvent(stack);
  await first.waitFor((all) => all.length === 1);
  await second.waitFor((all) => all.length === 1);

  const response = await stack.app.inject({ method: 'POST', url: `/plug/events/${event.id}/resend`, headers: stack.org.headers });
  t.equal(response.statusCode, 202);
  t.equal((response.json() as { endpointIds: string[] }).endpointIds.length, 2);
  await first.waitFor((all) => all.length === 2);
  await second.waitFor((all) => all.length === 2);
  t.same([...first.received, ...second.received].map((r) => r.id), [event.id, event.id, event.id, event.id]);
  t.equal(unsubscribed.received.length, 0, 'the event type filter applies');

  const missing = await stack.app.inject({ method: 'POST', url: '/plug/events/evt_aaaaaaaaaaaaaaaaaaaaaaaaaa/resend', headers: stack.org.headers });
  t.equal(missing.statusCode, 404);
});

t.test('rotateSecret: both secrets verify during the overlap, only the new one after it', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_SECRET_OVERLAP_SECONDS: '2' } });
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const rotated = await stack.app.inject({
    method: 'POST',
    url: `/plug/webhooks/endpoints/${endpoint.id}/rotateSecret`,
    headers: stack.org.headers,
  });
  t.equal(rotated.statusCode, 200);
  const { secret: newSecret, previousSecretExpiresAt } = rotated.json() as { secret: string; previousSecretExpiresAt: string };
  t.not(newSecret, endpoint.secret);

  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  const duringOverlap = receiver.received[0]!;
  t.ok(verifies(endpoint.secret, duringOverlap), 'the old secret verifies during the overlap');
  t.ok(verifies(newSecret, duringOverlap), 'the new secret verifies during the overlap');
  t.equal(duringOverlap.signature.split(' ').length, 2, 'two signatures');

  await new Promise((resolve) => setTimeout(resolve, Date.parse(previousSecretExpiresAt) - Date.now() + 100));
  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 2);
  const afterOverlap = receiver.received[1]!;
  t.notOk(verifies(endpoint.secret, afterOverlap), 'the old secret no longer verifies');
  t.ok(verifies(newSecret, afterOverlap), 'the new one does');
});

t.test('a host name resolving to loopback fails at delivery with a logged reason unless allow-listed', async (t) => {
  const receiver = await startReceiver(t);
  // Every name resolves to the loopback receiver, so a request can never leave the machine.
  const resolver = (_hostname: string, _options: unknown, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) =>
    callback(null, [{ address: '127.0.0.1', family: 4 }]);
  const url = `https://hooks.example.test:${receiver.port}/hooks`;

  t.test('not allow-listed: refused before connecting', async (t) => {
    const stack = await startWebhookStack(t, { env: { WEBHOOK_ALLOWED_TARGETS: '', WEBHOOK_RETRY_SCHEDULE: '30' }, overrides: { webhookDnsResolver: resolver } });
    const connections: number[] = [];
    receiver.respond = (_request, res) => {
      connections.push(Date.now());
      res.end();
    };
    await createEndpoint(stack, { url });
    const event = await commitEvent(stack);
    const [attempt] = await waitForAttempts(stack, event.id, 1);
    t.match(attempt, { outcome: 'failed', responseStatus: null, error: /hooks\.example\.test.*127\.0\.0\.1 is a loopback address/ });
    t.equal(connections.length, 0, 'nothing reached the receiver');
  });

  t.test('allow-listed: the connection is made', async (t) => {
    const stack = await startWebhookStack(t, { env: { WEBHOOK_ALLOWED_TARGETS: '127.0.0.1/32', WEBHOOK_RETRY_SCHEDULE: '30' }, overrides: { webhookDnsResolver: resolver } });
    await createEndpoint(stack, { url });
    const event = await commitEvent(stack);
    const [attempt] = await waitForAttempts(stack, event.id, 1);
    // The receiver speaks plain HTTP, so TLS fails: but only after the guard let the connection through.
    t.match(attempt, { outcome: 'failed', error: /EPROTO|SSL|TLS|wrong version/i });
    t.notMatch(attempt?.error, /refused/);
  });
});

t.test('410 Gone disables the endpoint; a long response body is logged truncated', async (t) => {
  const stack = await startWebhookStack(t);
  const responders: Responder[] = [answer(400, 'x'.repeat(10_000)), answer(410, 'gone')];
  const receiver = await startReceiver(t, (request, res, index) => responders[index]?.(request, res, index));
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  const [first] = await waitForAttempts(stack, event.id, 1);
  t.equal(first?.responseBody?.length, 4096, 'body stored up to 4 KiB');
  t.equal(first?.isResponseBodyTruncated, true);

  await waitForAttempts(stack, event.id, 2, 15_000);
  const found = await stack.app.inject({ url: `/plug/webhooks/endpoints/${endpoint.id}`, headers: stack.org.headers });
  t.match(found.json(), { isEnabled: false, disabledReason: /410/ });
});

t.test('an endpoint failing for WEBHOOK_DISABLE_AFTER_SECONDS is disabled', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1', WEBHOOK_DISABLE_AFTER_SECONDS: '2' } });
  const receiver = await startReceiver(t, answer(500));
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length >= 3, 10_000);
  await waitForAttempts(stack, event.id, 3);
  const deadline = Date.now() + 5000;
  let body: { isEnabled: boolean; disabledReason: string | null };
  do {
    await new Promise((resolve) => setTimeout(resolve, 100));
    body = (await stack.app.inject({ url: `/plug/webhooks/endpoints/${endpoint.id}`, headers: stack.org.headers })).json();
  } while (body.isEnabled && Date.now() < deadline);
  t.match(body, { isEnabled: false, disabledReason: /failed for 2 seconds/ });
  const attempts = await attemptsOf(stack, event.id);
  t.equal(attempts.at(-1)?.nextAttemptAt, null, 'no retry once disabled');
});

t.test('the test endpoint sends webhook.test to that endpoint only', async (t) => {
  const stack = await startWebhookStack(t);
  const tested = await startReceiver(t);
  const other = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: tested.url });
  await createEndpoint(stack, { url: other.url });
  const response = await stack.app.inject({ method: 'POST', url: `/plug/webhooks/endpoints/${endpoint.id}/test`, headers: stack.org.headers });
  t.equal(response.statusCode, 202);
  const event = response.json() as { id: string; type: string; data: { endpointId: string } };
  t.match(event, { type: 'webhook.test', data: { endpointId: endpoint.id } });
  await tested.waitFor((all) => all.length === 1);
  t.equal(tested.received[0]?.id, event.id);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(other.received.length, 0);
});

t.test('the reconciler delivers an event committed but never handed to the fan-out', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  await createEndpoint(stack, { url: receiver.url });
  // As if the process died right after the commit: the event is in the log, nothing was enqueued.
  const { newEvent } = await import('../../src/services/events.ts');
  const event = newEvent('credential.created', { credential: { id: 'crd_lost' } }, new Date());
  await stack.container.services.events.store.commit({ organizationId: stack.org.organizationId, mutations: [], events: [event] }, new Date());
  await receiver.waitFor((all) => all.length === 1, 10_000);
  t.equal(receiver.received[0]?.id, event.id);
  const pending = await stack.container.services.events.store.pendingFanout(stack.org.organizationId, new Date(Date.now() + 60_000));
  t.same(pending, [], 'no longer pending');
});
