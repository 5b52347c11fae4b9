import t from 'tap';
import { safeEqual } from '../../src/crypto/hashing.ts';

t.test('safeEqual compares strings of any length', async (t) => {
  t.ok(safeEqual('', ''));
  t.ok(safeEqual('abc', 'abc'));
  t.ok(safeEqual('żółw ✓', 'żółw ✓'));
  t.notOk(safeEqual('abc', 'abd'));
  t.notOk(safeEqual('abc', 'abcd'), 'a prefix is not equal');
  t.notOk(safeEqual('', 'a'));
  t.notOk(safeEqual('a'.repeat(10_000), 'a'.repeat(9_999) + 'b'));
});
