import t from 'tap';
import { Coalescer } from '../../src/coalescer.ts';

function recorder() {
  const flushes: { key: string; items: number[] }[] = [];
  const flush = async (key: string, items: number[]) => {
    flushes.push({ key, items: [...items] });
  };
  return { flushes, flush };
}

t.test('what is added for a key in one turn of the event loop is flushed once, together', async (t) => {
  const { flushes, flush } = recorder();
  const coalescer = new Coalescer(flush, 100);
  const added = [coalescer.add('org-a', [1]), coalescer.add('org-a', [2, 3]), coalescer.add('org-b', [4])];
  t.same(flushes, [], 'nothing is flushed before the turn ends');
  await Promise.all(added);
  t.same(flushes, [
    { key: 'org-a', items: [1, 2, 3] },
    { key: 'org-b', items: [4] },
  ]);
  await coalescer.add('org-a', [5]);
  t.same(flushes.at(-1), { key: 'org-a', items: [5] }, 'a later turn starts a new batch');
});

t.test('a batch that reaches the maximum is flushed at once and the next one starts', async (t) => {
  const { flushes, flush } = recorder();
  const coalescer = new Coalescer(flush, 3);
  const first = coalescer.add('org', [1, 2]);
  const second = coalescer.add('org', [3]);
  t.same(flushes, [{ key: 'org', items: [1, 2, 3] }], 'flushed without waiting for the turn to end');
  const third = coalescer.add('org', [4]);
  await Promise.all([first, second, third]);
  t.same(flushes, [
    { key: 'org', items: [1, 2, 3] },
    { key: 'org', items: [4] },
  ]);
});

t.test('every caller of a batch sees its flush fail', async (t) => {
  let calls = 0;
  const coalescer = new Coalescer<number>(async () => {
    calls += 1;
    throw new Error('Redis went away');
  }, 10);
  const results = await Promise.allSettled([coalescer.add('org', [1]), coalescer.add('org', [2])]);
  t.equal(calls, 1);
  t.same(
    results.map((result) => result.status === 'rejected' && (result.reason as Error).message),
    ['Redis went away', 'Redis went away'],
  );
});
