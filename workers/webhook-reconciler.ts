import type { Container } from '../src/container.ts';

const INTERVAL_MS = 5_000;
/** An event younger than this is still on its normal way to the fan-out queue. */
export const RECONCILE_GRACE_MS = 10_000;

/**
 * Finds events committed but never fanned out (a process died between commit and enqueue) and enqueues
 * them, on start and then every few seconds. Several processes may run it at once: fan-out job ids are
 * the event ids, so an event is enqueued once.
 */
export function startWebhookReconciler(container: Container): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  const pass = () => {
    if (running) return; // the previous pass is still going
    running = container.services.webhooks
      .reconcileFanout(new Date(Date.now() - RECONCILE_GRACE_MS))
      .then((enqueued) => {
        if (enqueued > 0) container.logger.warn({ enqueued }, 'reconciler enqueued events that had not been fanned out');
      })
      .catch((error: unknown) => container.logger.error({ err: error }, 'webhook reconciler pass failed'))
      .finally(() => {
        running = null;
      });
  };
  pass();
  const timer = setInterval(pass, INTERVAL_MS);
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
