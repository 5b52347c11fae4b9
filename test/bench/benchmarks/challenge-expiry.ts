/**
 * Benchmark 4: many pending MFA challenges whose expiries are spread over a minute: the lag from each
 * challenge's `expiresAt` to its `credential.mfa.timed_out` webhook, and what a pending challenge costs
 * in Redis.
 *
 * The shortcut: creating 100,000 challenges through the API and the sandbox would take longer than the
 * measurement, so they are seeded through the credential store, the same code the API and the workers use:
 * `create` (as POST /plug/credentials does) and then the `method_required` outcome of a real login to the
 * sandbox site (as the login step does), which commits the challenge with its events and schedules its
 * expiry timer. The login step jobs the creates enqueued are dropped in between, as running them would
 * have. The workers are started only after seeding. The seed's own events (created, status_changed,
 * method_required) are marked fanned out instead of being sent: in a real
 * deployment they went out minutes before the challenge expired, and the receiver does not want them.
 *
 * Workers processes run for days; these are started just before the first expiry. Their first seconds at
 * full load (V8 compiling the hot code, the first connections to the receiver) would make the p99 of the
 * whole minute, so, as benchmark 2 does, the measured minute is preceded by a warm-up: 10 s more of
 * challenges expiring at the same rate, their lag reported on a line of its own, their bytes not counted.
 */
import { connectorFor, findProvider } from '../../../src/connectors/catalog.ts';
import type { Container } from '../../../src/container.ts';
import { createCredentialStore, SYSTEM_ACTOR, type CredentialStore } from '../../../src/services/credential-store.ts';
import { createEventService } from '../../../src/services/events.ts';
import { loginSecrets } from '../../../src/services/credentials.ts';
import { newId } from '../../../src/ids.ts';
import { createQueues, closeQueues } from '../../../src/queues.ts';
import { scanAll } from '../../../src/storage/redis.ts';
import { format, NotAvailableError, row, type BenchContext, type Benchmark, type Row } from '../lib/benchmark.ts';
import { connectContainer, createClient } from '../lib/plugboard.ts';
import { startReceiver } from '../lib/receiver.ts';
import { percentiles } from '../lib/stats.ts';
import { waitFor, type System } from '../lib/system.ts';
import { SANDBOX_PROVIDER_ID } from './fixtures.ts';

const NAME = '4. Challenge expiry';
const EVENT_TYPE = 'credential.mfa.timed_out';
const SEED_CONCURRENCY = 64;
const SPREAD_SECONDS = 60;
/** Webhooks later than this after the last expiry are counted as missing rather than waited for. */
const LATE_CUTOFF_SECONDS = 120;
/** The lag's p99 is also given per this many seconds of expiries: a cold start and a machine falling behind look alike in one figure. */
const WINDOW_SECONDS = 10;
/** Seconds of expiries, at the measured rate, ahead of the measured minute (see above). */
const WARM_UP_SECONDS = 10;

