import type { Container } from '../src/container.ts';

export interface ReconcilerOptions {
  intervalMs: number;
  /** An event younger than this is still on its normal way to the fan-out queue. */
  graceMs: number;
}

export const DEFAULT_RECONCILER_OPTIONS: ReconcilerOptions = { intervalMs: 5_000, graceMs: 30_000 };

/**
 * Finds events committed but never fanned out (a process died between commit and enqueue) and enqueues
 * them, on start and then every few seconds. Several processes may run it at once: fan-out job ids are
 * the event ids, so an event is enqueued once.
 */
export function startWebhookReconciler(container: Container, options: ReconcilerOptions): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  const pass = () => {
    if (running) return; // the previous pass is still going
    running = container.services.webhooks
      .reconcileFanout(new Date(Date.now() - options.graceMs))
      .then((enqueued) => {
        if (enqueued > 0) container.logger.warn({ enqueued }, 'reconciler enqueued events that had not been fanned out');
      })
      .catch((error: unknown) => container.logger.error({ err: error }, 'webhook reconciler pass failed'))
      .finally(() => {
        running = null;
      });
  };
  pass();
  const timer = setInterval(pass, options.intervalMs);
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
