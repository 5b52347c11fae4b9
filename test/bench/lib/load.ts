import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './system.ts';

const CHILD = path.join(REPO_ROOT, 'test/bench/lib/autocannon-child.ts');

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  /** 2xx answers per second over the whole run. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  /** Non-2xx answers, connection errors and timeouts: a fast benchmark full of errors measures nothing. */
  failed: number;
}

interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  latency: { p50: number; p99: number };
}

/** One autocannon run in a second process (see autocannon-child.ts). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { durationSeconds, ...rest } = options;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', CHILD, JSON.stringify({ ...rest, duration: durationSeconds, headers: { 'content-type': 'application/json', ...options.headers } })],
    { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as AutocannonResult;
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok: result['2xx'],
    failed: result.non2xx + result.errors + result.timeouts,
  };
}
