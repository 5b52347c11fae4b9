/**
 * The ceiling of benchmark 3: a bare BullMQ worker, as configured as the webhook delivery worker
 * (concurrency, connection, prefix), processing no-op jobs that are already waiting. Prints
 * `{ "count", "firstMs", "lastMs" }` once COUNT jobs have completed, then exits.
 */
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';

const count = Number(process.env.COUNT);
const completedAt: number[] = [];
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null, enableAutoPipelining: true });
const worker = new Worker(process.env.QUEUE ?? 'bare', async () => {}, {
  connection,
  prefix: process.env.PREFIX,
  concurrency: Number(process.env.CONCURRENCY ?? '1'),
});
worker.on('completed', async () => {
  completedAt.push(performance.timeOrigin + performance.now());
  if (completedAt.length !== count) return;
  process.stdout.write(`${JSON.stringify({ count, firstMs: completedAt[0], lastMs: completedAt[count - 1] })}\n`);
  await worker.close();
  connection.disconnect();
});
