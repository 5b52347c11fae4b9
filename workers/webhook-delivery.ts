import { DelayedError, Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import { fanOutJobId, type DeliveryJob } from '../src/services/webhooks.ts';
import { logWorkerErrors, workerOptions } from './worker-options.ts';

/**
 * Delivery is I/O-bound (waiting on receivers) and the endpoint gate keeps one endpoint from taking more
 * than its share of these slots, so a process runs many deliveries at once.
 */
export const DELIVERY_CONCURRENCY = 200;

/**
 * Runs delivery steps. A job that must wait (retry scheduled, endpoint busy, breaker open) goes back to
 * BullMQ's delayed set instead of sleeping in the worker, so it holds no concurrency slot meanwhile.
 */
export function startWebhookDeliveryWorker(container: Container): Worker<DeliveryJob> {
  const { services } = container;
  const worker = new Worker<DeliveryJob>(
    QUEUE_NAMES.webhookDelivery,
    async (job: Job<DeliveryJob>, token?: string) => {
      const step = await services.webhookDeliveries.run(job.data, job.id ?? fanOutJobId(job.data.eventId, job.data.endpointId));
      if (step.kind === 'finished') return;
      if (step.next.attemptNumber !== job.data.attemptNumber) await job.updateData(step.next);
      await job.moveToDelayed(Date.now() + step.delayMs, token);
      throw new DelayedError();
    },
    workerOptions(container, { concurrency: DELIVERY_CONCURRENCY }),
  );
  logWorkerErrors(worker, container, 'webhook delivery');
  return worker;
}
