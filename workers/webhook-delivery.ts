import { DelayedError, Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { DeliveryJob } from '../src/services/webhooks.ts';

export interface DeliveryWorkerOptions {
  /**
   * Jobs processed at once by this process. Delivery is I/O-bound (waiting on receivers), and the
   * endpoint gate keeps one endpoint from taking more than its share, so this is high.
   */
  concurrency: number;
  /** How long a crashed worker's job stays locked before another worker takes it over (renewed while alive). */
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export const DEFAULT_DELIVERY_WORKER_OPTIONS: DeliveryWorkerOptions = {
  concurrency: 200,
  lockDurationMs: 30_000,
  stalledIntervalMs: 15_000,
};

// A job whose worker died is taken over again; BullMQ's default (once) would drop deliveries after two crashes.
const MAX_STALLED_COUNT = 20;

/**
 * Runs delivery steps. A job that must wait (retry scheduled, endpoint busy, breaker open) goes back to
 * BullMQ's delayed set instead of sleeping in the worker, so it holds no concurrency slot meanwhile.
 */
export function startWebhookDeliveryWorker(container: Container, options: DeliveryWorkerOptions): Worker<DeliveryJob> {
  const { services, logger } = container;
  const worker = new Worker<DeliveryJob>(
    QUEUE_NAMES.webhookDelivery,
    async (job: Job<DeliveryJob>, token?: string) => {
      const step = await services.webhookDeliveries.run(job.data, job.id ?? `${job.data.eventId}.${job.data.endpointId}`);
      if (step.kind === 'finished') return;
      if (step.next.attemptNumber !== job.data.attemptNumber) await job.updateData(step.next);
      await job.moveToDelayed(Date.now() + step.delayMs, token);
      throw new DelayedError();
    },
    {
      connection: container.redis,
      prefix: services.ctx.keys.queuePrefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: MAX_STALLED_COUNT,
    },
  );
  worker.on('error', (error) => logger.error({ err: error }, 'webhook delivery worker error'));
  // A job fails only on unexpected errors (Redis away, lock lost to a stalled check); BullMQ retries it.
  worker.on('failed', (job, error) => logger.warn({ err: error, jobId: job?.id, attemptsMade: job?.attemptsMade }, 'webhook delivery job failed'));
  return worker;
}
