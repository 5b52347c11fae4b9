/**
 * Benchmark 3: webhook deliveries per second to a loopback receiver that answers at once, and one that
 * answers after 50 ms; beside them, the queue's own ceiling: bare BullMQ workers with the delivery
 * worker's concurrency doing nothing per job, in as many processes as the workers role runs.
 *
 * Each run commits its events first (through the service layer, which fans them out into delivery jobs as the API
 * would) and then starts the workers processes: the rate is the backlog drained from the first delivery to
 * the last. The events go to ENDPOINTS endpoints (paths on one receiver), because one endpoint is held
 * to `maxInFlightPerEndpoint` requests at a time by design (its isolation from the others): at 50 ms that
 * caps a single endpoint at maxInFlight / 0.05 s, reported on its own line.
 */
import path from 'node:path';
import { Queue } from 'bullmq';
import { DEFAULT_GATE_TUNING } from '../../../src/storage/webhook-endpoint-gate.ts';
import { DELIVERY_CONCURRENCY } from '../../../workers/webhook-delivery.ts';
import { spawnTsChild } from '../lib/child.ts';
import { commitEvents, SAMPLE_EVENT_TYPE, sampleEventData } from '../lib/events.ts';
import { format, NotAvailableError, row, type BenchContext, type Benchmark, type Row } from '../lib/benchmark.ts';
import { ApiError, connectContainer, createClient, type Client } from '../lib/plugboard.ts';
import { startReceiver, type Receiver } from '../lib/receiver.ts';
import { REPO_ROOT, waitFor, type System } from '../lib/system.ts';

const NAME = '3. Webhook deliveries';
const ENDPOINTS = 16;
/** The one-endpoint run is capped by design, so it sends this share of the others' deliveries. */
const SINGLE_ENDPOINT_SHARE = 1 / 20;

export const webhookThroughput: Benchmark = {
  id: 'webhook-throughput',
  title: NAME,
  async run(ctx: BenchContext): Promise<Row[]> {
    const deliveries = ctx.profile === 'quick' ? 4_000 : 20_000;
    const system = await ctx.startSystem(['api']);
    const container = connectContainer(system);
    ctx.defer(() => container.close());
    const client = await createClient(system, container);
    const receiver = await startReceiver();
    ctx.defer(() => receiver.close());
    const endpoints = await createEndpoints(client, receiver, ENDPOINTS);
    const data = sampleEventData(container, client.organizationId);

    const drain = async (label: string, delayMs: number, eventCount: number, fanOut: number) => {
      ctx.log(`${label}: ${format.count(eventCount * fanOut)} deliveries`);
      receiver.setDelayMs(delayMs);
      const before = receiver.deliveries.length;
      await setSubscribedEndpoints(client, endpoints, fanOut);
      await commitEvents(container, client.organizationId, eventCount, data);
      return measureDrain(system, receiver, before, eventCount * fanOut);
    };
    const immediate = await drain('immediate receiver', 0, deliveries / ENDPOINTS, ENDPOINTS);
    const slow = await drain('50 ms receiver', 50, deliveries / ENDPOINTS, ENDPOINTS);
    const single = await drain('50 ms receiver, one endpoint', 50, deliveries * SINGLE_ENDPOINT_SHARE, 1);
    const bare = await bareBullmq(ctx, system, deliveries);

    const cap = DEFAULT_GATE_TUNING.maxInFlightPerEndpoint / 0.05;
    return [
      row(NAME, `bare BullMQ no-op worker (concurrency ${DELIVERY_CONCURRENCY}, ${ctx.workersProcesses} process(es))`, format.rate(bare)),
      row(NAME, `immediate receiver, ${ENDPOINTS} endpoints`, format.rate(immediate), '≥ 2,000/s', immediate >= 2000),
      row(NAME, 'immediate receiver: share of bare BullMQ', format.percent(immediate / bare), '≥ 50 %', immediate / bare >= 0.5),
      row(NAME, `50 ms receiver, ${ENDPOINTS} endpoints`, format.rate(slow), '≥ 1,500/s', slow >= 1500),
      row(NAME, '50 ms receiver, one endpoint', format.rate(single), `by design ≤ ${format.rate(cap)} (${DEFAULT_GATE_TUNING.maxInFlightPerEndpoint} in flight)`),
    ];
  },
};

async function createEndpoints(client: Client, receiver: Receiver, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const endpoint = await client
      .call<{ id: string }>('POST', '/plug/webhooks/endpoints', { url: `${receiver.url}/endpoint-${i}`, eventTypes: [SAMPLE_EVENT_TYPE] })
      .catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 404) throw new NotAvailableError('POST /plug/webhooks/endpoints is not there yet');
        throw error;
      });
    ids.push(endpoint.id);
  }
  return ids;
}

/** The first `count` endpoints are enabled, the rest disabled, so one run can fan out to one endpoint only. */
async function setSubscribedEndpoints(client: Client, endpointIds: string[], count: number) {
  await Promise.all(endpointIds.map((id, index) => client.call('PATCH', `/plug/webhooks/endpoints/${id}`, { isEnabled: index < count })));
}

/** Starts the workers on the waiting backlog and returns deliveries per second, first to last arrival. */
async function measureDrain(system: System, receiver: Receiver, before: number, expected: number): Promise<number> {
  await system.start('workers');
  try {
    await waitFor(`${expected} deliveries`, async () => (receiver.deliveries.length - before >= expected ? true : undefined), 300_000, 100);
  } finally {
    await system.stop('workers');
  }
  const arrivals = receiver.deliveries.slice(before);
  const first = arrivals[0]?.receivedAt ?? 0;
  const last = arrivals[arrivals.length - 1]?.receivedAt ?? 0;
  return (arrivals.length - 1) / ((last - first) / 1000);
}

async function bareBullmq(ctx: BenchContext, system: System, count: number): Promise<number> {
  const prefix = `{${system.env.KEY_PREFIX}:q}`;
  const queue = new Queue('bare-bullmq', { connection: { url: ctx.redisUrl }, prefix });
  try {
    for (let added = 0; added < count; added += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, count - added) }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: { age: 3600 } } })));
    }
    ctx.log(`bare BullMQ: ${format.count(count)} no-op jobs, ${ctx.workersProcesses} process(es)`);
    const workers = Array.from({ length: ctx.workersProcesses }, () =>
      spawnTsChild(path.join(REPO_ROOT, 'test/bench/bare-bullmq.ts'), {
        REDIS_URL: ctx.redisUrl,
        PREFIX: prefix,
        QUEUE: 'bare-bullmq',
        CONCURRENCY: String(DELIVERY_CONCURRENCY),
      }),
    );
    for (const worker of workers) ctx.defer(() => worker.stop());
    type Report = { count: number; firstMs: number | null; lastMs: number | null };
    const reports = await Promise.all(workers.map((worker) => worker.nextMessage<Report>()));
    const done = reports.reduce((sum, report) => sum + report.count, 0);
    if (done !== count) throw new Error(`the bare BullMQ workers completed ${done} of ${count} jobs`);
    const firstMs = Math.min(...reports.flatMap((report) => (report.firstMs === null ? [] : [report.firstMs])));
    const lastMs = Math.max(...reports.flatMap((report) => (report.lastMs === null ? [] : [report.lastMs])));
    return (count - 1) / ((lastMs - firstMs) / 1000);
  } finally {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}
