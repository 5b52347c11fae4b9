import t from 'tap';
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  normaliseRecoveryCode,
} from '../../src/two-factor/recovery-codes.ts';

const CROCKFORD_SYMBOLS = '0123456789abcdefghjkmnpqrstvwxyz';
const RECOVERY_CODE_SHAPE = /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/;

t.test('generates ten distinct, readable codes by default', async (t) => {
  const codes = generateRecoveryCodes();
  t.equal(codes.length, 10);
  for (const code of codes) t.match(code, RECOVERY_CODE_SHAPE);
  t.equal(new Set(codes).size, 10);
  t.equal(generateRecoveryCodes(3).length, 3, 'the count is honoured');
});

t.test('every code carries 80 bits: 16 characters drawn from all 32 symbols', async (t) => {
  // 3,200 draws leave any one symbol unseen with probability (31/32)^3200, about e^-100.
  const seen = new Set(generateRecoveryCodes(200).join('').replaceAll('-', ''));
  t.same([...seen].sort().join(''), CROCKFORD_SYMBOLS);
});

t.test('normalisation forgives case, separators and look-alike letters', async (t) => {
  t.equal(normaliseRecoveryCode('ABCD-EFGH-JKMN-PQRS'), 'abcdefghjkmnpqrs');
  t.equal(normaliseRecoveryCode(' abcd efgh\tjkmn-pqrs\n'), 'abcdefghjkmnpqrs');
  t.equal(normaliseRecoveryCode('oOiIlL'), '001111');
});

t.test('hashes are of the normalised code and stable across releases', async (t) => {
  const stored = hashRecoveryCode('0123-4567-89ab-cdef');
  // Pinned: changing the hash would silently invalidate every recovery code already issued.
  t.equal(stored, '9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f');
  t.equal(hashRecoveryCode('0I23 4567 89AB CDEF'), stored, 'as a user might type it');
  t.not(hashRecoveryCode('0123-4567-89ab-cdeg'), stored);
});