export const challengeExpiry: Benchmark = {
  id: 'challenge-expiry',
  title: NAME,
  async run(ctx: BenchContext): Promise<Row[]> {
    const count = ctx.profile === 'quick' ? 10_000 : 100_000;
    const system = await ctx.startSystem(['api', 'sandbox']);
    const container = connectContainer(system);
    ctx.defer(() => container.close());
    const client = await createClient(system, container);
    const receiver = await startReceiver();
    ctx.defer(() => receiver.close());
    const timedOutAt = new Map<string, { committedAt: number; receivedAt: number }>();
    receiver.onDelivery((delivery) => {
      const credential = delivery.data.credential as { id: string } | undefined;
      if (delivery.type === EVENT_TYPE && credential) timedOutAt.set(credential.id, delivery);
    });
    await client.call('POST', '/plug/webhooks/endpoints', { url: `${receiver.url}/expiry`, eventTypes: [EVENT_TYPE] });

    const seeder = await createSeeder(container, system, client.organizationId);
    ctx.defer(() => seeder.close());
    const warmUpIds = Array.from({ length: Math.floor((count * WARM_UP_SECONDS) / SPREAD_SECONDS) }, () => newId('crd'));
    const ids = Array.from({ length: count }, () => newId('crd'));
    ctx.log(`seeding ${format.count(warmUpIds.length)} credentials for the warm-up and ${format.count(count)} measured`);
    const started = Date.now();
    await forEachConcurrently(warmUpIds, (id, i) => seeder.create(id, `bench-warm-up-${i}`));
    await seeder.dropLoginSteps();
    const memoryBefore = await redisMemory(container, system);
    await forEachConcurrently(ids, (id, i) => seeder.create(id, `bench-${i}`));
    await seeder.dropLoginSteps();
    // Opening the challenges takes up to twice as long as the creates; their expiries start once all are in place.
    const warmUpStart = Date.now() + (Date.now() - started) * 2.5 + 10_000;
    const firstExpiry = warmUpStart + WARM_UP_SECONDS * 1000;
    const spread = (list: string[], from: number, seconds: number) => list.map((id, i) => [id, from + Math.floor((i / list.length) * seconds * 1000)] as const);
    const expiresAt = new Map([...spread(warmUpIds, warmUpStart, WARM_UP_SECONDS), ...spread(ids, firstExpiry, SPREAD_SECONDS)]);
    ctx.log(`opening challenges, expiring from ${new Date(warmUpStart).toISOString()}: ${WARM_UP_SECONDS} s of warm-up, then ${SPREAD_SECONDS} s measured`);
    const openChallenge = (id: string) => seeder.openChallenge(id, expiresAt.get(id) ?? firstExpiry);
    await forEachConcurrently(ids, openChallenge);
    await seeder.markSeedEventsFannedOut();
    const memoryAfter = await redisMemory(container, system);
    await forEachConcurrently(warmUpIds, openChallenge);
    await seeder.markSeedEventsFannedOut();
    const seededInTime = Date.now() < warmUpStart;

    const memoryRows = memoryReport(memoryBefore, memoryAfter, count);
    try {
      await system.start('workers');
    } catch (error) {
      // The memory figures stand on their own; the lag cannot be measured without workers.
      return [row(NAME, 'lag expiresAt → webhook', `FAILED: ${(error as Error).message}`, '≤ 500 ms p99', false), ...memoryRows];
    }
    const lastExpiry = firstExpiry + SPREAD_SECONDS * 1000;
    const expected = warmUpIds.length + count;
    await waitFor(`${expected} ${EVENT_TYPE} webhooks`, async () => (timedOutAt.size >= expected ? true : undefined), lastExpiry - Date.now() + LATE_CUTOFF_SECONDS * 1000, 250).catch(() =>
      ctx.log(`only ${timedOutAt.size} of ${expected} ${EVENT_TYPE} webhooks arrived`),
    );

    const missing = expected - timedOutAt.size;
    const warmUpLags = warmUpIds.flatMap((id) => {
      const arrival = timedOutAt.get(id);
      return arrival ? [arrival.receivedAt - (expiresAt.get(id) ?? arrival.receivedAt)] : [];
    });
    for (const id of warmUpIds) timedOutAt.delete(id);
    const arrivals = [...timedOutAt].map(([id, { committedAt, receivedAt }]) => ({ expiredAt: expiresAt.get(id) ?? receivedAt, committedAt, receivedAt }));
    const lag = ({ expiredAt, receivedAt }: (typeof arrivals)[number]) => receivedAt - expiredAt;
    const { p50 = NaN, p99 = NaN, max = NaN } = percentiles(arrivals.map(lag));
    const slowest = arrivals.reduce<(typeof arrivals)[number] | undefined>((worst, arrival) => (worst && lag(worst) >= lag(arrival) ? worst : arrival), undefined);
    // The event's timestamp splits the lag: timer → commit of the timeout, then commit → webhook.
    const toCommit = percentiles(arrivals.map(({ expiredAt, committedAt }) => committedAt - expiredAt));
    const toWebhook = percentiles(arrivals.map(({ committedAt, receivedAt }) => receivedAt - committedAt));
    const parts = (of: ReturnType<typeof percentiles>) => [of.p50, of.p99, of.max].map((ms) => format.ms(ms ?? NaN)).join(' / ');
    const queued = await seeder.deliveryJobs();
    return [
      row(NAME, `${format.count(count)} challenges over ${SPREAD_SECONDS} s: lag expiresAt → webhook p50`, format.ms(p50)),
      row(NAME, 'lag p99', format.ms(p99), '≤ 500 ms', p99 <= 500),
      row(NAME, 'lag max', `${format.ms(max)}${slowest ? ` (expired ${((slowest.expiredAt - firstExpiry) / 1000).toFixed(1)} s into the ${SPREAD_SECONDS})` : ''}`, '≤ 1 s', max <= 1000),
      row(NAME, 'of which expiresAt → timeout committed, p50 / p99 / max', parts(toCommit)),
      row(NAME, 'of which committed → webhook, p50 / p99 / max', parts(toWebhook)),
      row(NAME, `lag p99 per ${WINDOW_SECONDS} s of expiries`, p99PerWindow(arrivals.map((arrival) => ({ atMs: arrival.expiredAt - firstExpiry, lagMs: lag(arrival) })))),
      row(
        NAME,
        `first ${WARM_UP_SECONDS} s of fresh workers processes (${format.count(warmUpIds.length)} challenges before these, not in the above): lag p50 / p99 / max`,
        parts(percentiles(warmUpLags)),
      ),
      row(NAME, 'deliveries that became queue jobs, warm-up included (no first attempt in place, or one more)', format.count(queued)),
      row(NAME, `webhooks not in by ${LATE_CUTOFF_SECONDS} s after the last expiry`, format.count(missing), '0', missing === 0),
      ...memoryRows,
      ...(seededInTime ? [] : [row(NAME, 'warning', 'seeding ran past the first expiry: early lags include seeding time')]),
    ];
  },
};

