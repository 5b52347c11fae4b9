import { Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { TimerWakeData } from '../src/services/connections.ts';
import { logWorkerErrors, workerOptions } from './worker-options.ts';

// Each wake-up runs a batch of up to 50 timers at once; four at a time (200 timers) keep both the commits and
// any provider syncs among them bounded. The count sets how the process shares its CPU between committing
// timeouts and delivering their webhooks. With 100,000 challenges expiring within a minute (benchmark 4,
// deliveries waiting up to 1 s for their busy endpoint): 2 at a time, expiry → webhook p99 46 s; 4, 40 s;
// 8 committed faster (expiry → commit p99 20 s against 39 s) but starved the deliveries (commit → webhook
// p50 36 s against 0.7 s), and all arrived later (p99 55 s).
const WAKE_CONCURRENCY = 4;

/**
 * Credential timers (challenge expiry, session warning, session expiry, login retry, periodic sync) live in each
 * organization's timer index; these delayed jobs wake an organization's due timers. A timer of a
 * challenge or session that is no longer current does nothing.
 */
export function startTimerWorker(container: Container): Worker<TimerWakeData> {
  // A wake-up with a large backlog (100,000 challenges expiring at once) runs for minutes: closing ends it
  // between batches instead of holding the shutdown until every due timer has fired.
  const closing = new AbortController();
  const worker = new Worker<TimerWakeData>(
    QUEUE_NAMES.timers,
    async (job: Job<TimerWakeData>) => {
      await container.services.connections.fireDueTimers(job.data.organizationId, { stop: closing.signal });
    },
    workerOptions(container, { concurrency: WAKE_CONCURRENCY }),
  );
  worker.once('closing', () => closing.abort());
  logWorkerErrors(worker, container, 'timer');
  return worker;
}
