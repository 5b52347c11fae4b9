import { Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { FanoutJob } from '../src/services/webhooks.ts';
import { workerOptions } from './worker-options.ts';

const FANOUT_CONCURRENCY = 50;

/** One job per committed event: creates its deliveries (see `WebhookService.fanOut`). */
export function startWebhookFanoutWorker(container: Container): Worker<FanoutJob> {
  const { services, logger } = container;
  const worker = new Worker<FanoutJob>(
    QUEUE_NAMES.webhookFanout,
    async (job: Job<FanoutJob>) => services.webhooks.fanOut(job.data.organizationId, job.data.eventId),
    workerOptions(container, { concurrency: FANOUT_CONCURRENCY }),
  );
  worker.on('error', (error) => logger.error({ err: error }, 'webhook fan-out worker error'));
  return worker;
}
