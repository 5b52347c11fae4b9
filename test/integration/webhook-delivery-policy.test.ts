import type { LookupAddress } from 'node:dns';
import t from 'tap';
import { newId } from '../../src/ids.ts';
import { newEvent } from '../../src/services/events.ts';
import { eventPosition } from '../../src/storage/event-log.ts';
import { RECONCILE_GRACE_MS } from '../../workers/webhook-reconciler.ts';
import { answer, startReceiver, type Responder } from '../fixtures/webhook-receiver.ts';
import { attemptsOf, commitEvent, createEndpoint, startWebhookStack, waitForAttempts } from '../fixtures/webhook-stack.ts';
import { waitFor } from '../process-helper.ts';

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
    t.match(attempt, { outcome: 'failed', responseStatus: null, error: /hooks\.example\.test refused: it resolves to an address deliveries may not go to/ });
    t.notMatch(attempt?.error, /127\.0\.0\.1/, "the tenant is not told what the name resolves to (the operator's internal DNS)");
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

t.test('an endpoint Plugboard disables: the other endpoints are told, and recover sends everything it missed once enabled again', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '30' } });
  const gone = await startReceiver(t, (_request, res, index) => res.writeHead(index === 0 ? 410 : 204).end());
  const watcher = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: gone.url });
  await createEndpoint(stack, { url: watcher.url });
  const since = new Date(Date.now() - 1000).toISOString();
  const failed = await commitEvent(stack);
  const [, notice] = await watcher.waitFor((all) => all.length === 2);
  const noticeBody = JSON.parse(notice?.body ?? '{}') as { data: Record<string, unknown> };
  t.match(noticeBody, { type: 'webhook.endpoint_disabled', data: { endpointId: endpoint.id, disabledReason: /410/ } });
  t.notOk('url' in noticeBody.data, 'no URL: members read the event log, and endpoints are for admins');

  const missed = [await commitEvent(stack), await commitEvent(stack, 'credential.deleted')];
  await watcher.waitFor((all) => all.length === 4);
  t.equal(gone.received.length, 1, 'nothing is sent while disabled');
  const endpointUrl = `/plug/webhooks/endpoints/${endpoint.id}`;
  await stack.app.inject({ method: 'PATCH', url: endpointUrl, headers: stack.org.headers, payload: { isEnabled: true } });
  const recovered = await stack.app.inject({ method: 'POST', url: `${endpointUrl}/recover`, headers: stack.org.headers, payload: { since } });
  const expected = [failed.id, ...missed.map((event) => event.id)].sort();
  t.same([...(recovered.json() as { eventIds: string[] }).eventIds].sort(), expected, 'the failed event, and each one sent while disabled (not its own disabling)');
  await gone.waitFor((all) => all.length === 4);
  t.same(gone.received.slice(1).map((request) => request.id).sort(), expected);
});

t.test('a caller-disabled endpoint is not announced; what it is not subscribed to is not kept for it', async (t) => {
  const stack = await startWebhookStack(t);
  const paused = await startReceiver(t);
  const watcher = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: paused.url, eventTypes: ['credential.created'] });
  await createEndpoint(stack, { url: watcher.url });
  const since = new Date(Date.now() - 1000).toISOString();
  const endpointUrl = `/plug/webhooks/endpoints/${endpoint.id}`;
  await stack.app.inject({ method: 'PATCH', url: endpointUrl, headers: stack.org.headers, payload: { isEnabled: false } });
  const kept = await commitEvent(stack);
  await commitEvent(stack, 'credential.deleted');
  await watcher.waitFor((all) => all.length === 2);
  t.same(
    watcher.received.map((request) => JSON.parse(request.body).type),
    ['credential.created', 'credential.deleted'],
    'no webhook.endpoint_disabled',
  );
  await stack.app.inject({ method: 'PATCH', url: endpointUrl, headers: stack.org.headers, payload: { isEnabled: true } });
  const recovered = await stack.app.inject({ method: 'POST', url: `${endpointUrl}/recover`, headers: stack.org.headers, payload: { since } });
  t.same(recovered.json(), { eventIds: [kept.id] });
});

t.test('a 410 from a URL the endpoint no longer has does not disable it: the delivery goes on to the new one', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1' } });
  let answerGone: () => void = () => {};
  const gone = await startReceiver(t, (_request, res) => {
    answerGone = () => res.writeHead(410).end();
  });
  const moved = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: gone.url });
  const event = await commitEvent(stack);
  await gone.waitFor((all) => all.length === 1);

  const patched = await stack.app.inject({ method: 'PATCH', url: `/plug/webhooks/endpoints/${endpoint.id}`, headers: stack.org.headers, payload: { url: moved.url } });
  t.equal(patched.statusCode, 200, 'moved while the old URL still holds the request');
  answerGone();
  const [, second] = await waitForAttempts(stack, event.id, 2, 15_000);
  t.match(second, { url: moved.url, outcome: 'succeeded' }, 'retried at the new URL');
  const found = await stack.app.inject({ url: `/plug/webhooks/endpoints/${endpoint.id}`, headers: stack.org.headers });
  t.match(found.json(), { isEnabled: true, disabledReason: null, url: moved.url });
});

