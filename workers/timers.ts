import { Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { TimerJobData } from '../src/services/connections.ts';
import { workerOptions } from './worker-options.ts';

// A timer is a few Redis calls and no provider traffic, so it does not share WORKER_CONCURRENCY (sized for
// provider logins): challenges expiring together must time out together.
const TIMER_CONCURRENCY = 50;

/**
 * Credential timers (delayed jobs): challenge expiry, session warning, session expiry, periodic sync.
 * A timer of a challenge or session that is no longer current does nothing.
 */
export function startTimerWorker(container: Container): Worker<TimerJobData> {
  const worker = new Worker<TimerJobData>(
    QUEUE_NAMES.timers,
    async (job: Job<TimerJobData>) => container.services.connections.runTimer(job.data),
    workerOptions(container, { concurrency: TIMER_CONCURRENCY }),
  );
  worker.on('error', (error) => container.logger.error({ err: error }, 'timer worker error'));
  return worker;
}
