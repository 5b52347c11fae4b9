// Phone numbers and email addresses as two-factor destinations: validating them and showing them partially.

// E.164: "+", a country code not starting with 0, at most 15 digits in all. The shortest numbers in use
// (e.g. Niue, +683 and four digits) have seven, so anything shorter is a typo.
const E164 = /^\+[1-9]\d{6,14}$/;
const VISIBLE_LEADING_DIGITS = 1;
const VISIBLE_TRAILING_DIGITS = 4;
const FULLY_MASKED = '***';

export function isE164(number: string): boolean {
  return E164.test(number);
}

/**
 * `+15551234567` → `+1******4567`: enough for a user to recognise their own number, too little to dial it.
 * Anything that is not E.164 is masked completely, since we cannot tell which parts are safe to show.
 */
export function maskPhone(number: string): string {
  if (!isE164(number)) return FULLY_MASKED;
  const digits = number.slice(1);
  const hiddenCount = digits.length - VISIBLE_LEADING_DIGITS - VISIBLE_TRAILING_DIGITS;
  return `+${digits.slice(0, VISIBLE_LEADING_DIGITS)}${'*'.repeat(hiddenCount)}${digits.slice(-VISIBLE_TRAILING_DIGITS)}`;
}

/** `alice@example.com` → `a***@example.com`. The local part's length is hidden too. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return FULLY_MASKED;
  return `${email.charAt(0)}${FULLY_MASKED}${email.slice(at)}`;
}
