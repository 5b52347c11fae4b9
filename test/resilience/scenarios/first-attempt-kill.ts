/**
 * Workers SIGKILLed while they make the first attempts of the webhooks their own commits fanned out (a login
 * step's `credential.mfa.method_required`): those deliveries were never queued, so after the kill only the
 * pending-fanout set knows of them. Once their hold lapses the reconciler queues them, and every event
 * still reaches the receiver (at least once).
 */
import type { Test } from 'tap';
import { SANDBOX_PROVIDER_ID } from '../../bench/benchmarks/fixtures.ts';
import type { Client } from '../../bench/lib/plugboard.ts';
import { waitFor } from '../../bench/lib/system.ts';
import { setUpScenario } from './setup.ts';

const KILLS = 4;
const CREDENTIALS_PER_KILL = 100;
const EVENT_TYPE = 'credential.mfa.method_required';
// Long enough that the kill finds first attempts in flight.
const RECEIVER_DELAY_MS = 300;

export default async function firstAttemptKill(t: Test) {
  const { system, client, receiver } = await setUpScenario(t, {
    name: 'first-attempt-kill',
    roles: ['api', 'workers', 'sandbox'],
    // A short request timeout shortens the hold on an attempted event (waiting room 1 s + timeout + 5 s);
    // short locks hand a killed worker's login steps over within seconds.
    env: { WEBHOOK_TIMEOUT_MS: '2000', WORKER_LOCK_DURATION_MS: '5000', WORKER_STALLED_INTERVAL_MS: '2000' },
  });
  receiver.setDelayMs(RECEIVER_DELAY_MS);
  const received = () => new Set(receiver.deliveries.filter((delivery) => delivery.type === EVENT_TYPE).map((delivery) => delivery.eventId));
  const credentialIds: string[] = [];
  let attemptedAtKills = 0;
  for (let kill = 0; kill < KILLS; kill += 1) {
    const before = received().size;
    for (let i = 0; i < CREDENTIALS_PER_KILL; i += 1) {
      const credential = await client.call<{ id: string }>('POST', '/plug/credentials', { providerId: SANDBOX_PROVIDER_ID, username: `kill-${kill}-${i}`, password: 'pass_mfa' });
      credentialIds.push(credential.id);
    }
    await waitFor('the batch to start arriving', async () => (received().size > before ? true : undefined), 30_000, 5);
    await system.stop('workers', 'SIGKILL');
    // Committed before the kill but not received: their first attempts died with the process.
    attemptedAtKills += (await committedEventIds(client)).filter((id) => !received().has(id)).length;
    await system.start('workers');
  }
  t.ok(attemptedAtKills > 0, `the workers were killed with first attempts outstanding (${attemptedAtKills} event-kills)`);

  const arrived = () => new Set(receiver.deliveries.filter((delivery) => delivery.type === EVENT_TYPE).map((delivery) => (delivery.data.credential as { id: string }).id));
  await waitFor('every credential’s event at the receiver', async () => (credentialIds.every((id) => arrived().has(id)) ? true : undefined), 150_000, 250).catch(() => {});
  t.same(
    credentialIds.filter((id) => !arrived().has(id)),
    [],
    `all ${credentialIds.length} ${EVENT_TYPE} events arrived despite ${KILLS} SIGKILLs`,
  );
  t.comment(`${receiver.deliveries.filter((delivery) => delivery.type === EVENT_TYPE).length} deliveries for ${credentialIds.length} events (at least once)`);
}

async function committedEventIds(client: Client): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  do {
    const query: string = `type=${EVENT_TYPE}&limit=100${after ? `&after=${after}` : ''}`;
    const page: { data: { id: string }[]; nextCursor: string | null } = await client.call('GET', `/plug/events?${query}`);
    ids.push(...page.data.map((event) => event.id));
    after = page.nextCursor;
  } while (after);
  return ids;
}
