/**
 * Events committed straight through the event service, the way every state change is committed: the
 * service's listener fans them out into delivery jobs just as it does in the API and the workers.
 */
import type { Container } from '../../../src/container.ts';
import { create } from '../../../src/domain/credential-state.ts';
import { newId } from '../../../src/ids.ts';
import { newEvent, type EventEnvelope } from '../../../src/services/events.ts';
import { createTransitionEnvForBench, SANDBOX_PROVIDER_ID } from '../benchmarks/fixtures.ts';

const EVENTS_PER_COMMIT = 100;
export const SAMPLE_EVENT_TYPE = 'credential.status_changed';

/** A real credential object as the state machine makes it, so webhook bodies have their real size. */
export function sampleEventData(container: Container, organizationId: string): EventEnvelope['data'] {
  const transition = create(
    { id: newId('crd'), organizationId, providerId: SANDBOX_PROVIDER_ID, username: 'bench-user', correlationId: 'bench' },
    createTransitionEnvForBench(container.config),
  );
  const created = transition.events[0];
  if (!created) throw new Error('the state machine made no event for a new credential');
  return { ...created.data, previous: { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' } };
}

/** Commits `count` `credential.status_changed` events in batches; returns their ids. */
export async function commitEvents(container: Container, organizationId: string, count: number, data = sampleEventData(container, organizationId)): Promise<string[]> {
  const ids: string[] = [];
  for (let done = 0; done < count; done += EVENTS_PER_COMMIT) {
    const now = new Date();
    const batch = Array.from({ length: Math.min(EVENTS_PER_COMMIT, count - done) }, () => newEvent(SAMPLE_EVENT_TYPE, data, now));
    await container.services.events.commit({ organizationId, mutations: [], events: batch });
    ids.push(...batch.map((event) => event.id));
  }
  return ids;
}
