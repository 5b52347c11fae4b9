/**
 * Workers SIGKILLed over and over while events are committed and delivered: a killed worker's jobs are
 * taken over once their lock lapses, so every event still reaches the receiver (at least once).
 */
import type { Test } from 'tap';
import { commitEvents } from '../../bench/lib/events.ts';
import { waitFor } from '../../bench/lib/system.ts';
import { setUpScenario, waitForEvents } from './setup.ts';

const KILLS = 6;
const EVENTS_PER_KILL = 300;

export default async function workerKill(t: Test) {
  const { system, container, client, receiver } = await setUpScenario(t, { name: 'worker-kill', roles: ['api', 'workers'] });
  const committed: string[] = [];
  let undeliveredAtKills = 0;
  for (let kill = 0; kill < KILLS; kill += 1) {
    const batch = await commitEvents(container, client.organizationId, EVENTS_PER_KILL);
    committed.push(...batch);
    // The moment the batch starts arriving, the workers are mid-way through it: a fixed pause would find a
    // fast machine done already.
    await waitFor('the batch to start arriving', async () => (batch.some((id) => receiver.eventIds().has(id)) ? true : undefined), 30_000, 5);
    undeliveredAtKills += committed.length - receiver.eventIds().size;
    await system.stop('workers', 'SIGKILL');
    await system.start('workers');
  }
  t.ok(undeliveredAtKills > 0, `the workers were killed with deliveries outstanding (${undeliveredAtKills} event-kills)`);

  // A killed worker's jobs stay locked for the lock duration (30 s), then the stalled-job check hands them over.
  const missing = await waitForEvents(receiver, committed, 150_000);
  t.same(missing, [], `all ${committed.length} events arrived despite ${KILLS} SIGKILLs`);
  t.comment(`${receiver.deliveries.length} deliveries for ${committed.length} events (${receiver.deliveries.length - receiver.eventIds().size} duplicates: at least once)`);
}
