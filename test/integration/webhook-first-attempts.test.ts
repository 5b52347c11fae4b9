import type { ServerResponse } from 'node:http';
import t from 'tap';
import { newEvent } from '../../src/services/events.ts';
import { fanOutJobId } from '../../src/services/webhooks.ts';
import { RECONCILE_GRACE_MS } from '../../workers/webhook-reconciler.ts';
import { answer, startReceiver, type Teardown } from '../fixtures/webhook-receiver.ts';
import { waitFor } from '../process-helper.ts';
import { commitEvent, createEndpoint, startWebhookStack, waitForAttempts, type WebhookStack } from '../fixtures/webhook-stack.ts';

function deliveryJob(stack: WebhookStack, eventId: string, endpointId: string) {
  return stack.container.services.queues.webhookDelivery.getJob(fanOutJobId(eventId, endpointId));
}

function pendingUntil(stack: WebhookStack, untilMs: number): Promise<string[]> {
  return stack.container.services.events.store.pendingFanout(stack.org.organizationId, new Date(untilMs));
}

/** Resolves once no event of the stack's organization waits for fan-out, held or not. */
function nothingPending(stack: WebhookStack): Promise<boolean> {
  return waitFor('no event left in the pending-fanout set', async () => ((await pendingUntil(stack, Date.now() + 3_600_000)).length === 0 ? true : undefined), 5000);
}

/** A receiver whose requests hang until `release()` answers them all with 204. */
async function heldReceiver(t: Teardown) {
  const held: ServerResponse[] = [];
  const receiver = await startReceiver(t, (_request, res) => held.push(res));
  return { receiver, release: () => held.splice(0).forEach((res) => res.writeHead(204).end()) };
}

t.test('a workers process makes the first attempt of what it fans out itself: no delivery job, the event settles', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  t.equal(receiver.received[0]?.id, event.id);
  const [attempt] = await waitForAttempts(stack, event.id, 1);
  t.match(attempt, { outcome: 'succeeded', attemptNumber: 1, trigger: 'event' });
  t.equal(await deliveryJob(stack, event.id, endpoint.id), undefined, 'no job was queued for it');
  await nothingPending(stack);
});

t.test('without workers in the process the fan-out queues the delivery', async (t) => {
  const stack = await startWebhookStack(t, { isWorkerInProcess: false });
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  const job = await deliveryJob(stack, event.id, endpoint.id);
  t.match(job?.data, { eventId: event.id, endpointId: endpoint.id, attemptNumber: 1, trigger: 'event', incarnation: /^[a-z2-7]{16}$/ });
  t.same(await pendingUntil(stack, Date.now() + 3_600_000), [], 'queued: no longer pending');
});

t.test('a first attempt that fails is queued for its retry under the job id its fan-out would have given it', async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '30' } });
  const receiver = await startReceiver(t, answer(500));
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  const [attempt] = await waitForAttempts(stack, event.id, 1);
  t.match(attempt, { outcome: 'failed', responseStatus: 500, attemptNumber: 1 });
  const job = await waitFor('the retry is queued', () => deliveryJob(stack, event.id, endpoint.id), 5000);
  t.match(job.data, { eventId: event.id, endpointId: endpoint.id, attemptNumber: 2, trigger: 'event' });
  t.equal(await job.getState(), 'delayed');
  t.ok(job.delay >= 24_000 && job.delay <= 36_000, `after the schedule’s 30 s ± 20 % jitter (${job.delay} ms)`);
  await nothingPending(stack);
});

t.test('while its first attempt runs, the event is held from the reconciler, and workers close only after it', async (t) => {
  const stack = await startWebhookStack(t);
  const { receiver, release } = await heldReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  const { webhooks, webhookDeliveries } = stack.container.services;
  t.same(await pendingUntil(stack, Date.now() + RECONCILE_GRACE_MS), [], 'not due for the reconciler yet');
  t.same(await pendingUntil(stack, Date.now() + webhookDeliveries.longestStepMs + 1000), [event.id], 'but still pending');
  t.equal(await webhooks.reconcileFanout(new Date(Date.now() + 1)), 0, 'the reconciler leaves it alone');

  let isClosed = false;
  const closing = stack.workers?.close().then(() => {
    isClosed = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(isClosed, false, 'closing waits for the attempt');
  const later = await commitEvent(stack);
  release();
  await closing;
  t.equal(receiver.received.length, 1, 'delivered once');
  t.ok(await deliveryJob(stack, later.id, endpoint.id), 'an event fanned out while closing is queued instead');
  await waitFor('the delivered event leaves the pending set', async () => (!(await pendingUntil(stack, Date.now() + 3_600_000)).includes(event.id) ? true : undefined), 5000);
});

t.test('the reconciler queues what it fans out again, so job ids keep a second fan-out from delivering twice', async (t) => {
  const stack = await startWebhookStack(t);
  const receiver = await startReceiver(t);
  const endpoint = await createEndpoint(stack, { url: receiver.url });
  const event = newEvent('credential.created', { credential: { id: 'crd_lost' } }, new Date());
  const { events, webhooks } = stack.container.services;
  await events.store.commit({ organizationId: stack.org.organizationId, mutations: [], events: [event] }, new Date());
  t.equal(await webhooks.reconcileFanout(new Date(Date.now() + 1)), 1);
  t.ok(await deliveryJob(stack, event.id, endpoint.id), 'queued, not attempted in place');
  await receiver.waitFor((all) => all.length === 1);
  t.equal(receiver.received[0]?.id, event.id);
});