function p99PerWindow(lags: { atMs: number; lagMs: number }[]): string {
  const windows = Array.from({ length: SPREAD_SECONDS / WINDOW_SECONDS }, (): number[] => []);
  for (const { atMs, lagMs } of lags) windows[Math.min(windows.length - 1, Math.floor(atMs / 1000 / WINDOW_SECONDS))]?.push(lagMs);
  return windows.map((window) => format.ms(percentiles(window).p99 ?? NaN)).join(' / ');
}

interface Seeder {
  create(credentialId: string, username: string): Promise<void>;
  /**
   * Takes the seeded login steps off the wait list, as the workers would have by running them. Left there,
   * every `openChallenge` would scan the 100,000-job list for its step (BullMQ removes a waiting job with
   * LREM), and seeding would take quadratic time.
   */
  dropLoginSteps(): Promise<void>;
  openChallenge(credentialId: string, expiresAtMs: number): Promise<void>;
  markSeedEventsFannedOut(): Promise<void>;
  /** Delivery jobs in any state (finished ones are kept an hour). */
  deliveryJobs(): Promise<number>;
  close(): Promise<void>;
}

async function createSeeder(container: Container, system: System, organizationId: string): Promise<Seeder> {
  const provider = findProvider(SANDBOX_PROVIDER_ID);
  if (!provider) throw new NotAvailableError('no sandbox provider in the catalog');
  // One real login gives the challenge every seeded credential gets: its methods and its login state.
  const login = await connectorFor(provider, { sandboxBaseUrl: system.sandboxUrl }).login({ username: 'bench-user', password: 'pass_mfa', extraFields: {} });
  if (login.kind !== 'method_required') throw new Error(`the sandbox answered pass_mfa with ${login.kind}`);
  const { ctx } = container.services;
  // A store on an event service without the webhook listener: the seed's events are not fanned out (see above).
  const events = createEventService(ctx);
  const queues = createQueues(ctx.redis, ctx.keys);
  const store: CredentialStore = createCredentialStore(ctx, events, queues);
  return {
    async create(credentialId, username) {
      await store.create({ id: credentialId, organizationId, providerId: provider.id, username, correlationId: null }, 'bench', {
        secrets: loginSecrets('pass_mfa', {}),
      });
    },
    dropLoginSteps: () => queues.credentialSteps.drain(),
    async openChallenge(credentialId, expiresAtMs) {
      const result = await store.transition(
        organizationId,
        credentialId,
        (credential) => ({ kind: 'method_required', stepId: credential.step?.id ?? '', methods: login.methods, expiresAt: new Date(expiresAtMs).toISOString() }),
        SYSTEM_ACTOR,
        { secrets: { loginState: login.loginState } },
      );
      if (result.outcome !== 'applied') throw new Error(`seeding ${credentialId}: ${result.outcome}`);
    },
    async markSeedEventsFannedOut() {
      for (;;) {
        const eventIds = await events.store.pendingFanout(organizationId, new Date(), 5_000);
        if (eventIds.length === 0) return;
        await events.store.markFannedOut(organizationId, eventIds);
      }
    },
    async deliveryJobs() {
      const counts = await queues.webhookDelivery.getJobCounts('completed', 'failed', 'delayed', 'waiting', 'active', 'prioritized');
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    },
    close: () => closeQueues(queues),
  };
}

