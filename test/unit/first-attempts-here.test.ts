import pino from 'pino';
import t from 'tap';
import { FirstAttemptsHere, type FirstAttemptRunner } from '../../src/services/first-attempts-here.ts';
import type { DeliveryStep } from '../../src/services/webhook-delivery.ts';
import type { DeliveryJob } from '../../src/services/webhooks.ts';

/** Steps that end when the test says so; everything the attempts asked for, in order. */
function harness(maxInFlight: number, settlingDone: Promise<void> = Promise.resolve()) {
  const steps = new Map<string, { resolve: (step: DeliveryStep) => void; reject: (error: Error) => void }>();
  const calls: string[] = [];
  const deliveries: DeliveryJob[] = [];
  const runner: FirstAttemptRunner = {
    longestStepMs: 1000,
    maxInFlight,
    run: (delivery, leaseId) =>
      new Promise<DeliveryStep>((resolve, reject) => {
        calls.push(`run ${leaseId}`);
        deliveries.push(delivery);
        steps.set(delivery.endpointId, { resolve, reject });
      }),
  };
  const here = new FirstAttemptsHere(
    runner,
    {
      jobIdOf: (delivery) => `${delivery.eventId}/${delivery.endpointId}`,
      queueLater: async (delivery, delayMs) => {
        calls.push(`queue ${delivery.endpointId} attempt ${delivery.attemptNumber} in ${delayMs} ms`);
      },
      eventsSettled: async (organizationId, eventIds) => {
        await settlingDone;
        calls.push(`settled ${organizationId} ${eventIds.join(',')}`);
      },
    },
    pino({ level: 'silent' }),
  );
  const settle = async (endpointId: string, outcome: DeliveryStep | Error) => {
    const step = steps.get(endpointId);
    if (outcome instanceof Error) step?.reject(outcome);
    else step?.resolve(outcome);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { here, calls, deliveries, settle };
}

/** Two events: the first to endpoints a and b, the second to c. */
const EVENT_1_TO_A_AND_B_EVENT_2_TO_C = [
  { eventId: 'evt-1', endpointId: 'a', incarnation: 'inc-a' },
  { eventId: 'evt-1', endpointId: 'b', incarnation: 'inc-b' },
  { eventId: 'evt-2', endpointId: 'c', incarnation: '' },
];

const later = (endpointId: string): DeliveryStep => ({
  kind: 'later',
  delayMs: 30_000,
  next: { organizationId: 'org', eventId: 'evt-1', endpointId, attemptNumber: 2, trigger: 'event' } satisfies DeliveryJob,
});

t.test('no more attempts are booked than the runner allows in flight, none once closed', async (t) => {
  const { here, settle } = harness(3);
  t.equal(here.book(2), 2);
  t.equal(here.book(5), 1, 'only the room left');
  t.equal(here.book(1), 0);
  here.giveBack(1);
  t.equal(here.book(4), 1, 'a slot given back can be booked again');
  here.start('org', EVENT_1_TO_A_AND_B_EVENT_2_TO_C);
  let isClosed = false;
  const closing = here.close().then(() => {
    isClosed = true;
  });
  t.equal(here.book(1), 0, 'closed: nothing more is booked');
  await settle('a', { kind: 'finished' });
  await settle('b', { kind: 'finished' });
  t.equal(isClosed, false, 'closing waits for every attempt in flight');
  await settle('c', { kind: 'finished' });
  await closing;
  t.equal(isClosed, true);
});

t.test('an event settles once every delivery of it finished or was queued for later', async (t) => {
  const { here, calls, deliveries, settle } = harness(10);
  here.book(3);
  here.start('org', EVENT_1_TO_A_AND_B_EVENT_2_TO_C);
  t.same(
    deliveries.map(({ endpointId, incarnation }) => `${endpointId} ${incarnation}`),
    ['a inc-a', 'b inc-b', 'c '],
    'each delivery names the incarnation of the endpoint it was fanned out for',
  );
  await settle('a', { kind: 'finished' });
  await settle('c', { kind: 'finished' });
  await settle('b', later('b'));
  t.same(calls, ['run evt-1/a', 'run evt-1/b', 'run evt-2/c', 'settled org evt-2', 'queue b attempt 2 in 30000 ms', 'settled org evt-1']);
});

t.test('an attempt that throws leaves its event pending for the reconciler', async (t) => {
  const { here, calls, settle } = harness(10);
  here.book(2);
  here.start('org', EVENT_1_TO_A_AND_B_EVENT_2_TO_C.filter((target) => target.eventId === 'evt-1'));
  await settle('a', { kind: 'finished' });
  await settle('b', new Error('Redis went away'));
  t.same(calls, ['run evt-1/a', 'run evt-1/b'], 'not settled');
  t.equal(here.book(10), 10, 'both slots are free again');
});

t.test('closing also waits for the events of finished attempts to be settled', async (t) => {
  let letSettle = () => {};
  const { here, calls, settle } = harness(10, new Promise((resolve) => (letSettle = resolve)));
  here.book(1);
  here.start('org', EVENT_1_TO_A_AND_B_EVENT_2_TO_C.filter((target) => target.eventId === 'evt-2'));
  let isClosed = false;
  const closing = here.close().then(() => {
    isClosed = true;
  });
  await settle('c', { kind: 'finished' });
  t.equal(isClosed, false, 'the attempt is done, its event not yet off the pending set');
  letSettle();
  await closing;
  t.same(calls, ['run evt-2/c', 'settled org evt-2'], 'settled before the close returned');
});
