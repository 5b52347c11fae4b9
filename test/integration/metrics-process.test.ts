/** Its own file: process metrics are set up once per process, and this is about when that happens. */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { build } from '../helper.ts';

t.test('process metrics observe from start-up, not from the first scrape', async (t) => {
  const app = await build(t);
  // Garbage enough for several young-generation collections before anyone asks for /metrics.
  let kept = 0;
  for (let round = 0; round < 200; round += 1) kept += Array.from({ length: 10_000 }, (_, index) => ({ index })).length;
  t.comment(`allocated ${kept} short-lived objects`);
  await sleep(200);
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const collections = Number(/^nodejs_gc_duration_seconds_count\{kind="minor"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  t.ok(collections > 0, `${collections} minor collections before the first scrape are counted`);
});