interface RedisMemory {
  usedMemory: number;
  prefixKeys: number;
  /** Bytes per kind of key (ids replaced by `*`), to see where a challenge's bytes go. */
  byKind: Map<string, number>;
}

/** Redis's own count, which other tenants of a shared Redis disturb, and the sum over this system's keys. */
async function redisMemory(container: Container, system: System): Promise<RedisMemory> {
  const { redis } = container;
  const info = await redis.info('memory');
  const usedMemory = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  const byKind = new Map<string, number>();
  for (const pattern of [`${system.env.KEY_PREFIX}:*`, `{${system.env.KEY_PREFIX}:q}*`]) {
    for await (const batch of scanAll(redis, pattern, 1000)) {
      const sizes = await Promise.all(batch.map((key) => redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') as Promise<number | null>));
      batch.forEach((key, i) => {
        const kind = key
          .replace(system.env.KEY_PREFIX ?? '', 'P')
          .replace(/[a-z]{3}_[a-z0-9]{26}/g, '*')
          .replace(/[A-Za-z0-9]{16,}|\d+/g, '*');
        byKind.set(kind, (byKind.get(kind) ?? 0) + (sizes[i] ?? 0));
      });
    }
  }
  return { usedMemory, prefixKeys: [...byKind.values()].reduce((a, b) => a + b, 0), byKind };
}

function memoryReport(before: RedisMemory, after: RedisMemory, count: number): Row[] {
  const perChallenge = (after.usedMemory - before.usedMemory) / count;
  const perChallengeKeys = (after.prefixKeys - before.prefixKeys) / count;
  return [
    row(NAME, 'Redis per pending challenge (INFO used_memory delta)', format.bytes(perChallenge), '≤ 2 KiB', perChallenge <= 2048),
    row(NAME, 'Redis per pending challenge (MEMORY USAGE of its keys)', format.bytes(perChallengeKeys), '≤ 2 KiB', perChallengeKeys <= 2048),
    row(NAME, 'largest keys per challenge', largestKinds(before, after, count)),
  ];
}

/** The kinds of key that grew most while seeding, bytes per challenge. */
function largestKinds(before: RedisMemory, after: RedisMemory, count: number): string {
  return [...after.byKind]
    .map(([kind, bytes]) => [kind, (bytes - (before.byKind.get(kind) ?? 0)) / count] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([kind, bytes]) => `${kind} ${format.bytes(bytes)}`)
    .join('; ');
}

async function forEachConcurrently<T>(items: T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, lane));
}

