/**
 * Benchmark 1: POST /plug/credentials throughput and latency at 32 connections, against the ceiling of a
 * bare Fastify route on the same machine answering a JSON body of the same size.
 *
 * The headline runs the API process alone, so the ratio compares like with like: one Node process
 * answering HTTP. A second run repeats it with the workers and the sandbox site logging the credentials in
 * on the same cores, which is what a single small box running everything sees.
 */
import path from 'node:path';
import { spawnTsChild } from '../lib/child.ts';
import { format, NotAvailableError, row, type BenchContext, type Benchmark, type Row } from '../lib/benchmark.ts';
import { runLoad, type LoadOptions } from '../lib/load.ts';
import { ApiError, connectContainer, createClient } from '../lib/plugboard.ts';
import { REPO_ROOT } from '../lib/system.ts';
import { SANDBOX_PROVIDER_ID } from './fixtures.ts';

const CONNECTIONS = 32;
const WARMUP_SECONDS = 3;
const NAME = '1. POST /plug/credentials';

export const credentialCreate: Benchmark = {
  id: 'credential-create',
  title: NAME,
  async run(ctx: BenchContext): Promise<Row[]> {
    const seconds = ctx.profile === 'quick' ? 5 : 15;
    const system = await ctx.startSystem(['api']);
    const container = connectContainer(system);
    ctx.defer(() => container.close());
    const client = await createClient(system, container);
    // `pass_bad` costs the workers the least when they do run (one login, refused).
    const body = JSON.stringify({ providerId: SANDBOX_PROVIDER_ID, username: 'bench-user', password: 'pass_bad', correlationId: 'bench' });
    const sample = await client.call('POST', '/plug/credentials', JSON.parse(body)).catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 404) throw new NotAvailableError('POST /plug/credentials is not there yet');
      throw error;
    });
    const responseBytes = Buffer.byteLength(JSON.stringify(sample));

    const bare = spawnTsChild(path.join(REPO_ROOT, 'test/bench/bare-fastify.ts'), { RESPONSE_BYTES: String(responseBytes) });
    ctx.defer(() => bare.stop());
    const { port } = await bare.nextMessage<{ port: number }>();

    const measure = async (options: Omit<LoadOptions, 'connections' | 'durationSeconds'>) => {
      await runLoad({ ...options, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS });
      return runLoad({ ...options, connections: CONNECTIONS, durationSeconds: seconds });
    };
    ctx.log(`ceiling: bare Fastify, ${responseBytes}-byte answers, ${seconds} s`);
    const ceiling = await measure({ url: `http://127.0.0.1:${port}/ceiling`, method: 'POST', body });
    await bare.stop();
    const credentials = { url: `${system.apiUrl}/plug/credentials`, method: 'POST' as const, headers: client.headers, body };
    ctx.log(`POST /plug/credentials, API alone, ${seconds} s`);
    const alone = await measure(credentials);
    ctx.log(`POST /plug/credentials with workers and sandbox busy, ${seconds} s`);
    await system.start('sandbox');
    await system.start('workers');
    const busy = await measure(credentials);

    const ratio = alone.requestsPerSecond / ceiling.requestsPerSecond;
    return [
      row(NAME, `bare Fastify ceiling (${CONNECTIONS} conn., ${responseBytes} B body)`, `${format.rate(ceiling.requestsPerSecond)}, p50 ${format.ms(ceiling.p50Ms)}, p99 ${format.ms(ceiling.p99Ms)}`),
      row(NAME, 'API alone: throughput', withFailures(format.rate(alone.requestsPerSecond), alone.failed)),
      row(NAME, 'API alone: share of ceiling', format.percent(ratio), '≥ 35 %', ratio >= 0.35),
      row(NAME, 'API alone: p50 / p99', `${format.ms(alone.p50Ms)} / ${format.ms(alone.p99Ms)}`, 'p99 ≤ 25 ms', alone.p99Ms <= 25),
      row(
        NAME,
        'with workers + sandbox on the same cores',
        withFailures(`${format.rate(busy.requestsPerSecond)}, p50 ${format.ms(busy.p50Ms)}, p99 ${format.ms(busy.p99Ms)}`, busy.failed),
      ),
    ];
  },
};

/** A fast run full of errors measures nothing: the table says so next to the number. */
function withFailures(value: string, failed: number): string {
  return failed === 0 ? value : `${value} (${format.count(failed)} non-2xx or errors!)`;
}
