import { pooledRandomBytes } from './crypto/random-pool.ts';

/** SPEC §1: a type prefix followed by 26 random lowercase base32 characters (130 bits). */
export type IdPrefix = 'org' | 'usr' | 'key' | 'prv' | 'crd' | 'acc' | 'mfa' | 'mth' | 'whe' | 'evt' | 'att' | 'chl';

export const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** One base32 character per byte, from its low 5 bits (uniform when the bytes are). */
export function base32OfBytes(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += BASE32[byte & 31];
  return out;
}

export function randomBase32(length: number): string {
  return base32OfBytes(pooledRandomBytes(length));
}

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase32(26)}`;
}

/**
 * The id a new resource is created under. `isIdempotent`: derived from the request's Idempotency-Key, so
 * finding it taken means a retry of the creation that took it (see plugins/idempotency.ts).
 */
export interface NewResourceId {
  id: string;
  isIdempotent: boolean;
}

const ID_SHAPE = /^[a-z]{3}_(?:[a-z2-7]{26}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(`${prefix}_`) && ID_SHAPE.test(value);
}

/** JSON-schema pattern for an id of one type, used by route schemas so a malformed id is a 400, not a lookup. */
export function idPattern(prefix: IdPrefix): string {
  return `^${prefix}_(?:[a-z2-7]{26}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`;
}
