import type { Container } from '../src/container.ts';
import { startPeriodicPass } from './periodic-pass.ts';

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
  let lastFullPassAt = -Infinity;
  // A full pass reads every credential: closing aborts it rather than waiting for the whole of one.
  return startPeriodicPass('credential reconciler', container.config.reconcileIntervalSeconds * 1000, container.logger, async (stop) => {
    const everyCredential = Date.now() - lastFullPassAt >= FULL_PASS_INTERVAL_MS;
    // First: a reconcile that fails must not hold back the sweeps of removed organizations.
    const swept = await container.services.organizationRemoval.sweepDue();
    if (swept.keysDeleted > 0) container.logger.info(swept, 'removed organizations swept again: keys written after their removal deleted');
    const { checked } = await container.services.connections.reconcile({ everyCredential, stop });
    if (everyCredential) lastFullPassAt = Date.now();
    container.logger.debug({ checked, everyCredential, ...swept }, 'credential reconciler pass done');
  });
}
