import t from 'tap';
import { WaitingRooms } from '../../src/webhooks/waiting-rooms.ts';

t.test('a woken room lets its longest waiter go first, one per wake, and leaves other rooms alone', async (t) => {
  const rooms = new WaitingRooms();
  const order: string[] = [];
  const first = rooms.wait('a', 10_000, undefined).then(() => order.push('a1'));
  const second = rooms.wait('a', 10_000, undefined).then(() => order.push('a2'));
  const other = rooms.wait('b', 10_000, undefined).then(() => order.push('b1'));
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
  await rooms.wait('a', 20, undefined);
  t.ok(Date.now() - started >= 15, 'after about its timeout');
  t.equal(rooms.size('a'), 0);
});

t.test('a waiter taken out of the room gets what it is handed, or nothing, and no longer times out', async (t) => {
  const rooms = new WaitingRooms<string, string>();
  const first = rooms.wait('a', 30, 'ticket-1');
  const second = rooms.wait('a', 30, 'ticket-2');
  const taken = rooms.takeFirst('a');
  t.equal(taken?.ticket, 'ticket-1', 'the longest waiter, with its ticket');
  t.equal(rooms.size('a'), 1, 'out of the room');
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(await second, undefined, 'the other timed out');
  taken?.hand('the slot');
  t.equal(await first, 'the slot', 'the taken one waited for its hand-over past its timeout');

  const third = rooms.wait('a', 10_000, 'ticket-3');
  rooms.takeFirst('a')?.hand(undefined);
  t.equal(await third, undefined, 'handed nothing: it asks for itself');
  t.equal(rooms.takeFirst('a'), undefined, 'an empty room has nobody to take');
});
