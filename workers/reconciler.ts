import type { Container } from '../src/container.ts';

/**
 * Re-creates missing credential jobs (a challenge without its expiry timer, a session without its expiry
 * timer, a step never enqueued) on start and then every `RECONCILE_INTERVAL_SECONDS`. Any number of
 * processes may run it at once: job ids are deterministic, so nothing is scheduled twice.
 */
export function startCredentialReconciler(container: Container): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  const pass = () => {
    if (running) return; // the previous pass is still going
    running = container.services.connections
      .reconcile()
      .then(({ checked }) => container.logger.debug({ checked }, 'credential reconciler pass done'))
      .catch((error: unknown) => container.logger.error({ err: error }, 'credential reconciler pass failed'))
      .finally(() => {
        running = null;
      });
  };
  pass();
  const timer = setInterval(pass, container.config.reconcileIntervalSeconds * 1000);
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
