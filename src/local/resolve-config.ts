/**
 * How the entry points (`src/main.ts`, the CLIs) turn the process environment into a `Config`:
 * the same validation everywhere, plus the local encryption key that lets `npm start` run with no setup.
 */
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { localEncryptionKeys } from './dev-defaults.ts';

export interface ResolvedConfig {
  config: Config;
  /** Things worth telling the operator once a logger exists (e.g. "generated a local encryption key"). */
  notes: string[];
}

export async function resolveConfig(processEnv: Record<string, string | undefined>): Promise<ResolvedConfig> {
  const env = { ...processEnv };
  const notes: string[] = [];
  if (!env.ENCRYPTION_KEYS) {
    const dataDir = env.DATA_DIR?.trim() || '.data';
    const local = await localEncryptionKeys(dataDir).catch((error: unknown) => {
      throw new ConfigError([`DATA_DIR "${dataDir}" cannot hold the local encryption key (${(error as Error).message}); choose another DATA_DIR or set ENCRYPTION_KEYS`]);
    });
    env.ENCRYPTION_KEYS = local.keys;
    // A local start (no keys given) gets the demo organization unless told otherwise; a deployment, which
    // sets its keys, does not print an admin password and API secret into its logs unless it asks to.
    env.BOOTSTRAP_DEMO ??= 'true';
    notes.push(local.created ? `generated a local encryption key into ${dataDir}/encryption-keys` : `using the local encryption key in ${dataDir}/encryption-keys`);
  }
  return { config: loadConfig(env), notes };
}
