import t from 'tap';
import { WaitingRooms } from '../../src/webhooks/waiting-rooms.ts';

t.test('a woken room lets its longest waiter go first, one per wake, and leaves other rooms alone', async (t) => {
  const rooms = new WaitingRooms();
  const order: string[] = [];
  const first = rooms.wait('a', 10_000).then(() => order.push('a1'));
  const second = rooms.wait('a', 10_000).then(() => order.push('a2'));
  const other = rooms.wait('b', 10_000).then(() => order.push('b1'));
  t.equal(rooms.size('a'), 2);
  t.equal(rooms.size('b'), 1);
  rooms.wakeFirst('a');
  await first;
  t.same(order, ['a1'], 'one wake, one waiter');
  t.equal(rooms.size('a'), 1);
  rooms.wakeFirst('a');
  rooms.wakeFirst('b');
  await Promise.all([second, other]);
  t.same(order, ['a1', 'a2', 'b1']);
  t.equal(rooms.size('a'), 0);
  rooms.wakeFirst('a'); // nobody waits: nothing happens
});

t.test('a wait ends on its own timer and leaves the room', async (t) => {
  const rooms = new WaitingRooms();
  const started = Date.now();
  await rooms.wait('a', 20);
  t.ok(Date.now() - started >= 15, 'after about its timeout');
  t.equal(rooms.size('a'), 0);
});
