/**
 * Processes that share a Redis must share their encryption keys: a secret sealed by a process whose key
 * differs from everyone else's (an api and a workers process each generating a local key, a kid given
 * other material by mistake) could never be opened again by the others. Each key leaves a fingerprint
 * under its kid the first time a process starts with it; a process whose key of the same kid differs
 * refuses to start. A kid that is missing from a process's keys is normal (a key retired after rotation).
 */
import { createHmac } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';
import { deriveKey } from '../crypto/keyed-digest.ts';
import type { Keys } from './keys.ts';
import type { RedisClient } from './redis.ts';

const FINGERPRINT_PURPOSE = 'plugboard encryption key fingerprint';

export class EncryptionKeyMismatchError extends Error {
  override name = 'EncryptionKeyMismatchError';
}

/** Names one key without revealing anything about it: an HMAC under a key derived for this purpose alone. */
export function keyFingerprint(key: EncryptionKey): string {
  return createHmac('sha256', deriveKey(key, FINGERPRINT_PURPOSE)).update(key.kid).digest('hex').slice(0, 32);
}

export async function checkEncryptionKeys(redis: RedisClient, keys: Keys, encryptionKeys: EncryptionKey[]): Promise<void> {
  for (const key of encryptionKeys) {
    const fingerprint = keyFingerprint(key);
    // HSETNX: of processes starting together with different keys, exactly one registers its key.
    if (await redis.hsetnx(keys.encryptionKeyFingerprints, key.kid, fingerprint)) continue;
    if ((await redis.hget(keys.encryptionKeyFingerprints, key.kid)) === fingerprint) continue;
    throw new EncryptionKeyMismatchError(
      `ENCRYPTION_KEYS: key "${key.kid}" is not the key "${key.kid}" that this deployment's data (KEY_PREFIX) was sealed with; ` +
        'every process sharing the Redis needs the same ENCRYPTION_KEYS',
    );
  }
}
