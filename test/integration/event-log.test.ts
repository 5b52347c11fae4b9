import t from 'tap';
import { newEvent } from '../../src/services/events.ts';
import { packGuardedRecord, unpackGuardedRecord } from '../../src/storage/event-log.ts';
import { unpackJson } from '../../src/storage/packed-json.ts';
import { build } from '../helper.ts';

t.test('commit writes state and events atomically and refuses a stale version', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const orgKeys = ctx.keys.org('org_aaaaaaaaaaaaaaaaaaaaaaaaaa');
  const now = new Date();
  const record = (version: number) => JSON.stringify({ id: 'crd_x', version });
  const first = newEvent('credential.created', { credential: { id: 'crd_x' } }, now);

  t.equal(
    await events.commit({
      organizationId: 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa',
      guard: { key: orgKeys.credential('crd_x'), expectedVersion: null },
      mutations: [{ op: 'set', key: orgKeys.credential('crd_x'), value: record(1) }],
      events: [first],
    }),
    true,
  );
  const second = newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now);
  const stale = await events.commit({
    organizationId: 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    guard: { key: orgKeys.credential('crd_x'), expectedVersion: 0 },
    mutations: [{ op: 'set', key: orgKeys.credential('crd_x'), value: record(2) }],
    events: [second],
  });
  t.equal(stale, false, 'a stale version is refused');
  t.equal(await ctx.redis.get(orgKeys.credential('crd_x')), record(1), 'nothing was written by the refused commit');
  t.equal(await events.get('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', second.id), null, 'and no event was appended');

  t.equal(
    await events.commit({
      organizationId: 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa',
      guard: { key: orgKeys.credential('crd_x'), expectedVersion: 1 },
      mutations: [{ op: 'set', key: orgKeys.credential('crd_x'), value: record(2) }],
      events: [second],
    }),
    true,
  );
  const page = await events.list('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', { limit: 10 });
  t.same(page?.data.map((e) => e.id), [first.id, second.id], 'oldest first');
  const filtered = await events.list('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', { limit: 10, type: 'credential.status_changed' });
  t.same(filtered?.data.map((e) => e.id), [second.id]);
  const afterFirst = await events.list('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', { limit: 1, after: first.id });
  t.same(afterFirst?.data.map((e) => e.id), [second.id]);
  t.equal(await events.list('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', { limit: 1, after: 'evt_unknown' }), null, 'unknown cursor');
  const pendingFanout = () => events.store.pendingFanout('org_aaaaaaaaaaaaaaaaaaaaaaaaaa', new Date(Date.now() + 1000));
  t.same(await pendingFanout(), [], 'the committing process fanned both out');

  // The store alone (as when the process dies right after the commit) leaves the event to the reconciler.
  const third = newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now);
  t.equal(await events.store.commit({ organizationId: 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa', mutations: [], events: [third] }, now), true);
  t.same(await pendingFanout(), [third.id], 'a committed event waits for fan-out');
});

t.test('a packed record is guarded by the version in front of it, and one stored as JSON still is', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';
  const key = ctx.keys.org(organizationId).credential('crd_x');
  const write = (expectedVersion: number | null, value: string | Buffer) =>
    events.store.commit({ organizationId, guard: { key, expectedVersion }, mutations: [{ op: 'set', key, value }], events: [] }, new Date());
  const record = (version: number) => ({ id: 'crd_x', username: 'ü-12', version });

  t.equal(await write(null, packGuardedRecord(record(9), 'credential')), true);
  const stored = await ctx.redis.getBuffer(key);
  t.equal(stored?.toString('latin1', 0, 2), '9 ', 'the version first');
  t.same(JSON.parse(unpackGuardedRecord(stored ?? Buffer.alloc(0))), record(9), 'then the record, packed');
  t.equal(await write(null, packGuardedRecord(record(10), 'credential')), false, 'it exists');
  t.equal(await write(8, packGuardedRecord(record(10), 'credential')), false, 'an older version is refused');
  t.equal(await write(90, packGuardedRecord(record(10), 'credential')), false, 'so is one that only starts like it');
  t.equal(await write(9, packGuardedRecord(record(10), 'credential')), true);

  // As an earlier version wrote it: plain JSON, guarded by its version field; the next write packs it.
  await ctx.redis.set(key, JSON.stringify(record(11)));
  t.same(JSON.parse(unpackGuardedRecord((await ctx.redis.getBuffer(key)) ?? Buffer.alloc(0))), record(11));
  t.equal(await write(10, packGuardedRecord(record(12), 'credential')), false);
  t.equal(await write(11, packGuardedRecord(record(12), 'credential')), true);
  t.same(JSON.parse(unpackGuardedRecord((await ctx.redis.getBuffer(key)) ?? Buffer.alloc(0))), record(12));
});

