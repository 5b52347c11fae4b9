import type { Role, System } from './system.ts';

/** `quick` runs every benchmark with smaller counts, for a smoke run; the published table is `full`. */
export type Profile = 'full' | 'quick';

/** One line of the results table. `target` is the goal in words; `met` is null where there is none. */
export interface Row {
  benchmark: string;
  measure: string;
  value: string;
  target: string;
  met: boolean | null;
}

export interface BenchContext {
  profile: Profile;
  redisUrl: string;
  /** `.data/bench/<timestamp>`: child logs, CPU profiles. */
  runDir: string;
  /** How many workers processes a system runs: two unless BENCH_WORKERS says otherwise. */
  workersProcesses: number;
  /** Starts API/workers/sandbox on a fresh key prefix; stopped and wiped when the benchmark ends. */
  startSystem(roles: Role[], env?: Record<string, string>): Promise<System>;
  /** Runs when the benchmark ends, pass or fail, in reverse order of registration. */
  defer(cleanup: () => Promise<unknown>): void;
  log(message: string): void;
}

export interface Benchmark {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** Thrown when what a benchmark measures does not exist yet; the table says "not available" instead of failing. */
export class NotAvailableError extends Error {}

export function row(benchmark: string, measure: string, value: string, target = '', met: boolean | null = null): Row {
  return { benchmark, measure, value, target, met };
}

export const format = {
  rate: (perSecond: number) => `${Math.round(perSecond).toLocaleString('en-US')}/s`,
  ms: (ms: number) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms).toLocaleString('en-US')} ms`,
  percent: (ratio: number) => `${(ratio * 100).toFixed(1)} %`,
  bytes: (bytes: number) => (bytes >= 1024 ? `${(bytes / 1024).toFixed(2)} KiB` : `${Math.round(bytes)} B`),
  count: (n: number) => n.toLocaleString('en-US'),
};
