import type { Container } from '../src/container.ts';
import { startPeriodicPass } from './periodic-pass.ts';

const INTERVAL_MS = 5_000;
/** An event younger than this is still being fanned out by the process that committed it. */
export const RECONCILE_GRACE_MS = 10_000;

/**
 * Finds events committed but never fanned out (a process died between commit and fan-out) and fans them
 * out, on start and then every few seconds. Several processes may run it at once: a delivery's job id is
 * its event and endpoint, so an event is delivered once per endpoint.
 */
export function startWebhookReconciler(container: Container): { close(): Promise<void> } {
  return startPeriodicPass('webhook reconciler', INTERVAL_MS, container.logger, async () => {
    const reconciled = await container.services.webhooks.reconcileFanout(new Date(Date.now() - RECONCILE_GRACE_MS));
    if (reconciled > 0) container.logger.warn({ reconciled }, 'reconciler fanned out events that had been left pending');
  });
}
