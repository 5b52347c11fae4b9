import type { Worker, WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
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

/** The same worker error again within this time is counted, not logged. */
const REPEATED_ERROR_QUIET_MS = 10_000;

/**
 * Logs a worker's error events, except while the queue connection is down: then every reconnect attempt
 * raises one per worker, and the outage itself is logged once, when it starts and ends (`watchConnection`).
 * An error that repeats is logged once per REPEATED_ERROR_QUIET_MS; the next line logged counts the repeats
 * not logged. With Redis out of memory, BullMQ (6.7) asks for the next job again at once, and each refusal
 * is an error event (≈ 1,500 a second, 33 MB of log in 20 s, in an audit's run).
 */
export function logWorkerErrors(worker: Worker, container: Container, what: string): void {
  let lastMessage: string | null = null;
  let lastLoggedAtMs = -Infinity;
  let notLogged = 0;
  worker.on('error', (error) => {
    if (!container.redisWatches.queueRedis.isUp()) return;
    const nowMs = Date.now();
    if (error.message === lastMessage && nowMs - lastLoggedAtMs < REPEATED_ERROR_QUIET_MS) {
      notLogged += 1;
      return;
    }
    container.logger.error({ err: error, ...(notLogged > 0 ? { earlierRepeatsNotLogged: notLogged } : {}) }, `${what} worker error`);
    lastMessage = error.message;
    lastLoggedAtMs = nowMs;
    notLogged = 0;
  });
}

/**
 * Closes a worker once its running jobs are done, and on a Redis Cluster makes sure its blocking connection
 * is really gone. Closing interrupts the worker's BZPOPMIN by disconnecting that connection; BullMQ (6.7)
 * answers the interruption by disconnecting and at once reconnecting the cluster client, and ioredis' pool
 * then lets the old node connection's late 'end' remove the new connection to the same node from the pool
 * (it removes by address). The orphan stays connected after the client's quit and keeps the process alive:
 * seen in the cluster suite as a test file whose tests had all passed timing out, its one socket a blocking
 * connection's; between 1 and 3 closes in 100 leave one. So every node connection the client opens from
 * the start of the close on is disconnected once the worker is closed (and at once if it opens later still).
 */
export async function closeWorker(worker: Worker): Promise<void> {
  // A blocking connection that never came up leaves nothing behind, and must not keep the close from running.
  const blockingClient = await worker.getBackend().blockingClient?.catch(() => undefined);
  if (!blockingClient?.isCluster) return worker.close();
  const opened: Redis[] = [];
  let isClosed = false;
  blockingClient.on('+node', (node: Redis) => {
    if (isClosed) node.disconnect();
    else opened.push(node);
  });
  await worker.close();
  isClosed = true;
  for (const node of opened) if (node.status !== 'end') node.disconnect();
}
