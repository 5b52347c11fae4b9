import type { Container } from '../src/container.ts';

const INTERVAL_MS = 5_000;
/** An event younger than this is still being fanned out by the process that committed it. */
export const RECONCILE_GRACE_MS = 10_000;

/**
 * Finds events committed but never fanned out (a process died between commit and fan-out) and fans them
 * out, on start and then every few seconds. Several processes may run it at once: a delivery's job id is
 * its event and endpoint, so an event is delivered once per endpoint.
 */
export function startWebhookReconciler(container: Container): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  const pass = () => {
    if (running) return; // the previous pass is still going
    running = container.services.webhooks
      .reconcileFanout(new Date(Date.now() - RECONCILE_GRACE_MS))
      .then((reconciled) => {
        if (reconciled > 0) container.logger.warn({ reconciled }, 'reconciler fanned out events that had been left pending');
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
