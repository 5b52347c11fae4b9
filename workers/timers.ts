import { Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { TimerWakeData } from '../src/services/connections.ts';
import { workerOptions } from './worker-options.ts';

// Each wake-up runs a batch of up to 50 timers at once, so two at a time (100 timers) keep both the commits
// and any provider syncs among them bounded. More starved the webhook deliveries sharing this process: with
// 100,000 challenges expiring within a minute, 8 at a time committed timeouts faster (expiry → commit p50
// 18 s against 45 s) but left them waiting for their webhooks (p50 46 s against 2 s), and all arrived later.
const WAKE_CONCURRENCY = 2;

/**
 * Credential timers (challenge expiry, session warning, session expiry, periodic sync) live in each
 * organization's timer index; these delayed jobs wake an organization's due timers. A timer of a
 * challenge or session that is no longer current does nothing.
 */
export function startTimerWorker(container: Container): Worker<TimerWakeData> {
  const worker = new Worker<TimerWakeData>(
    QUEUE_NAMES.timers,
    async (job: Job<TimerWakeData>) => {
      await container.services.connections.fireDueTimers(job.data.organizationId);
    },
    workerOptions(container, { concurrency: WAKE_CONCURRENCY }),
  );
  worker.on('error', (error) => container.logger.error({ err: error }, 'timer worker error'));
  return worker;
}
