import { Queue, type ConnectionOptions } from 'bullmq';
import type { Keys } from './storage/keys.ts';

/**
 * The BullMQ queues. Every queue shares one prefix with a hash tag (see keys.queuePrefix), which is what
 * BullMQ's Redis Cluster guide asks for. API processes only add jobs; worker processes consume them.
 */
export const QUEUE_NAMES = {
  /** Provider round trips: login, method choice, code submission, sync. */
  credentialSteps: 'credential-steps',
  /** Delayed jobs with deterministic ids: challenge expiry, session warning, session expiry, periodic sync. */
  timers: 'timers',
  /** One job per event: find matching endpoints and create their deliveries. */
  webhookFanout: 'webhook-fanout',
  /** One job per (event, endpoint) attempt chain. */
  webhookDelivery: 'webhook-delivery',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
export type Queues = Record<keyof typeof QUEUE_NAMES, Queue>;

export function createQueues(connection: ConnectionOptions, keys: Keys): Queues {
  const make = (name: QueueName) => new Queue(name, { connection, prefix: keys.queuePrefix });
  return {
    credentialSteps: make(QUEUE_NAMES.credentialSteps),
    timers: make(QUEUE_NAMES.timers),
    webhookFanout: make(QUEUE_NAMES.webhookFanout),
    webhookDelivery: make(QUEUE_NAMES.webhookDelivery),
  };
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
