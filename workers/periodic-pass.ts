import type { Logger } from 'pino';

/**
 * Runs `pass` now and then every `intervalMs`, one at a time: a tick that comes while the previous pass is
 * still going is skipped, not queued. A failed pass is logged and the next tick tries again. `close` stops the
 * ticks, aborts the pass's signal and waits for it to finish.
 */
export function startPeriodicPass(
  name: string,
  intervalMs: number,
  logger: Logger,
  pass: (stop: AbortSignal) => Promise<void>,
): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  const closing = new AbortController();
  const tick = () => {
    if (running) return;
    running = pass(closing.signal)
      .catch((error: unknown) => logger.error({ err: error }, `${name} pass failed`))
      .finally(() => {
        running = null;
      });
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    async close() {
      clearInterval(timer);
      closing.abort();
      await running;
    },
  };
}
