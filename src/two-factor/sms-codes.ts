// Codes sent by text message during login and SMS enrolment. Compare stored hashes with `safeEqual` from
// src/crypto/hashing.ts.

import { createHmac, randomInt } from 'node:crypto';

const SMS_CODE_DIGITS = 6;

/** Six uniformly random digits, leading zeros included. */
export function generateSmsCode(): string {
  return randomInt(10 ** SMS_CODE_DIGITS)
    .toString()
    .padStart(SMS_CODE_DIGITS, '0');
}

/**
 * The stored form of an SMS code, bound to its challenge so a hash is worthless for any other challenge.
 * This keeps the code out of storage and logs; it does not resist someone who can read the store, because
 * a million candidates hash in milliseconds. Short lifetimes and the attempt limits are what protect SMS codes.
 * HMAC (keyed by the challenge id, which is not secret) is used only to combine the two inputs unambiguously.
 */
export function hashSmsCode(challengeId: string, code: string): string {
  return createHmac('sha256', challengeId).update(code).digest('hex');
}
