import { Queue, type ConnectionOptions } from 'bullmq';
import type { Keys } from './storage/keys.ts';

/**
 * The BullMQ queues. Every queue shares one prefix with a hash tag (see keys.queuePrefix), which is what
 * BullMQ's Redis Cluster guide asks for. API processes only add jobs; worker processes consume them.
 */
export const QUEUE_NAMES = {
  /** Provider round trips: login, method choice, code submission, sync. */
  credentialSteps: 'credential-steps',
  /** Delayed wake-up jobs, each firing an organization's due credential timers (see the credential store). */
  timers: 'timers',
  /** One job per (event, endpoint) attempt chain. */
  webhookDelivery: 'webhook-delivery',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
export type Queues = Record<keyof typeof QUEUE_NAMES, Queue>;

/** The queues a `Queues` object has actually opened, so closing never opens one. */
const openedQueues = new WeakMap<Queues, Map<QueueName, Queue>>();

/**
 * Each queue is created (and connects to Redis) on first use: a process that never enqueues, such as the
 * OpenAPI generator or the admin CLI, opens no BullMQ connection at all.
 */
export function createQueues(connection: ConnectionOptions, keys: Keys): Queues {
  const opened = new Map<QueueName, Queue>();
  const queues = {} as Queues;
  for (const [property, name] of Object.entries(QUEUE_NAMES) as [keyof Queues, QueueName][]) {
    Object.defineProperty(queues, property, {
      enumerable: true,
      get() {
        let queue = opened.get(name);
        if (!queue) {
          queue = new Queue(name, { connection, prefix: keys.queuePrefix });
          // A queue's error events are its connection's, which `watchConnection` logs once per outage;
          // BullMQ would print each reconnect attempt's to stderr.
          queue.on('error', () => {});
          opened.set(name, queue);
        }
        return queue;
      },
    });
  }
  openedQueues.set(queues, opened);
  return queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all([...(openedQueues.get(queues)?.values() ?? [])].map((queue) => queue.close()));
}
