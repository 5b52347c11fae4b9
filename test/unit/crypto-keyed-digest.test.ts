import t from 'tap';
import { createKeyedDigest } from '../../src/crypto/keyed-digest.ts';

const key = (kid: string, byte: number) => ({ kid, key: Buffer.alloc(32, byte) });

t.test('a keyed digest names its key, and only the same value under a configured key matches it', async (t) => {
  const digests = createKeyedDigest([key('k1', 1)], 'test purpose');
  const stored = digests.digest('mfa_a:012345');
  // Pinned: a change to the derivation would turn every stored digest (codes in flight, idempotency claims)
  // into a mismatch during a rolling deploy. Computed apart from this code: HKDF-SHA256 (RFC 5869, empty salt,
  // the purpose as info) of the key, then HMAC-SHA256 of the value, in Python's hmac and hashlib.
  t.equal(stored, 'k1.eb44b330919e9995c5940d7eb8b0c52dc8a498f5c375120115c65b771a49d4c3');
  t.ok(digests.matches('mfa_a:012345', stored));
  t.notOk(digests.matches('mfa_a:012346', stored), 'another value');
  t.notOk(digests.matches('mfa_b:012345', stored), 'another holder');
  t.notOk(createKeyedDigest([key('k1', 2)], 'test purpose').matches('mfa_a:012345', stored), 'another key under the same kid');
  t.notOk(createKeyedDigest([key('k1', 1)], 'other purpose').matches('mfa_a:012345', stored), 'another purpose');
  for (const malformed of ['', '.', 'k1', 'k1.', stored.slice(3), `k2.${stored.slice(3)}`]) {
    t.notOk(digests.matches('mfa_a:012345', malformed), `malformed or unknown key: ${JSON.stringify(malformed.slice(0, 8))}`);
  }
});

t.test('after a rotation the new key digests and the old one still matches what it made', async (t) => {
  const before = createKeyedDigest([key('old', 1)], 'test purpose');
  const after = createKeyedDigest([key('new', 2), key('old', 1)], 'test purpose');
  const stored = before.digest('value');
  t.ok(after.matches('value', stored));
  t.match(after.digest('value'), /^new\./);
  t.notOk(createKeyedDigest([key('new', 2)], 'test purpose').matches('value', stored), 'once the old key is gone, it no longer matches');
});

t.test('a kid with dots is read back whole', async (t) => {
  const digests = createKeyedDigest([key('2026.11.28', 3)], 'test purpose');
  t.ok(digests.matches('value', digests.digest('value')));
});
