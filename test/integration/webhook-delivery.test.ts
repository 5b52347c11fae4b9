import t, { type Test } from 'tap';
import { sha256Hex } from '../../src/crypto/hashing.ts';
import { newEvent } from '../../src/services/events.ts';
import { fanOutJobId, type DeliveryJob } from '../../src/services/webhooks.ts';
import { generateWebhookSecret } from '../../src/webhooks/signing.ts';
import { startReceiver } from '../fixtures/webhook-receiver.ts';
import { attemptsOf, commitEvent, createEndpoint, startWebhookStack, verifies, waitForAttempts, type WebhookStack } from '../fixtures/webhook-stack.ts';
import { waitFor } from '../process-helper.ts';

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
  const recover = () => stack.app.inject({ method: 'POST', url: `/plug/webhooks/endpoints/${endpoint.id}/recover`, headers: stack.org.headers, payload: { since } });
  const recovered = await Promise.all(Array.from({ length: 10 }, recover));
  t.same(new Set(recovered.map((response) => response.statusCode)), new Set([202]));
  t.same(recovered.flatMap((response) => response.json().eventIds), [event.id], 'recovers at once split the ids: each is sent once');
  await receiver.waitFor((all) => all.length === 3);
  t.equal(receiver.received[2]?.id, event.id, 'recover keeps the event id');
  const [, , third] = await waitForAttempts(stack, event.id, 3);
  t.match(third, { trigger: 'recover', outcome: 'succeeded', attemptNumber: 1 });

  t.same((await recover()).json(), { eventIds: [] }, 'a recovered delivery is not recovered twice');
  t.equal(receiver.received.length, 3, 'and nothing more arrived');
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
  // A delivery before the rotation: the worker has the first secret in hand when it changes.
  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  t.equal(receiver.received[0]!.signature.split(' ').length, 1, 'one signature before the rotation');
  const rotated = await stack.app.inject({
    method: 'POST',
    url: `/plug/webhooks/endpoints/${endpoint.id}/rotateSecret`,
    headers: stack.org.headers,
  });
  t.equal(rotated.statusCode, 200);
  const { secret: newSecret, previousSecretExpiresAt } = rotated.json() as { secret: string; previousSecretExpiresAt: string };
  t.not(newSecret, endpoint.secret);

  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 2);
  const duringOverlap = receiver.received[1]!;
  t.ok(verifies(endpoint.secret, duringOverlap), 'the old secret verifies during the overlap');
  t.ok(verifies(newSecret, duringOverlap), 'the new secret verifies during the overlap');
  t.equal(duringOverlap.signature.split(' ').length, 2, 'two signatures');

  await new Promise((resolve) => setTimeout(resolve, Date.parse(previousSecretExpiresAt) - Date.now() + 100));
  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 3);
  const afterOverlap = receiver.received[2]!;
  t.notOk(verifies(endpoint.secret, afterOverlap), 'the old secret no longer verifies');
  t.ok(verifies(newSecret, afterOverlap), 'the new one does');
});

t.test('rotating again keeps each replaced secret signing for its own overlap; a previous secret stored the earlier way still signs', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_SECRET_OVERLAP_SECONDS: '60' } });
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const { ctx } = stack.container.services;
  const orgKeys = ctx.keys.org(stack.org.organizationId);
  // As an earlier version left a rotation: one `previous` field, its overlap on the record.
  const legacySecret = generateWebhookSecret();
  await ctx.secrets.write(orgKeys.webhookEndpointSecrets(endpoint.id), { current: endpoint.secret, previous: legacySecret });
  const record = JSON.parse((await ctx.redis.get(orgKeys.webhookEndpoint(endpoint.id))) ?? '{}') as { previousSecretExpiresAt: string; version: number };
  await ctx.redis.set(
    orgKeys.webhookEndpoint(endpoint.id),
    JSON.stringify({ ...record, previousSecretExpiresAt: new Date(Date.now() + 60_000).toISOString(), version: record.version + 1 }),
  );
  await commitEvent(stack);
  const [legacy] = await receiver.waitFor((all) => all.length === 1);
  t.ok(verifies(legacySecret, legacy!) && verifies(endpoint.secret, legacy!), 'the earlier layout: both secrets sign');

  const rotate = async () =>
    (await stack.app.inject({ method: 'POST', url: `/plug/webhooks/endpoints/${endpoint.id}/rotateSecret`, headers: stack.org.headers })).json() as { secret: string };
  const second = await rotate();
  const third = await rotate();
  await commitEvent(stack);
  const [, delivered] = await receiver.waitFor((all) => all.length === 2);
  t.equal(delivered!.signature.split(' ').length, 4, 'four secrets sign: the current one and three replaced');
  for (const [name, secret] of Object.entries({ legacy: legacySecret, first: endpoint.secret, second: second.secret, third: third.secret })) {
    t.ok(verifies(secret, delivered!), `the ${name} secret verifies`);
  }

  for (let i = 0; i < 4; i += 1) await rotate();
  const latest = await rotate();
  await commitEvent(stack);
  const [, , capped] = await receiver.waitFor((all) => all.length === 3);
  t.equal(capped!.signature.split(' ').length, 6, 'at most five replaced secrets sign beside the current one');
  t.ok(verifies(latest.secret, capped!));
  t.notOk(verifies(legacySecret, capped!), 'the oldest went first');
});

