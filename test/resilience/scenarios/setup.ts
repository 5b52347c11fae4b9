/** A running system, a client organization and a webhook receiver with its endpoint, all torn down with the test. */
import path from 'node:path';
import type { Test } from 'tap';
import { Queue } from 'bullmq';
import type { Container } from '../../../src/container.ts';
import { QUEUE_NAMES } from '../../../src/queues.ts';
import { connectContainer, createClient, type Client } from '../../bench/lib/plugboard.ts';
import { startReceiver, type Receiver } from '../../bench/lib/receiver.ts';
import { REPO_ROOT, startSystem, uniqueRunPrefix, waitFor, type Role, type System } from '../../bench/lib/system.ts';
import { TEST_REDIS_URL, wipePrefix } from '../../fixtures/test-redis.ts';

export interface Scenario {
  system: System;
  container: Container;
  client: Client;
  receiver: Receiver;
  endpointId: string;
}

export async function setUpScenario(t: Test, options: { name: string; redisUrl?: string; roles: Role[]; env?: Record<string, string> }): Promise<Scenario> {
  const redisUrl = options.redisUrl ?? TEST_REDIS_URL;
  const keyPrefix = uniqueRunPrefix(`resilience-${options.name}`);
  // A private Redis is thrown away whole; on the shared one the prefix is wiped.
  if (redisUrl === TEST_REDIS_URL) t.teardown(() => wipePrefix(keyPrefix));
  const system = await startSystem({
    redisUrl,
    keyPrefix,
    roles: options.roles,
    env: options.env,
    logDir: path.join(REPO_ROOT, '.data/resilience', `${new Date().toISOString().replace(/[:.]/g, '-')}-${options.name}`),
  });
  t.teardown(() => system.close());
  const container = connectContainer(system);
  // Scenarios stop Redis on purpose; the client reconnects, and its complaints meanwhile are expected.
  container.redis.on('error', () => {});
  t.teardown(() => container.close());
  const client = await createClient(system, container);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const endpoint = await client.call<{ id: string }>('POST', '/plug/webhooks/endpoints', { url: `${receiver.url}/hook` });
  return { system, container, client, receiver, endpointId: endpoint.id };
}

/** Resolves once every id has reached the receiver; otherwise fails with how many are missing. */
export async function waitForEvents(receiver: Receiver, eventIds: string[], timeoutMs: number): Promise<string[]> {
  try {
    await waitFor('every event at the receiver', async () => (missingEvents(receiver, eventIds).length === 0 ? true : undefined), timeoutMs, 250);
  } catch {
    // The assertion that follows reports what is missing.
  }
  return missingEvents(receiver, eventIds);
}

function missingEvents(receiver: Receiver, eventIds: string[]): string[] {
  const received = receiver.eventIds();
  return eventIds.filter((id) => !received.has(id));
}

/** Jobs of the delivery queue not yet finished (waiting, delayed or running). */
export async function pendingDeliveries(system: System): Promise<number> {
  const queue = new Queue(QUEUE_NAMES.webhookDelivery, { connection: { url: system.env.REDIS_URL }, prefix: `{${system.env.KEY_PREFIX}:q}` });
  try {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  } finally {
    await queue.close();
  }
}
