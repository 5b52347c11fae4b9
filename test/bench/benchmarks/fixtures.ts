import { listProviders } from '../../../src/connectors/catalog.ts';
import type { StateMachineConfig, TransitionEnv } from '../../../src/domain/credential-state.ts';
import { newId, randomBase32 } from '../../../src/ids.ts';

/** The first sandbox provider of the catalog: every benchmark logs in to the built-in sandbox site. */
export const SANDBOX_PROVIDER_ID = listProviders().find((provider) => provider.isSandbox)?.id ?? 'prv_sandbox-missing';

/** What the state machine needs to make a credential object outside the credential store. */
export function createTransitionEnvForBench(config: StateMachineConfig): TransitionEnv {
  return {
    now: new Date(),
    config,
    actor: 'system',
    newId: (kind) => (kind === 'challenge' ? newId('mfa') : kind === 'method' ? newId('mth') : randomBase32(16)),
  };
}
