import { newId } from '../ids.ts';
import { createEventStore, type Commit, type StoredEvent } from '../storage/event-log.ts';
import type { ServiceContext } from './context.ts';

export type EventEnvelope = StoredEvent;

export { MAX_ENTRIES_READ_PER_PAGE } from '../storage/event-log.ts';

/** Called after events are durably committed, e.g. to fan them out into webhook deliveries. Must not throw for long: the reconciler catches up. */
export type CommittedListener = (organizationId: string, events: EventEnvelope[]) => Promise<void>;

export function newEvent(type: string, data: EventEnvelope['data'], now: Date): EventEnvelope {
  return { id: newId('evt'), type, timestamp: now.toISOString(), data };
}

/**
 * The event log service: every state change in the product is committed through `commit`, which writes the
 * new state and its events in one atomic step and then tells the listeners (webhook fan-out).
 */
export function createEventService(ctx: ServiceContext) {
  const store = createEventStore(ctx.redis, ctx.keys, ctx.now);
  const listeners: CommittedListener[] = [];

  return {
    store,

    onCommitted(listener: CommittedListener) {
      listeners.push(listener);
    },

    /** Returns false when the guard's version no longer matches (someone else moved first). */
    async commit(commit: Commit): Promise<boolean> {
      const committed = await store.commit(commit, ctx.now());
      if (committed && commit.events.length > 0) {
        for (const listener of listeners) {
          // A failing listener must not turn a committed change into an error: the reconciler re-delivers.
          await listener(commit.organizationId, commit.events).catch((error: unknown) =>
            ctx.logger.warn({ err: error, organizationId: commit.organizationId }, 'event listener failed; the reconciler will retry'),
          );
        }
      }
      return committed;
    },

    get: store.get,
    list: store.list,
  };
}

export type EventService = ReturnType<typeof createEventService>;
