import type { Worker } from 'bullmq';
import type { Container } from '../src/container.ts';
import { StepRetryError } from '../src/services/connections.ts';
import { whenAwayFor } from '../src/storage/redis.ts';
import { startCredentialStepWorker } from './credential-steps.ts';
import { startCredentialReconciler } from './reconciler.ts';
import { startTimerWorker } from './timers.ts';
import { DELIVERY_CONCURRENCY, startWebhookDeliveryWorker } from './webhook-delivery.ts';
import { startWebhookReconciler } from './webhook-reconciler.ts';
import { closeWorker } from './worker-options.ts';

/** How long Redis may stay unreachable while the workers close before they stop waiting for their jobs. */
const REDIS_AWAY_BEFORE_ABANDONING_MS = 5_000;

export interface RunningWorkers {
  /** Stops taking jobs and waits (bounded) for the running ones to finish. */
  close(): Promise<void>;
}

/**
 * Starts every BullMQ worker of this process. Workers call the same services as the API; they hold no
 * state of their own, so any number of worker processes can run against one Redis.
 */
export async function startWorkers(container: Container): Promise<RunningWorkers> {
  const { services, workMetrics } = container;
  const { webhooks, webhookDeliveries } = services;
  const firstAttempts = webhooks.makeFirstAttemptsHere({
    run: (delivery, leaseId) => webhookDeliveries.run(delivery, leaseId),
    longestStepMs: webhookDeliveries.longestStepMs,
    maxInFlight: DELIVERY_CONCURRENCY,
  });
  workMetrics.readFirstAttemptsInFlight(() => firstAttempts.inFlight);
  const workers: Worker[] = [
    startCredentialStepWorker(container),
    startTimerWorker(container),
    startWebhookDeliveryWorker(container),
  ];
  for (const worker of workers) {
    worker.on('completed', () => workMetrics.jobFinished(worker.name, 'completed'));
    worker.on('failed', (job, error) => {
      workMetrics.jobFinished(worker.name, 'failed');
      // A provider outage is logged where it is recorded, and its retry is planned; anything else (Redis
      // away, a lock lost to the stalled check, a bug) is ours to look at. BullMQ retries the job or the
      // reconcilers pick it up again. The job id names what it was for (step, delivery, timers).
      if (error instanceof StepRetryError) return;
      container.logger.error({ err: error, queue: worker.name, jobId: job?.id, attemptsMade: job?.attemptsMade }, 'job failed');
    });
  }
  // Started means connected: an ioredis Cluster client closed while it still connects can open a node
  // connection after its close, which then keeps the process alive (seen twice in the cluster suite, whose
  // tests start and stop workers within a second).
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const reconciler = startWebhookReconciler(container);
  const credentialReconciler = startCredentialReconciler(container);
  container.logger.info({ workers: workers.map((w) => w.name) }, 'workers started');
  return {
    async close() {
      const graceful = (async () => {
        await reconciler.close();
        await credentialReconciler.close();
        // A first attempt that must run again is queued, so the queues stay open until these are done.
        await Promise.all([firstAttempts.close(), ...workers.map(closeWorker)]);
      })();
      // With Redis gone, nothing more can be recorded and the close would wait for Redis until the grace
      // period ends. What runs here is not lost: another worker takes a job over once its lock ends, the
      // reconciler redoes a first attempt. A shorter outage (a failover) is waited out: a code step cut
      // short would send its code again.
      const { redisWatches } = container;
      const redisAway = whenAwayFor([redisWatches.redis, redisWatches.queueRedis], REDIS_AWAY_BEFORE_ABANDONING_MS);
      try {
        const outcome = await Promise.race([graceful.then(() => 'closed' as const), redisAway.reached.then(() => 'redis away' as const)]);
        if (outcome === 'redis away') {
          container.logger.warn(`Redis unreachable for ${REDIS_AWAY_BEFORE_ABANDONING_MS / 1000} s: workers stop without waiting for their running jobs`);
        }
      } finally {
        redisAway.cancel();
      }
    },
  };
}
