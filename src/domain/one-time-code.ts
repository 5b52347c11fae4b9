/**
 * A one-time code as the customer typed it, made into what a provider's form expects, so that typing
 * habits and keyboards do not cost an attempt:
 * - whitespace is dropped (customers copy "123 456" or a trailing newline);
 * - compatibility forms are folded (NFKC: full-width "１２３" from a Japanese keyboard);
 * - decimal digits of any script become ASCII digits (a phone set to Arabic types "١٢٣").
 * Anything else goes to the provider as typed. Returns null when a character outside printable ASCII is
 * left: no provider's code holds one, so sending it would only spend an attempt.
 */
export function normalizeCode(typed: string): string | null {
  const code = Array.from(typed.normalize('NFKC').replace(/\s+/gu, ''), (character) =>
    DECIMAL_DIGIT.test(character) ? String(digitValue(character)) : character,
  ).join('');
  return PRINTABLE_ASCII.test(code) ? code : null;
}

const DECIMAL_DIGIT = /^\p{Nd}$/u;
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

/**
 * Unicode keeps every script's decimal digits as a run of ten consecutive code points, zero to nine
 * (a stability guarantee), and where runs are adjacent each still starts on a zero: so a digit's value is
 * the count of digits right before it, modulo ten.
 */
function digitValue(digit: string): number {
  let codePoint = digit.codePointAt(0) ?? 0;
  let before = 0;
  while (DECIMAL_DIGIT.test(String.fromCodePoint(codePoint - 1))) {
    before++;
    codePoint--;
  }
  return before % 10;
}
