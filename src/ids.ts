import { randomBytes } from 'node:crypto';

/** SPEC §1: a type prefix followed by 26 random lowercase base32 characters (130 bits). */
export type IdPrefix = 'org' | 'usr' | 'key' | 'prv' | 'crd' | 'acc' | 'mfa' | 'mth' | 'whe' | 'evt' | 'att' | 'chl';

export const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

// A call into OpenSSL per id showed in the API's profile; ids are drawn from a pool refilled 4 KiB at a time
// (what Node does for randomUUID). Each byte is used once.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

export function randomBase32(length: number): string {
  if (poolOffset + length > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, length));
    poolOffset = 0;
  }
  let out = '';
  for (let i = poolOffset; i < poolOffset + length; i += 1) out += BASE32[(pool[i] as number) & 31];
  poolOffset += length;
  return out;
}

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase32(26)}`;
}

const ID_SHAPE = /^[a-z]{3}_(?:[a-z2-7]{26}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function isId(prefix: IdPrefix, value: string): boolean {
  return value.startsWith(`${prefix}_`) && ID_SHAPE.test(value);
}

/** JSON-schema pattern for an id of one type, used by route schemas so a malformed id is a 400, not a lookup. */
export function idPattern(prefix: IdPrefix): string {
  return `^${prefix}_(?:[a-z2-7]{26}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`;
}
