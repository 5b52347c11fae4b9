/**
 * The ceiling of benchmark 3: a bare BullMQ worker, as configured as the webhook delivery worker
 * (concurrency, connection, prefix), processing no-op jobs that are already waiting. Several of these
 * processes may share the queue, as the workers processes do. Once the queue is drained and its own jobs
 * are done, prints `{ "count", "firstMs", "lastMs" }` of the jobs it completed, then exits.
 */
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';

const completedAt: number[] = [];
let isClosing = false;
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null, enableAutoPipelining: true });
const worker = new Worker(process.env.QUEUE ?? 'bare', async () => {}, {
  connection,
  prefix: process.env.PREFIX,
  concurrency: Number(process.env.CONCURRENCY ?? '1'),
});

worker.on('completed', () => {
  completedAt.push(performance.timeOrigin + performance.now());
});
// Every job was added before the worker started, so once the queue is drained no job arrives any more.
// Closing waits for the jobs this worker already fetched (counting those it had started was not enough:
// one fetched but not yet started was left out of the count).
worker.on('drained', () => {
  if (isClosing) return;
  isClosing = true;
  void worker.close().then(() => {
    process.stdout.write(`${JSON.stringify({ count: completedAt.length, firstMs: completedAt[0] ?? null, lastMs: completedAt.at(-1) ?? null })}\n`);
    connection.disconnect();
  });
});
