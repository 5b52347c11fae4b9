import type { Container } from '../src/container.ts';

/**
 * How often a pass reads every credential rather than those with a step in flight. Commits write timers
 * atomically, so this only repairs what no commit could lose (an index restored from an older backup, data
 * written by a version without the index); reading every credential each minute would not scale.
 */
const FULL_PASS_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Re-creates missing credential jobs on start and then every `RECONCILE_INTERVAL_SECONDS`: a step never
 * enqueued on every pass, a challenge or session without its timer on the first pass and hourly after. Any
 * number of processes may run it at once: job ids are deterministic, so nothing is scheduled twice.
 */
export function startCredentialReconciler(container: Container): { close(): Promise<void> } {
  let running: Promise<void> | null = null;
  let lastFullPassAt = -Infinity;
  // A full pass reads every credential: closing does not wait for the whole of one.
  const closing = new AbortController();
  const pass = () => {
    if (running) return; // the previous pass is still going
    const everyCredential = Date.now() - lastFullPassAt >= FULL_PASS_INTERVAL_MS;
    running = container.services.connections
      .reconcile({ everyCredential, stop: closing.signal })
      .then(({ checked }) => {
        if (everyCredential) lastFullPassAt = Date.now();
        container.logger.debug({ checked, everyCredential }, 'credential reconciler pass done');
      })
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
      closing.abort();
      await running;
    },
  };
}
