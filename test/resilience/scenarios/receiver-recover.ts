/**
 * A receiver that is down for the whole (compressed) retry schedule: every delivery gives up, the endpoint
 * is disabled for failing too long, and once the receiver is back, enabling the endpoint and calling
 * `POST …/recover` delivers every event with its original id.
 */
import type { Test } from 'tap';
import { commitEvents } from '../../bench/lib/events.ts';
import { waitFor } from '../../bench/lib/system.ts';
import { pendingDeliveries, setUpScenario, waitForEvents } from './setup.ts';

const EVENTS = 200;

export default async function receiverRecover(t: Test) {
  const { system, container, client, receiver, endpointId } = await setUpScenario(t, {
    name: 'receiver-recover',
    roles: ['api', 'workers'],
    // Three retries a second apart, and an endpoint failing for 3 s is disabled: the production schedule
    // (9 retries over ~5 days, disabled after 5 days) compressed.
    env: { WEBHOOK_RETRY_SCHEDULE: '1,1,1', WEBHOOK_DISABLE_AFTER_SECONDS: '3' },
  });
  await receiver.down();
  const since = new Date(Date.now() - 1000).toISOString();
  const eventIds = await commitEvents(container, client.organizationId, EVENTS);

  const endpointPath = `/plug/webhooks/endpoints/${endpointId}`;
  await waitFor(
    'the endpoint disabled and every delivery given up',
    async () => {
      const endpoint = await client.call<{ isEnabled: boolean }>('GET', endpointPath);
      return !endpoint.isEnabled && (await pendingDeliveries(system)) === 0 ? true : undefined;
    },
    120_000,
    500,
  );
  t.equal(receiver.deliveries.length, 0, 'nothing was delivered while the receiver was down');

  await receiver.up();
  await client.call('PATCH', endpointPath, { isEnabled: true });
  const recovered = await client.call<{ eventIds: string[] }>('POST', `${endpointPath}/recover`, { since });
  t.same([...recovered.eventIds].sort(), [...eventIds].sort(), 'recover re-sends every event that failed');
  const missing = await waitForEvents(receiver, eventIds, 60_000);
  t.same(missing, [], `all ${EVENTS} events arrived after recover, with their original ids`);
}