t.test('listeners hear committed events; a failing listener does not fail the commit', async (t) => {
  const app = await build(t);
  const heard: string[] = [];
  app.services.events.onCommitted(async (_org, events) => {
    heard.push(...events.map((e) => e.type));
  });
  app.services.events.onCommitted(async () => {
    throw new Error('queue down');
  });
  const ok = await app.services.events.commit({
    organizationId: 'org_bbbbbbbbbbbbbbbbbbbbbbbbbb',
    mutations: [],
    events: [newEvent('webhook.test', {}, new Date())],
  });
  t.equal(ok, true);
  t.same(heard, ['webhook.test']);
});

t.test('an event is stored as its stream id and packed envelope side by side; events stored the older ways are still read', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';
  const orgKeys = ctx.keys.org(organizationId);
  const now = new Date();
  const commitOne = async (type: string) => {
    const event = newEvent(type, { credential: { id: 'crd_x' } }, now);
    t.equal(await events.store.commit({ organizationId, mutations: [], events: [event] }, now), true);
    return event;
  };
  const first = await commitOne('credential.created');
  const [streamId] = (await ctx.redis.xrange(orgKeys.events, '-', '+'))[0] ?? [];
  const stored = await ctx.redis.getBuffer(orgKeys.event(first.id));
  const prefix = `${streamId} `;
  t.equal(stored?.toString('latin1', 0, prefix.length), prefix, 'the stream id first');
  t.equal(unpackJson(stored?.subarray(prefix.length) ?? Buffer.alloc(0)), JSON.stringify(first), 'then the exact bytes a webhook sends, packed');

  // As earlier versions wrote them: the envelope as plain JSON after the stream id, and before that JSON
  // holding the stream id and the envelope as a string.
  const plain = newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now);
  const plainStreamId = await ctx.redis.xadd(orgKeys.events, '*', 'id', plain.id, 'type', plain.type, 'crd', 'crd_x');
  await ctx.redis.set(orgKeys.event(plain.id), `${plainStreamId} ${JSON.stringify(plain)}`);
  const older = newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now);
  const olderStreamId = await ctx.redis.xadd(orgKeys.events, '*', 'id', older.id, 'type', older.type, 'crd', 'crd_x');
  await ctx.redis.set(orgKeys.event(older.id), JSON.stringify({ streamId: olderStreamId, envelope: JSON.stringify(older) }));
  const later = await commitOne('credential.connected');
  t.same(await events.get(organizationId, plain.id), plain);
  t.same(await events.get(organizationId, older.id), older);
  t.same((await events.list(organizationId, { limit: 10 }))?.data.map((event) => event.id), [first.id, plain.id, older.id, later.id]);
  t.same((await events.list(organizationId, { limit: 10, after: plain.id }))?.data.map((event) => event.id), [older.id, later.id], 'and are cursors');
  t.same((await events.list(organizationId, { limit: 10, after: older.id }))?.data.map((event) => event.id), [later.id]);
});
