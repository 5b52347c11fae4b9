import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './system.ts';

export interface TsChild {
  child: ChildProcess;
  /** Resolves with each JSON line the child prints, in order; rejects if it exits first. */
  nextMessage<T>(): Promise<T>;
  stop(): Promise<void>;
}

/** Runs a TypeScript file of this repository in its own Node process; it talks back in JSON lines on stdout. */
export function spawnTsChild(file: string, env: Record<string, string> = {}, nodeArgs: string[] = []): TsChild {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const lines: string[] = [];
  const waiting: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(line);
    else lines.push(line);
  });
  child.once('exit', (code, signal) => {
    process.off('exit', killOnExit);
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(`${file} exited (${signal ?? code})`));
  });
  return {
    child,
    async nextMessage<T>() {
      const buffered = lines.shift();
      const line =
        buffered ??
        (await new Promise<string>((resolve, reject) => {
          if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`${file} exited (${child.signalCode ?? child.exitCode})`));
          else waiting.push({ resolve, reject });
        }));
      return JSON.parse(line) as T;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
