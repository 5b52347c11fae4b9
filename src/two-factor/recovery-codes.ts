// Single-use recovery codes, shown to the user once and stored only as hashes.
//
// A code is 16 characters of Crockford's Base32 (80 random bits) printed as `xxxx-xxxx-xxxx-xxxx`. The alphabet
// has no I, L, O or U, so what a user reads off paper is what they type; normalisation also forgives case,
// separators and the usual look-alikes (o→0, i/l→1).

import { createHash, randomInt } from 'node:crypto';

const CROCKFORD_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const GROUP_COUNT = 4;
const GROUP_LENGTH = 4;
const DEFAULT_CODE_COUNT = 10;

export function generateRecoveryCodes(count = DEFAULT_CODE_COUNT): string[] {
  return Array.from({ length: count }, generateRecoveryCode);
}

function generateRecoveryCode(): string {
  return Array.from({ length: GROUP_COUNT }, randomGroup).join('-');
}

function randomGroup(): string {
  // randomInt is uniform over the 32 symbols, so each character carries exactly 5 bits.
  let group = '';
  for (let index = 0; index < GROUP_LENGTH; index++) {
    group += CROCKFORD_ALPHABET.charAt(randomInt(CROCKFORD_ALPHABET.length));
  }
  return group;
}

/** The canonical form that gets hashed: lower case, no dashes or whitespace, look-alike letters mapped. */
export function normaliseRecoveryCode(code: string): string {
  return code
    .toLowerCase()
    .replace(/[\s-]/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1');
}

/**
 * SHA-256 of the normalised code, hex-encoded. A fast, unsalted hash is enough here, unlike for passwords:
 * with 80 random bits per code, nobody holding the stored hashes can search the input space, so a slow or
 * salted hash would add cost without adding protection.
 */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(normaliseRecoveryCode(code)).digest('hex');
}
