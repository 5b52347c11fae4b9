import type { Worker, WorkerOptions } from 'bullmq';
import type { Container } from '../src/container.ts';

/**
 * How often a job whose worker died is taken over again. BullMQ's default (once) fails it for good after a
 * second crash: a delivery dropped, a credential left waiting for a step that never runs. Every job here can
 * run again safely (a finished step or delivery is a no-op), so only a job that keeps killing its workers
 * ends up failed.
 */
const MAX_STALLED_COUNT = 20;

/**
 * Settings shared by every worker. `lockDuration` is how long a job stays claimed by a worker that stopped
 * renewing its lock (because it died); `stalledInterval` is how often workers look for such jobs and put
 * them back in the queue. Together they bound how long a crash delays a step, a timer or a delivery.
 */
export function workerOptions(container: Container, tuning: { concurrency: number }): WorkerOptions {
  const { config, services } = container;
  return {
    connection: container.queueRedis,
    prefix: services.ctx.keys.queuePrefix,
    concurrency: tuning.concurrency,
    lockDuration: config.workerLockDurationMs,
    stalledInterval: config.workerStalledIntervalMs,
    maxStalledCount: MAX_STALLED_COUNT,
  };
}

/**
 * Logs a worker's error events, except while the queue connection is down: then every reconnect attempt
 * raises one per worker, and the outage itself is logged once, when it starts and ends (`watchConnection`).
 */
export function logWorkerErrors(worker: Worker, container: Container, what: string): void {
  worker.on('error', (error) => {
    if (container.connections.queueRedis.isUp()) container.logger.error({ err: error }, `${what} worker error`);
  });
}
