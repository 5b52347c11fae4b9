import type { SecretBox } from '../crypto/secret-box.ts';
import type { Keys } from './keys.ts';
import { scanAll, type RedisClient } from './redis.ts';

/**
 * Every secret Plugboard must be able to read back (provider passwords and sessions, MFA login state,
 * webhook signing secrets, TOTP secrets) lives in a Redis hash whose key ends in `:secrets`, one field
 * per secret, each sealed with AES-256-GCM. The associated data is the key (without the prefix) and the
 * field, so a sealed value moved to another record or field no longer opens. Because every secret follows
 * this one layout, `rotate-keys` can re-seal all of them without knowing which feature owns them.
 */
export const SECRETS_KEY_SUFFIX = ':secrets';

export function createSealedSecrets(redis: RedisClient, keys: Keys, box: SecretBox) {
  const associatedData = (key: string, field: string) => `${key.slice(keys.prefix.length)}#${field}`;

  function assertSecretsKey(key: string) {
    if (!key.endsWith(SECRETS_KEY_SUFFIX) || !key.startsWith(`${keys.prefix}:`)) {
      throw new Error(`secrets must be stored under a "${SECRETS_KEY_SUFFIX}" key of this prefix`);
    }
  }

  return {
    /** The sealed field values for `key`, ready for an HSET (or a `set`-free Lua commit). */
    seal(key: string, fields: Record<string, string>): Record<string, string> {
      assertSecretsKey(key);
      return Object.fromEntries(Object.entries(fields).map(([field, value]) => [field, box.seal(value, associatedData(key, field))]));
    },

    async write(key: string, fields: Record<string, string>): Promise<void> {
      if (Object.keys(fields).length > 0) await redis.hset(key, this.seal(key, fields));
    },

    async read(key: string, field: string): Promise<string | null> {
      const sealed = await redis.hget(key, field);
      return sealed === null ? null : box.open(sealed, associatedData(key, field));
    },

    async readAll(key: string): Promise<Record<string, string>> {
      const sealed = await redis.hgetall(key);
      return Object.fromEntries(Object.entries(sealed).map(([field, value]) => [field, box.open(value, associatedData(key, field))]));
    },

    /** Re-seals, with the first configured key, every secret not sealed with it yet. Returns how many changed. */
    async rotateAll(): Promise<{ scanned: number; resealed: number }> {
      let scanned = 0;
      let resealed = 0;
      for await (const batch of scanAll(redis, `${keys.prefix}:*${SECRETS_KEY_SUFFIX}`)) {
        for (const key of batch) {
          const fields = await redis.hgetall(key);
          for (const [field, sealed] of Object.entries(fields)) {
            scanned += 1;
            if (box.isSealedWithCurrentKey(sealed)) continue;
            const plaintext = box.open(sealed, associatedData(key, field));
            // Only replace the value we read: a concurrent writer's newer secret wins.
            const replaced = await redis.eval(
              "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end return -1",
              1,
              key,
              field,
              sealed,
              box.seal(plaintext, associatedData(key, field)),
            );
            if (replaced !== -1) resealed += 1;
          }
        }
      }
      return { scanned, resealed };
    },
  };
}

export type SealedSecrets = ReturnType<typeof createSealedSecrets>;
