import t from 'tap';
import { generateSmsCode } from '../../src/two-factor/sms-codes.ts';
import { isWellFormedCode } from '../../src/two-factor/totp.ts';

t.test('SMS codes are six digits, leading zeros kept', async (t) => {
  const codes = Array.from({ length: 2000 }, generateSmsCode);
  t.same(codes.filter((code) => !isWellFormedCode(code)), [], 'all are well-formed');
  // About 200 of 2,000 uniform codes start with 0; none would if the padding were missing.
  t.ok(codes.some((code) => code.startsWith('0')), 'some start with 0');
  t.ok(new Set(codes).size > 1900, 'codes are not repeated more than chance allows');
});
