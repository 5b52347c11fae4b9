import type { SecretBox } from '../crypto/secret-box.ts';
import type { Mutation } from './event-log.ts';
import type { Keys } from './keys.ts';
import { scanAll, type RedisClient } from './redis.ts';

/**
 * Every secret Plugboard must be able to read back (provider passwords and sessions, MFA login state,
 * webhook signing secrets, TOTP secrets, idempotent responses) lives under a key ending in `:secrets`: one
 * string holding the record's whole field → value map as JSON, sealed with AES-256-GCM as raw bytes. The
 * associated data is the key (without the prefix), so a sealed value moved to another record does not open.
 * Because every secret follows this one layout, `rotate-keys` can re-seal all of them without knowing which
 * feature owns them.
 *
 * Why one sealed value and not a hash of sealed fields (the layout before): a pending MFA credential's
 * password and login state took 768 bytes as a hash (values over 64 bytes force the hashtable encoding, and
 * each field carried its own IV, tag, kid and base64) and take ≈ 480 as one binary string. The price is
 * that a writer changing some fields must write the whole map, so it reads the map first and needs the
 * record's version guard to keep a concurrent writer's fields (see credential-store's commit).
 *
 * Keys still holding the earlier layout — a hash of `enc1:` text values, each sealed with the key and `#field`
 * as associated data — are read as they are, and `rotate-keys` converts them.
 */
export const SECRETS_KEY_SUFFIX = ':secrets';

// Either layout in one round trip: the sealed map (a string), a legacy hash's field/value pairs, or nil.
const READ_SCRIPT = `
if redis.call('TYPE', KEYS[1]).ok == 'hash' then return redis.call('HGETALL', KEYS[1]) end
return redis.call('GET', KEYS[1])`;

// Replaces the value only if it still is what was read (ARGV 2: 'string' or 'hash'; ARGV 3..: the value, or
// the field/value pairs), so a concurrent writer's newer secrets win; a TTL (enrollments, idempotent
// responses) is kept.
const RESEAL_SCRIPT = `
local layout = redis.call('TYPE', KEYS[1]).ok
if layout ~= ARGV[2] then return 0 end
if layout == 'string' then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
else
  if redis.call('HLEN', KEYS[1]) * 2 ~= #ARGV - 2 then return 0 end
  for i = 3, #ARGV, 2 do
    if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
  end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/** As stored: the sealed map, a legacy hash's field/value pairs, or nothing. */
type Stored = Buffer | Buffer[] | null;

type WithScripts = RedisClient & {
  plugboardReadSecretsBuffer(key: string): Promise<Stored>;
  plugboardResealSecrets(numKeys: 1, key: string, ...args: (string | Buffer)[]): Promise<number>;
};

export function createSealedSecrets(redis: RedisClient, keys: Keys, box: SecretBox) {
  redis.defineCommand('plugboardReadSecrets', { numberOfKeys: 1, lua: READ_SCRIPT });
  redis.defineCommand('plugboardResealSecrets', { lua: RESEAL_SCRIPT });
  const scripts = redis as WithScripts;

  const associatedData = (key: string) => key.slice(keys.prefix.length);

  function assertSecretsKey(key: string) {
    if (!key.endsWith(SECRETS_KEY_SUFFIX) || !key.startsWith(`${keys.prefix}:`)) {
      throw new Error(`secrets must be stored under a "${SECRETS_KEY_SUFFIX}" key of this prefix`);
    }
  }

  function open(key: string, stored: Stored): Record<string, string> {
    if (stored === null) return {};
    if (Buffer.isBuffer(stored)) return JSON.parse(box.open(stored, associatedData(key))) as Record<string, string>;
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < stored.length; i += 2) {
      const field = (stored[i] as Buffer).toString('utf8');
      fields[field] = box.open(stored[i + 1] as Buffer, `${associatedData(key)}#${field}`);
    }
    return fields;
  }

  return {
    /** The whole map sealed as the value of `key`. */
    seal(key: string, fields: Record<string, string>): Buffer {
      assertSecretsKey(key);
      return box.seal(JSON.stringify(fields), associatedData(key));
    },

    /** The commit mutation that makes `fields` all the secrets of `key`; none at all removes the key. */
    writeMutation(key: string, fields: Record<string, string>): Mutation {
      return Object.keys(fields).length === 0 ? { op: 'del', key } : { op: 'set', key, value: this.seal(key, fields) };
    },

    /** Makes `fields` all the secrets of `key`: fields stored before and not given are gone. */
    async write(key: string, fields: Record<string, string>): Promise<void> {
      await redis.set(key, this.seal(key, fields));
    },

    async read(key: string, field: string): Promise<string | null> {
      return (await this.readAll(key))[field] ?? null;
    },

    async readAll(key: string): Promise<Record<string, string>> {
      return open(key, await scripts.plugboardReadSecretsBuffer(key));
    },

    /**
     * Re-seals, with the first configured key, every secrets map not sealed with it yet, and converts those
     * still in the legacy layout. Returns how many keys it found and how many it changed.
     */
    async rotateAll(): Promise<{ scanned: number; resealed: number }> {
      let scanned = 0;
      let resealed = 0;
      for await (const batch of scanAll(redis, `${keys.prefix}:*${SECRETS_KEY_SUFFIX}`)) {
        for (const key of batch) {
          const stored = await scripts.plugboardReadSecretsBuffer(key);
          // Deleted since the scan.
          if (stored === null) continue;
          scanned += 1;
          if (Buffer.isBuffer(stored) && box.isSealedWithCurrentKey(stored)) continue;
          const read = Buffer.isBuffer(stored) ? ['string', stored] : ['hash', ...stored];
          resealed += await scripts.plugboardResealSecrets(1, key, this.seal(key, open(key, stored)), ...read);
        }
      }
      return { scanned, resealed };
    },
  };
}

export type SealedSecrets = ReturnType<typeof createSealedSecrets>;
