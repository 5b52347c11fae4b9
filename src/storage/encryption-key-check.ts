/**
 * Processes that share a Redis must share their encryption keys: a secret sealed by a process whose key
 * differs from everyone else's (an api and a workers process each generating a local key, a kid given
 * other material by mistake) could never be opened again by the others. Each key leaves a fingerprint
 * under its kid the first time a process starts with it. A process refuses to start when one of its keys
 * differs from the fingerprint under the same kid, or when none of its kids is among those recorded (its
 * keys are unrelated to the deployment's). A recorded kid that a process lacks is normal: a key retired
 * after a rotation.
 */
import { createHmac } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';
import { deriveKey } from '../crypto/keyed-digest.ts';
import type { Keys } from './keys.ts';
import type { RedisClient } from './redis.ts';

const FINGERPRINT_PURPOSE = 'plugboard encryption key fingerprint';

/**
 * KEYS[1]: the fingerprint hash; ARGV: kid, fingerprint, kid, fingerprint, … Atomic, so processes starting
 * together with unrelated keys cannot both record theirs. Returns { verdict, kid }.
 */
const CHECK_SCRIPT = `
local recorded = redis.call('HLEN', KEYS[1])
local shared = 0
for i = 1, #ARGV, 2 do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored then
    if stored ~= ARGV[i + 1] then return {'differs', ARGV[i]} end
    shared = shared + 1
  end
end
if recorded > 0 and shared == 0 then return {'unrelated', ''} end
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return {'ok', ''}
`;

export class EncryptionKeyMismatchError extends Error {
  override name = 'EncryptionKeyMismatchError';
}

/** Names one key without revealing anything about it: an HMAC under a key derived for this purpose alone. */
function keyFingerprint(key: EncryptionKey): string {
  return createHmac('sha256', deriveKey(key, FINGERPRINT_PURPOSE)).update(key.kid).digest('hex').slice(0, 32);
}

export async function checkEncryptionKeys(redis: RedisClient, keys: Keys, encryptionKeys: EncryptionKey[]): Promise<void> {
  const pairs = encryptionKeys.flatMap((key) => [key.kid, keyFingerprint(key)]);
  const [verdict, kid] = (await redis.eval(CHECK_SCRIPT, 1, keys.encryptionKeyFingerprints, ...pairs)) as [string, string];
  const remedy = 'every process sharing the Redis needs the same ENCRYPTION_KEYS';
  if (verdict === 'differs') {
    throw new EncryptionKeyMismatchError(`ENCRYPTION_KEYS: key "${kid}" is not the key "${kid}" that this deployment's data (KEY_PREFIX) was sealed with; ${remedy}`);
  }
  if (verdict === 'unrelated') {
    const recorded = await redis.hkeys(keys.encryptionKeyFingerprints);
    throw new EncryptionKeyMismatchError(
      `ENCRYPTION_KEYS: none of its keys is one this deployment's data (KEY_PREFIX) was sealed with (${recorded.join(', ')}); ${remedy} ` +
        '(to rotate, put the new key first and keep the old one until `npm run admin -- rotate-keys` has run)',
    );
  }
}