t.test('a 410 to an endpoint since deleted and created again under its id does not disable the new one', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1' } });
  let answerGone: () => void = () => {};
  const receiver = await startReceiver(t, (_request, res, index) => {
    if (index === 0) answerGone = () => res.writeHead(410).end();
    else res.writeHead(204).end();
  });
  const { webhooks, ctx } = stack.container.services;
  // The id an Idempotency-Key gives each creation under it.
  const naming = { id: newId('whe'), isIdempotent: true };
  await webhooks.createEndpoint(stack.org.organizationId, { url: receiver.url }, naming);
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);

  const endpointUrl = `/plug/webhooks/endpoints/${naming.id}`;
  t.equal((await stack.app.inject({ method: 'DELETE', url: endpointUrl, headers: stack.org.headers })).statusCode, 204);
  await webhooks.createEndpoint(stack.org.organizationId, { url: receiver.url }, naming);
  answerGone();
  await waitFor('the 410 is logged', async () => ((await attemptsOf(stack, event.id)).length === 1 ? true : undefined), 10_000);
  const found = await stack.app.inject({ url: endpointUrl, headers: stack.org.headers });
  t.match(found.json(), { isEnabled: true, disabledReason: null }, 'both at version 1: only the incarnation tells them apart');
  const record = JSON.parse((await ctx.redis.get(ctx.keys.org(stack.org.organizationId).webhookEndpoint(naming.id))) ?? '{}') as { version: number };
  t.equal(record.version, 1, 'untouched');
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

t.test('attempts are logged packed; attempts an earlier version logged as plain JSON are listed too', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t, answer(200, '{"ok":true}'));
  await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  const [attempt] = await waitForAttempts(stack, event.id, 1);
  t.match(attempt, { outcome: 'succeeded', responseStatus: 200, responseBody: '{"ok":true}' });
  const { ctx } = stack.container.services;
  const key = ctx.keys.org(stack.org.organizationId).attempts(event.id);
  const [stored] = await ctx.redis.lrangeBuffer(key, 0, -1);
  t.equal(stored?.[0], 0x03, 'format 3: an attempt packed');
  t.ok((stored?.length ?? Infinity) < JSON.stringify(attempt).length / 2, `${stored?.length} bytes stored for ${JSON.stringify(attempt).length} of JSON`);

  const earlier = { ...attempt, id: 'att_aaaaaaaaaaaaaaaaaaaaaaaaaa', attemptNumber: 2 };
  await ctx.redis.rpush(key, JSON.stringify(earlier));
  t.same(await attemptsOf(stack, event.id), [attempt, earlier]);
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
  const event = newEvent('credential.created', { credential: { id: 'crd_lost' } }, new Date());
  const { events, webhooks } = stack.container.services;
  await events.store.commit({ organizationId: stack.org.organizationId, mutations: [], events: [event] }, new Date());
  t.equal(await webhooks.reconcileFanout(new Date(Date.now() - RECONCILE_GRACE_MS)), 0, 'not within the grace period');
  t.equal(await webhooks.reconcileFanout(new Date(Date.now() + 1)), 1, 'but after it');
  await receiver.waitFor((all) => all.length === 1, 10_000);
  t.equal(receiver.received[0]?.id, event.id);
  const pending = await events.store.pendingFanout(stack.org.organizationId, new Date(Date.now() + 60_000));
  t.same(pending, [], 'no longer pending');
});

t.test('the reconciler takes an event past its retention off the pending set without delivering it', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  await createEndpoint(stack, { url: receiver.url });
  const { events, webhooks, ctx } = stack.container.services;
  const organizationId = stack.org.organizationId;
  const expired = newEvent('credential.created', { credential: { id: 'crd_expired' } }, new Date());
  const kept = newEvent('credential.created', { credential: { id: 'crd_kept' } }, new Date());
  await events.store.commit({ organizationId, mutations: [], events: [expired, kept] }, new Date());
  // Trimmed from the log, as the commits trim entries past the retention period.
  await ctx.redis.xdel(ctx.keys.org(organizationId).events, eventPosition(expired.id)?.entryId ?? '');
  t.equal(await webhooks.reconcileFanout(new Date(Date.now() + 1)), 2, 'both were pending');
  await receiver.waitFor((all) => all.length === 1, 10_000);
  t.same(
    receiver.received.map((event) => event.id),
    [kept.id],
    'only the event still stored is delivered',
  );
  t.same(await events.store.pendingFanout(organizationId, new Date(Date.now() + 60_000)), [], 'neither is pending any more');
});
