import t from 'tap';
import { generateSmsCode, hashSmsCode } from '../../src/two-factor/sms-codes.ts';
import { isWellFormedCode } from '../../src/two-factor/totp.ts';

t.test('SMS codes are six digits, leading zeros kept', async (t) => {
  const codes = Array.from({ length: 2000 }, generateSmsCode);
  t.same(codes.filter((code) => !isWellFormedCode(code)), [], 'all are well-formed');
  // About 200 of 2,000 uniform codes start with 0; none would if the padding were missing.
  t.ok(codes.some((code) => code.startsWith('0')), 'some start with 0');
  t.ok(new Set(codes).size > 1900, 'codes are not repeated more than chance allows');
});

t.test('hashSmsCode binds the code to its challenge', async (t) => {
  const stored = hashSmsCode('mfa_test', '012345');
  // Pinned: a change would invalidate every code in flight during a rolling deploy.
  t.equal(stored, '293d2ff39b47d60593e6fcb08356e2d27186a8b15ca6504e24be0d7d4e00dde8');
  t.equal(hashSmsCode('mfa_test', '012345'), stored);
  t.not(hashSmsCode('mfa_other', '012345'), stored, 'another challenge');
  t.not(hashSmsCode('mfa_test', '012346'), stored, 'another code');
  t.not(hashSmsCode('mfa_test0', '12345'), stored, 'the boundary between the inputs matters');
});
