import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { whenAwayFor, type ConnectionWatch } from '../../src/storage/redis.ts';

/** A connection whose state the test sets: what `watchConnection` reports, without a Redis to break. */
function settableWatch(): ConnectionWatch & { up: boolean } {
  return { up: true, isUp() { return this.up; }, stop() {} };
}

t.test('whenAwayFor waits out short outages and resolves once one connection stays down long enough', async (t) => {
  const [main, queues] = [settableWatch(), settableWatch()];
  const away = whenAwayFor([main, queues], 300, 10);
  t.teardown(away.cancel);
  let reached = false;
  void away.reached.then(() => (reached = true));

  main.up = false;
  await sleep(150);
  main.up = true;
  await sleep(100);
  queues.up = false;
  await sleep(150);
  queues.up = true;
  await sleep(200);
  t.notOk(reached, 'two 150 ms outages with Redis back in between are not 300 ms away');

  queues.up = false;
  const downAt = Date.now();
  await away.reached;
  t.ok(Date.now() - downAt >= 290, 'resolved once down for the whole 300 ms');
});