t.test('rotations at once: every secret handed out signs, none is lost to another', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_SECRET_OVERLAP_SECONDS: '60' } });
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const rotate = async () =>
    (await stack.app.inject({ method: 'POST', url: `/plug/webhooks/endpoints/${endpoint.id}/rotateSecret`, headers: stack.org.headers })).json() as { secret: string };
  const rotated = await Promise.all([rotate(), rotate(), rotate(), rotate()]);
  await commitEvent(stack);
  const [delivered] = await receiver.waitFor((all) => all.length === 1);
  t.equal(delivered!.signature.split(' ').length, 5);
  for (const [index, secret] of [endpoint.secret, ...rotated.map((answer) => answer.secret)].entries()) {
    t.ok(verifies(secret, delivered!), `secret ${index} verifies`);
  }
});

/**
 * An endpoint at `url` created under one Idempotency-Key. `recreate` deletes it and, as if a day had passed and
 * the key's answer expired, runs the same create again: under the id the key derives, as README "Idempotency" says.
 */
function endpointUnderOneKey(t: Test, stack: WebhookStack, url: string) {
  const idempotencyKey = 'setup-webhook';
  const create = async () => {
    const response = await stack.app.inject({ method: 'POST', url: '/plug/webhooks/endpoints', headers: { ...stack.org.headers, 'idempotency-key': idempotencyKey }, payload: { url } });
    t.equal(response.statusCode, 201);
    return response.json() as { id: string; secret: string };
  };
  return {
    create,
    async recreate(id: string) {
      t.equal((await stack.app.inject({ method: 'DELETE', url: `/plug/webhooks/endpoints/${id}`, headers: stack.org.headers })).statusCode, 204);
      const { keys, redis } = stack.container.services.ctx;
      const orgKeys = keys.org(stack.org.organizationId);
      await redis.del(orgKeys.idempotency(sha256Hex(idempotencyKey)), orgKeys.idempotencyResponse(sha256Hex(idempotencyKey)));
      return create();
    },
  };
}

t.test('an endpoint deleted and created again under its Idempotency-Key is signed with the new secret only', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  const endpoint = endpointUnderOneKey(t, stack, receiver.url);
  const first = await endpoint.create();
  // The worker signs once, caching the first endpoint's secret.
  await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  t.ok(verifies(first.secret, receiver.received[0]!), 'the first endpoint is signed with its secret');

  const second = await endpoint.recreate(first.id);
  t.equal(second.id, first.id, 'the same id, as README "Idempotency" says');
  t.not(second.secret, first.secret, 'a new secret');

  await commitEvent(stack);
  const [, delivered] = await receiver.waitFor((all) => all.length === 2);
  t.ok(verifies(second.secret, delivered!), 'signed with the secret the second create returned');
  t.notOk(verifies(first.secret, delivered!), "never with the deleted endpoint's");
});

t.test('a delivery fanned out for an endpoint since deleted and created again under its id is dropped, as for a deleted one', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '2' } });
  // The first request fails, so its delivery becomes a retry job made from the first attempt's.
  const receiver = await startReceiver(t, (_request, res, index) => res.writeHead(index === 0 ? 500 : 204).end());
  const endpoint = endpointUnderOneKey(t, stack, receiver.url);
  const first = await endpoint.create();
  const before = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  const { queues } = stack.container.services;
  const retry = await waitFor('the retry is queued', () => queues.webhookDelivery.getJob(fanOutJobId(before.id, first.id)), 5000);
  t.match(retry.data, { attemptNumber: 2, incarnation: /^[a-z2-7]{16}$/ }, 'the retry names the incarnation it was fanned out for');

  const second = await endpoint.recreate(first.id);
  t.equal(second.id, first.id, 'the same id, with the same URL');

  const after = await commitEvent(stack);
  await receiver.waitFor((all) => all.some((request) => request.id === after.id));
  await waitFor('the retry has run', async () => ((await retry.getState()) === 'completed' ? true : undefined), 10_000);
  t.same(
    receiver.received.map((request) => request.id),
    [before.id, after.id],
    'the event fanned out for the deleted endpoint is not delivered to the new one',
  );
  t.ok(receiver.received.slice(1).every((request) => verifies(second.secret, request)), 'the new endpoint is signed with its own secret');
  t.equal((await attemptsOf(stack, before.id)).length, 1, 'nor logged as an attempt');
});

t.test('a delivery job queued before deliveries named their incarnation goes to the endpoint under its id, as before', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = newEvent('credential.created', { credential: { id: 'crd_old' } }, new Date());
  await stack.container.services.events.store.commit({ organizationId: stack.org.organizationId, mutations: [], events: [event] }, new Date());
  // The job data older builds queued: no `incarnation`.
  const legacy = { organizationId: stack.org.organizationId, eventId: event.id, endpointId: endpoint.id, attemptNumber: 1, trigger: 'event' } satisfies DeliveryJob;
  await stack.container.services.queues.webhookDelivery.add('deliver', legacy, { jobId: fanOutJobId(event.id, endpoint.id) });
  const [delivered] = await receiver.waitFor((all) => all.length === 1);
  t.equal(delivered?.id, event.id);
  t.ok(verifies(endpoint.secret, delivered!));
});
