/**
 * `npm run bench` (full) or `npm run bench -- --quick` / `BENCH_PROFILE=quick` (smaller counts).
 *
 * Each benchmark starts its own system (API, workers, sandbox site as child processes) on a fresh key prefix
 * of the local Redis, measures, and stops it; the prefix is wiped afterwards. Load comes from other processes
 * on loopback. Prints one table and writes it, with the machine it ran on, to `.data/bench/<timestamp>.json`.
 * `--only=<id,…>` runs a subset; `BENCH_CPU_PROF=api,workers` runs those roles under `--cpu-prof`.
 * The workers role runs two processes, one per core of the 2-core machine the targets are set for;
 * `BENCH_WORKERS=<n>` runs n. The bare BullMQ ceiling of benchmark 3 runs as many processes, so its ratio
 * compares like with like. README "Performance" says what one and two do here.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TEST_REDIS_URL as REDIS_URL, wipePrefix } from '../fixtures/test-redis.ts';
import { challengeExpiry } from './benchmarks/challenge-expiry.ts';
import { credentialCreate } from './benchmarks/credential-create.ts';
import { mfaEndToEnd } from './benchmarks/mfa-end-to-end.ts';
import { webhookThroughput } from './benchmarks/webhook-throughput.ts';
import { NotAvailableError, row, type BenchContext, type Benchmark, type Profile, type Row } from './lib/benchmark.ts';
import { REPO_ROOT, startSystem, uniqueRunPrefix, type Role, type System } from './lib/system.ts';

const BENCHMARKS: Benchmark[] = [credentialCreate, mfaEndToEnd, webhookThroughput, challengeExpiry];

function parseArguments() {
  const args = process.argv.slice(2);
  const profile: Profile = args.includes('--quick') || process.env.BENCH_PROFILE === 'quick' ? 'quick' : 'full';
  const only = args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
  const ids = BENCHMARKS.map((benchmark) => benchmark.id);
  const unknown = only?.filter((id) => !ids.includes(id)) ?? [];
  // A mistyped id would otherwise run nothing and print an empty table.
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; --only takes ${ids.join(', ')}`);
  const cpuProfile = (process.env.BENCH_CPU_PROF ?? '').split(',').filter((role): role is Role => ['api', 'workers', 'sandbox'].includes(role));
  const workersProcesses = Number(process.env.BENCH_WORKERS ?? '2');
  if (!Number.isInteger(workersProcesses) || workersProcesses < 1) throw new Error(`BENCH_WORKERS must be a positive integer, not ${process.env.BENCH_WORKERS}`);
  return { profile, only, cpuProfile, workersProcesses };
}

async function runOne(benchmark: Benchmark, base: Omit<BenchContext, 'startSystem' | 'defer'>, cpuProfile: Role[]): Promise<Row[]> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const ctx: BenchContext = {
    ...base,
    startSystem: async (roles, env) => {
      // Key names are part of what Redis stores (benchmark 4 weighs them): a short prefix like the default `pb`,
      // not the benchmark's name, which made every key of a challenge ≈ 30 bytes longer than a deployment's.
      const keyPrefix = uniqueRunPrefix('pb');
      // Registered before starting, so a half-started system is still wiped.
      cleanups.push(() => wipePrefix(keyPrefix));
      const system: System = await startSystem({
        redisUrl: base.redisUrl,
        keyPrefix,
        roles,
        env,
        logDir: path.join(base.runDir, benchmark.id),
        profile: cpuProfile,
        workersProcesses: base.workersProcesses,
      });
      cleanups.push(() => system.close());
      return system;
    },
    defer: (cleanup) => cleanups.push(cleanup),
  };
  try {
    return await benchmark.run(ctx);
  } catch (error) {
    if (error instanceof NotAvailableError) return [row(benchmark.title, 'not available', error.message)];
    base.log(`${benchmark.title} failed: ${(error as Error).stack ?? String(error)}`);
    return [row(benchmark.title, 'FAILED', (error as Error).message.split('\n')[0] ?? '', '', false)];
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => base.log(`cleanup failed: ${(error as Error).message}`));
    }
  }
}

export function renderTable(rows: Row[]): string {
  const header = ['Benchmark', 'Measure', 'Result', 'Target', 'Met'];
  const cells = rows.map((r) => [r.benchmark, r.measure, r.value, r.target, r.met === null ? '' : r.met ? 'yes' : 'NO']);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => (line[column] ?? '').length)));
  const line = (values: string[]) => `| ${values.map((value, column) => value.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

function machine() {
  const redisVersion = (() => {
    try {
      return /redis_version:(\S+)/.exec(execFileSync('redis-cli', ['-u', REDIS_URL, 'INFO', 'server'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  })();
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, redis: redisVersion };
}

async function main() {
  const { profile, only, cpuProfile, workersProcesses } = parseArguments();
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const benchDir = path.join(REPO_ROOT, '.data/bench');
  const runDir = path.join(benchDir, stamp);
  await mkdir(runDir, { recursive: true });
  const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  const selected = BENCHMARKS.filter((benchmark) => !only || only.includes(benchmark.id));
  log(`profile ${profile}; ${workersProcesses} workers process(es); logs in ${path.relative(REPO_ROOT, runDir)}`);

  const rows: Row[] = [];
  for (const benchmark of selected) {
    log(`${benchmark.title} …`);
    rows.push(...(await runOne(benchmark, { profile, redisUrl: REDIS_URL, runDir, log, workersProcesses }, cpuProfile)));
  }

  const table = renderTable(rows);
  const report = { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), profile, workersProcesses, machine: machine(), rows, table };
  const file = path.join(benchDir, `${stamp}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${table}\n\nworkers processes: ${workersProcesses}; machine: ${JSON.stringify(report.machine)}\nwritten to ${path.relative(REPO_ROOT, file)}\n`);
  process.exitCode = rows.some((r) => r.measure === 'FAILED') ? 1 : 0;
}

await main();
