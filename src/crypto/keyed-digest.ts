import { createHmac, hkdfSync } from 'node:crypto';
import type { EncryptionKey } from '../config.ts';
import { safeEqual } from './hashing.ts';

/**
 * HMAC-SHA256 under a key derived from an `ENCRYPTION_KEYS` entry, for values kept only to be compared later
 * whose input is guessable by someone who can read Redis: a request body holding a password (idempotency
 * fingerprints), a six-digit SMS code. A plain hash of those falls to a dictionary or to a million tries;
 * without the key it cannot be tested at all. A digest reads `<kid>.<hex>`, so one made before a key
 * rotation still checks while its key is configured.
 */
export interface KeyedDigest {
  digest(value: string): string;
  /** Whether `stored` is this value's digest; false when its key is no longer configured. */
  matches(value: string, stored: string): boolean;
}

/** A key for one purpose only, so that a digest, a token signature and a sealed value never share one. */
export function deriveKey(key: EncryptionKey, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), purpose, 32));
}

export function createKeyedDigest(keys: EncryptionKey[], purpose: string): KeyedDigest {
  const [current] = keys;
  if (!current) throw new Error('a keyed digest needs an encryption key');
  const derived = new Map(keys.map((key) => [key.kid, deriveKey(key, purpose)]));
  const digestWith = (kid: string, key: Buffer, value: string) => `${kid}.${createHmac('sha256', key).update(value).digest('hex')}`;
  const currentKey = deriveKey(current, purpose);
  return {
    digest: (value) => digestWith(current.kid, currentKey, value),
    matches(value, stored) {
      const kid = stored.slice(0, stored.lastIndexOf('.'));
      const key = derived.get(kid);
      return key !== undefined && safeEqual(digestWith(kid, key, value), stored);
    },
  };
}
