import t from 'tap';
import { isId, newId, randomBase32 } from '../../src/ids.ts';

t.test('ids have the SPEC shape and never repeat across many refills of the random pool', async (t) => {
  // 2,000 ids of 26 characters use 52,000 random bytes: the 4 KiB pool is refilled a dozen times.
  const ids = Array.from({ length: 2_000 }, () => newId('crd'));
  t.ok(
    ids.every((id) => isId('crd', id)),
    'crd_ and 26 base32 characters',
  );
  t.equal(new Set(ids).size, ids.length, 'all distinct');
  const characters = new Set(ids.join('').replaceAll('crd_', ''));
  t.equal(characters.size, 32, 'every base32 character occurs');
});

t.test('a string longer than the pool is still random throughout', async (t) => {
  const long = randomBase32(10_000);
  t.equal(long.length, 10_000);
  t.match(long, /^[a-z2-7]+$/);
  t.not(long.slice(0, 4096), long.slice(4096, 8192), 'no stretch repeats the one before');
});
