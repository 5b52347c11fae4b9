/**
 * The resilience suite is slow (it kills Redis and workers on purpose), so `npm test` skips it and
 * `npm run test:resilience` runs it. Scenarios are loaded only when they run, so a skipped file loads nothing.
 */
import type { Test } from 'tap';

export const RESILIENCE_ENV = 'PLUGBOARD_RESILIENCE';

export function resilienceTest(t: Test, name: string, load: () => Promise<{ default: (t: Test) => Promise<void> }>) {
  const skip = process.env[RESILIENCE_ENV] === '1' ? false : `slow: run with npm run test:resilience`;
  t.test(name, { skip, timeout: 300_000 }, async (t) => (await load()).default(t));
}
