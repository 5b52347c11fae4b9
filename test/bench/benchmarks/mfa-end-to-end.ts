/**
 * Benchmark 2: from `POST /plug/credentials` with `pass_mfa` to the `credential.mfa.method_required`
 * webhook at a receiver: API, queue, worker, connector round trip to the sandbox site, commit, fan-out and
 * delivery. Credentials are created at a steady rate (open loop), so the latency is the system's and not
 * that of a queue the benchmark built itself. The first WARM_UP_SECONDS of credentials (same rate) are
 * reported apart: freshly started processes spend them compiling and loading code, and their stalls would
 * otherwise be the whole p99 of a steady system.
 */
import { format, NotAvailableError, row, type BenchContext, type Benchmark, type Row } from '../lib/benchmark.ts';
import { ApiError, connectContainer, createClient } from '../lib/plugboard.ts';
import { nowMs, startReceiver, type Delivery } from '../lib/receiver.ts';
import { percentiles } from '../lib/stats.ts';
import { sleep, waitFor } from '../lib/system.ts';
import { SANDBOX_PROVIDER_ID } from './fixtures.ts';

const NAME = '2. MFA end to end';
const CREATES_PER_SECOND = 50;
const WARM_UP_SECONDS = 5;
const EVENT_TYPE = 'credential.mfa.method_required';

export const mfaEndToEnd: Benchmark = {
  id: 'mfa-end-to-end',
  title: NAME,
  async run(ctx: BenchContext): Promise<Row[]> {
    const count = ctx.profile === 'quick' ? 200 : 1_000;
    const warmUpCount = WARM_UP_SECONDS * CREATES_PER_SECOND;
    const system = await ctx.startSystem(['api', 'sandbox', 'workers']);
    const container = connectContainer(system);
    ctx.defer(() => container.close());
    const client = await createClient(system, container);
    const receiver = await startReceiver();
    ctx.defer(() => receiver.close());
    const arrivals = new Map<string, Delivery>();
    receiver.onDelivery((delivery) => {
      const credential = delivery.data.credential as { id: string } | undefined;
      if (delivery.type === EVENT_TYPE && credential) arrivals.set(credential.id, delivery);
    });
    await client.call('POST', '/plug/webhooks/endpoints', { url: `${receiver.url}/mfa`, eventTypes: [EVENT_TYPE] }).catch(notAvailableOn404('webhook endpoints'));

    ctx.log(`${warmUpCount} warm-up credentials, then ${count} measured, at ${CREATES_PER_SECOND}/s`);
    const sentAt = new Map<string, number>();
    const warmUpIds = new Set<string>();
    const requests: Promise<void>[] = [];
    const started = nowMs();
    for (let i = 0; i < warmUpCount + count; i += 1) {
      // Open loop: request i leaves at its scheduled time whether or not earlier ones have answered.
      await sleep(Math.max(0, started + (i * 1000) / CREATES_PER_SECOND - nowMs()));
      const before = nowMs();
      requests.push(
        client
          .call<{ id: string }>('POST', '/plug/credentials', { providerId: SANDBOX_PROVIDER_ID, username: `bench-${i}`, password: 'pass_mfa' })
          .then((credential) => {
            sentAt.set(credential.id, before);
            if (i < warmUpCount) warmUpIds.add(credential.id);
          }),
      );
      if (i === 0) await requests[0]?.catch(notAvailableOn404('POST /plug/credentials'));
    }
    await Promise.all(requests);
    await waitFor(`${warmUpCount + count} ${EVENT_TYPE} webhooks`, async () => ([...sentAt.keys()].every((id) => arrivals.has(id)) ? true : undefined), 60_000, 100).catch(
      () => ctx.log(`only ${arrivals.size} of ${warmUpCount + count} webhooks arrived`),
    );

    const latencies = (ids: string[]) =>
      ids.flatMap((id) => {
        const delivery = arrivals.get(id);
        const sent = sentAt.get(id) ?? NaN;
        return delivery ? [{ total: delivery.receivedAt - sent, toCommit: delivery.committedAt - sent }] : [];
      });
    const measured = latencies([...sentAt.keys()].filter((id) => !warmUpIds.has(id)));
    const warmUp = percentiles(latencies([...warmUpIds]).map((m) => m.total));
    const { p50 = NaN, p99 = NaN, max = NaN } = percentiles(measured.map((m) => m.total));
    // The event's timestamp splits the path: request → provider round trip → commit, then commit → webhook.
    const toCommit = percentiles(measured.map((m) => m.toCommit));
    const toWebhook = percentiles(measured.map((m) => m.total - m.toCommit));
    const missing = count - measured.length;
    return [
      row(NAME, `create → ${EVENT_TYPE} webhook, p50`, format.ms(p50), '≤ 50 ms', p50 <= 50),
      row(NAME, 'p99 / max', `${format.ms(p99)} / ${format.ms(max)}`, 'p99 ≤ 150 ms', p99 <= 150),
      row(NAME, 'of which create → event committed, p50 / p99', `${format.ms(toCommit.p50 ?? NaN)} / ${format.ms(toCommit.p99 ?? NaN)}`),
      row(NAME, 'of which event committed → webhook, p50 / p99', `${format.ms(toWebhook.p50 ?? NaN)} / ${format.ms(toWebhook.p99 ?? NaN)}`),
      row(NAME, `credentials (at ${CREATES_PER_SECOND}/s) / webhooks missing`, `${format.count(count)} / ${format.count(missing)}`, '0 missing', missing === 0),
      row(NAME, `first ${WARM_UP_SECONDS} s of fresh processes (not in the above), p50 / p99`, `${format.ms(warmUp.p50 ?? NaN)} / ${format.ms(warmUp.p99 ?? NaN)}`),
    ];
  },
};

function notAvailableOn404(what: string) {
  return (error: unknown): never => {
    if (error instanceof ApiError && error.status === 404) throw new NotAvailableError(`${what}: not there yet`);
    throw error;
  };
}
