import t from 'tap';
import { BoundedCache } from '../../src/bounded-cache.ts';

t.test('keeps entries up to its capacity, then starts over', async (t) => {
  const cache = new BoundedCache<string, number>(2);
  t.equal(cache.set('a', 1), 1, 'set returns the value');
  cache.set('b', 2);
  t.equal(cache.get('a'), 1);
  t.equal(cache.get('b'), 2);
  cache.set('c', 3);
  t.equal(cache.get('c'), 3, 'the newest entry is kept');
  t.equal(cache.get('a'), undefined, 'the full cache started over');
  t.equal(cache.get('b'), undefined);
});

t.test('forgets a deleted entry and keeps the others', async (t) => {
  const cache = new BoundedCache<string, number>(3);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.delete('a');
  t.equal(cache.get('a'), undefined);
  t.equal(cache.get('b'), 2);
});
