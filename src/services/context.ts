import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Keys } from '../storage/keys.ts';
import type { RedisClient } from '../storage/redis.ts';
import type { SealedSecrets } from '../storage/sealed-secrets.ts';

/** What every service needs from the outside world. Built once per process (see src/container.ts). */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  redis: RedisClient;
  keys: Keys;
  secretBox: SecretBox;
  /** Where every readable secret is stored (one sealed map per key ending in `:secrets`). */
  secrets: SealedSecrets;
  /** Injectable clock so timer logic can be tested without waiting. */
  now: () => Date;
}
