// Codes sent by text message during login and SMS enrolment. What is stored of one is a keyed digest
// (src/crypto/keyed-digest.ts), bound to its challenge: a million candidates cannot be tried against it offline.

import { randomInt } from 'node:crypto';

const SMS_CODE_DIGITS = 6;

/** Six uniformly random digits, leading zeros included. */
export function generateSmsCode(): string {
  return randomInt(10 ** SMS_CODE_DIGITS)
    .toString()
    .padStart(SMS_CODE_DIGITS, '0');
}
