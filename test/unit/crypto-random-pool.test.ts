import t from 'tap';
import { pooledRandomBytes } from '../../src/crypto/random-pool.ts';

t.test('draws never share bytes, and a view kept keeps its bytes across refills of the pool', async (t) => {
  const kept = pooledRandomBytes(12);
  const keptCopy = Buffer.from(kept);
  // 1,000 draws of 12 bytes use 12,000 bytes: the 4 KiB pool is refilled twice.
  const draws = Array.from({ length: 1_000 }, () => pooledRandomBytes(12));
  t.same(kept, keptCopy, 'a refill does not overwrite bytes handed out');
  t.equal(new Set(draws.map((draw) => draw.toString('hex'))).size, draws.length, 'all distinct');
  t.ok(
    draws.every((draw) => draw.length === 12),
    'each as long as asked',
  );
});

t.test('a draw longer than the pool is random throughout', async (t) => {
  const long = pooledRandomBytes(10_000);
  t.equal(long.length, 10_000);
  t.not(long.subarray(0, 4096).toString('hex'), long.subarray(4096, 8192).toString('hex'), 'no stretch repeats the one before');
});
