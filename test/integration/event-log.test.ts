import t from 'tap';
import { newEvent } from '../../src/services/events.ts';
import { CODED_EVENT_TYPES, EVENT_RETENTION_SECONDS, MAX_ENTRIES_READ_PER_PAGE, eventIdAt, eventIdTail, eventPosition, packGuardedRecord, unpackGuardedRecord } from '../../src/storage/event-log.ts';
import { EVENT_TYPES } from '../../src/webhooks/event-types.ts';
import { packJson, unpackJson } from '../../src/storage/packed-json.ts';
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

t.test('an event is stored in its stream entry and its id says where; events stored the older ways are still read', async (t) => {
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
  t.match(first.id, /^evt_[a-z2-7]{26}$/, 'ids keep their shape (SPEC §1)');
  t.equal(first.id.slice(-12), eventIdTail(organizationId), 'and end with the organization’s tail');
  const [[streamId, fields] = ['', []]] = await ctx.redis.xrangeBuffer(orgKeys.events, '-', '+');
  t.equal(eventPosition(first.id)?.entryId, streamId.toString(), 'the id names its stream entry');
  t.same(fields.map(String).slice(0, 4), ['t', 'a', 'c', 'crd_x'], 'which holds the type’s code and the credential’s hint to filter by');
  const { id, ...withoutId } = first;
  t.equal(String(fields[4]), 'body');
  t.equal(unpackJson(fields[5] ?? Buffer.alloc(0)), JSON.stringify(withoutId), 'and the envelope, packed, without the id, which the place of the entry gives');
  t.equal(await ctx.redis.exists(orgKeys.event(first.id)), 0, 'and no key of its own');
  t.same(await events.get(organizationId, first.id), first, 'read back whole');
  t.equal(await events.get(organizationId, `${id.slice(0, -12)}aaaaaaaaaaaa`), null, 'the right place with another tail is no event');
  t.equal(await events.get('org_bbbbbbbbbbbbbbbbbbbbbbbbbb', first.id), null, 'nor is it one of another organization');

  // As earlier versions stored them: an entry with its id's random tail, the whole type and credential id;
  // before that a key holding the stream id and the packed envelope, before that the envelope as plain JSON
  // after the stream id, and before that JSON holding the stream id and the envelope.
  const withRandomTail = newEvent('credential.status_changed', { credential: { id: 'crd_y' } }, now);
  const { id: randomId, ...randomWithoutId } = withRandomTail;
  const randomTail = randomId.slice(-12);
  const randomStreamId = (await ctx.redis.xadd(orgKeys.events, '*', 'r', randomTail, 'type', randomWithoutId.type, 'crd', 'crd_y', 'body', packJson(JSON.stringify(randomWithoutId), 'event'))) ?? '';
  withRandomTail.id = eventIdAt(randomStreamId, randomTail);
  const storeOld = async (value: (streamId: string, event: ReturnType<typeof newEvent>) => string | Buffer) => {
    const event = newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now);
    const oldStreamId = (await ctx.redis.xadd(orgKeys.events, '*', 'id', event.id, 'type', event.type, 'crd', 'crd_x')) ?? '';
    await ctx.redis.set(orgKeys.event(event.id), value(oldStreamId, event));
    return event;
  };
  const packed = await storeOld((oldStreamId, event) => Buffer.concat([Buffer.from(`${oldStreamId} `), packJson(JSON.stringify(event), 'event')]));
  const plain = await storeOld((oldStreamId, event) => `${oldStreamId} ${JSON.stringify(event)}`);
  const older = await storeOld((oldStreamId, event) => JSON.stringify({ streamId: oldStreamId, envelope: JSON.stringify(event) }));
  const later = await commitOne('credential.connected');
  for (const event of [withRandomTail, packed, plain, older]) t.same(await events.get(organizationId, event.id), event);
  t.equal(await events.get(organizationId, eventIdAt(randomStreamId, eventIdTail(organizationId))), null, 'an entry with its own tail answers to no other');
  const all = [first, withRandomTail, packed, plain, older, later].map((event) => event.id);
  t.same((await events.list(organizationId, { limit: 10 }))?.data.map((event) => event.id), all, 'listed in order');
  t.same((await events.list(organizationId, { limit: 10, type: 'credential.connected' }))?.data, [later], 'filtered by a coded type');
  t.same(
    (await events.list(organizationId, { limit: 10, type: 'credential.status_changed' }))?.data.map((event) => event.id),
    [withRandomTail, packed, plain, older].map((event) => event.id),
    'and by the whole type earlier versions stored',
  );
  t.same((await events.list(organizationId, { limit: 10, credentialId: 'crd_y' }))?.data, [withRandomTail], 'and by their whole credential id');
  for (const [index, cursor] of all.entries()) {
    t.same((await events.list(organizationId, { limit: 10, after: cursor }))?.data.map((event) => event.id), all.slice(index + 1), 'and are cursors');
  }
  t.equal(await events.list(organizationId, { limit: 10, after: `${id.slice(0, -12)}aaaaaaaaaaaa` }), null, 'an id naming no event is no cursor');
});

t.test('every event type of the catalog is stored as a code; a type without one is stored whole and still filtered by', async (t) => {
  t.same(
    EVENT_TYPES.filter((type) => !CODED_EVENT_TYPES.includes(type)),
    [],
    'a new event type needs its code in EVENT_TYPE_CODES',
  );
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_dddddddddddddddddddddddddd';
  const now = new Date();
  const uncoded = newEvent('credential.reticulated', { credential: { id: 'crd_x' } }, now);
  const coded = EVENT_TYPES.map((type) => newEvent(type, { credential: { id: 'crd_x' } }, now));
  t.equal(await events.store.commit({ organizationId, mutations: [], events: [uncoded, ...coded] }, now), true);
  const entries = await ctx.redis.xrange(ctx.keys.org(organizationId).events, '-', '+');
  t.equal(entries[0]?.[1][1], 'credential.reticulated', 'stored whole');
  t.ok(entries.slice(1).every(([, fields]) => fields[1]?.length === 1), 'the others as their codes');
  t.same((await events.list(organizationId, { limit: 100, type: 'credential.reticulated' }))?.data, [uncoded]);
  for (const event of coded) {
    t.same((await events.list(organizationId, { limit: 100, type: event.type }))?.data, [event], `each code names one type: ${event.type}`);
  }
});

t.test('a credential filter tells apart credentials whose ids end alike', async (t) => {
  const app = await build(t);
  const { events } = app.services;
  const organizationId = 'org_eeeeeeeeeeeeeeeeeeeeeeeeee';
  const now = new Date();
  const ofCredential = (credentialId: string) => newEvent('credential.created', { credential: { id: credentialId } }, now);
  const mine = [ofCredential('crd_aaaaaaaaaaaaaaaaaaaasameid'), ofCredential('crd_aaaaaaaaaaaaaaaaaaaasameid')];
  const theirs = ofCredential('crd_bbbbbbbbbbbbbbbbbbbbsameid');
  const unrelated = ofCredential('crd_cccccccccccccccccccccccccc');
  t.equal(await events.store.commit({ organizationId, mutations: [], events: [mine[0]!, theirs, unrelated, mine[1]!] }, now), true);
  t.same((await events.list(organizationId, { limit: 10, credentialId: 'crd_aaaaaaaaaaaaaaaaaaaasameid' }))?.data, mine);
  t.same((await events.list(organizationId, { limit: 1, credentialId: 'crd_bbbbbbbbbbbbbbbbbbbbsameid' }))?.data, [theirs]);
  t.same((await events.list(organizationId, { limit: 10, credentialId: 'crd_dddddddddddddddddddddddddd' }))?.data, []);
});

t.test('a filtered page reads a bounded stretch of the log and says where to go on', async (t) => {
  const app = await build(t);
  const { events } = app.services;
  const organizationId = 'org_ffffffffffffffffffffffffff';
  const now = new Date();
  const ofCredential = (credentialId: string, type = 'credential.status_changed') => newEvent(type, { credential: { id: credentialId } }, now);
  const first = ofCredential('crd_rarerarerarerarerarerarera');
  const others = Array.from({ length: MAX_ENTRIES_READ_PER_PAGE + 500 }, () => ofCredential('crd_busybusybusybusybusybusyb'));
  const last = ofCredential('crd_rarerarerarerarerarerarera', 'credential.deleted');
  for (let from = 0; from < others.length; from += 1000) {
    const batch = from === 0 ? [first, ...others.slice(0, 1000)] : others.slice(from, from + 1000);
    t.equal(await events.store.commit({ organizationId, mutations: [], events: batch }, now), true);
  }
  t.equal(await events.store.commit({ organizationId, mutations: [], events: [last] }, now), true);

  const rare = { limit: 10, credentialId: 'crd_rarerarerarerarerarerarera' };
  const firstPage = await events.list(organizationId, rare);
  t.same(firstPage?.data.map((event) => event.id), [first.id], 'the match within the stretch read');
  const stoppedAt = others[MAX_ENTRIES_READ_PER_PAGE - 2]!.id;
  t.equal(firstPage?.nextCursor, stoppedAt, 'a cursor at the last entry read, though it is not a match');
  const secondPage = await events.list(organizationId, { ...rare, after: firstPage?.nextCursor ?? undefined });
  t.same(secondPage?.data.map((event) => event.id), [last.id], 'the next page goes on from there');
  t.equal(secondPage?.nextCursor, null, 'and ends at the end of the log');

  const byType = await events.list(organizationId, { limit: 10, type: 'credential.deleted' });
  t.same(byType, { data: [], nextCursor: stoppedAt }, 'a type filter is bounded alike, even when the stretch holds no match');
  const busy = await events.list(organizationId, { limit: 100, credentialId: 'crd_busybusybusybusybusybusyb', after: stoppedAt });
  t.same(busy?.data.map((event) => event.id), others.slice(MAX_ENTRIES_READ_PER_PAGE - 1, MAX_ENTRIES_READ_PER_PAGE + 99).map((event) => event.id), 'a full page names its last event');
  t.equal(busy?.nextCursor, others[MAX_ENTRIES_READ_PER_PAGE + 98]!.id);
});

t.test('organizations get different tails, so their ids differ even where their streams number entries alike', async (t) => {
  const tails = ['org_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'org_aaaaaaaaaaaaaaaaaaaaaaaaab', 'org_bbbbbbbbbbbbbbbbbbbbbbbbbb'].map(eventIdTail);
  t.equal(new Set(tails).size, 3);
  for (const tail of tails) t.match(tail, /^[a-z2-7]{12}$/);
  t.equal(eventIdTail('org_aaaaaaaaaaaaaaaaaaaaaaaaaa'), tails[0], 'and always the same one');
});

t.test('events committed together get ids in order, and a list names each as the commit did', async (t) => {
  const app = await build(t);
  const { events } = app.services;
  const organizationId = 'org_cccccccccccccccccccccccccc';
  const now = new Date();
  const batch = Array.from({ length: 40 }, () => newEvent('credential.status_changed', { credential: { id: 'crd_x' } }, now));
  t.equal(await events.store.commit({ organizationId, mutations: [], events: batch }, now), true);
  const sequences = batch.map((event) => eventPosition(event.id)?.entryId.split('-')[1]);
  t.ok(sequences.some((sequence) => Number(sequence) > 0), 'some share a millisecond, told apart by their sequence number');
  t.same((await events.list(organizationId, { limit: 100 }))?.data.map((event) => event.id), batch.map((event) => event.id));
});

t.test('an entry older than the retention period is no longer an event, though its stream node was not trimmed yet', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_bbbbbbbbbbbbbbbbbbbbbbbbbb';
  const orgKeys = ctx.keys.org(organizationId);
  const oldMs = Date.now() - (EVENT_RETENTION_SECONDS + 60) * 1000;
  const body = packJson(JSON.stringify({ type: 'credential.created', timestamp: new Date(oldMs).toISOString(), data: {} }), 'event');
  await ctx.redis.xadd(orgKeys.events, `${oldMs}-0`, 't', 'a', 'c', '', 'body', body);
  const recent = newEvent('credential.created', { credential: { id: 'crd_x' } }, new Date());
  await events.store.commit({ organizationId, mutations: [], events: [recent] }, new Date());
  t.equal(await ctx.redis.xlen(orgKeys.events), 2, 'both entries are in the stream');
  t.equal(await events.get(organizationId, eventIdAt(`${oldMs}-0`, eventIdTail(organizationId))), null, 'the old one is not found');
  t.same((await events.list(organizationId, { limit: 10 }))?.data.map((event) => event.id), [recent.id], 'nor listed');
});

t.test('a stream that gets no event for the retention period expires whole (MINID trims only on a write)', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_cccccccccccccccccccccccccc';
  const streamKey = ctx.keys.org(organizationId).events;
  t.equal(await events.store.commit({ organizationId, mutations: [], events: [] }, new Date()), true);
  t.equal(await ctx.redis.exists(streamKey), 0, 'a commit without events creates no stream');
  await events.store.commit({ organizationId, mutations: [], events: [newEvent('credential.created', { credential: { id: 'crd_x' } }, new Date())] }, new Date());
  const ttlMs = await ctx.redis.pttl(streamKey);
  t.ok(ttlMs > (EVENT_RETENTION_SECONDS - 60) * 1000 && ttlMs <= EVENT_RETENTION_SECONDS * 1000, `expires a retention period after its last event (${ttlMs} ms)`);
});

t.test('a commit trims the entries past the retention period from a stream that keeps getting events', async (t) => {
  const app = await build(t);
  const { events, ctx } = app.services;
  const organizationId = 'org_dddddddddddddddddddddddddd';
  const streamKey = ctx.keys.org(organizationId).events;
  const oldMs = Date.now() - (EVENT_RETENTION_SECONDS + 3600) * 1000;
  const body = packJson(JSON.stringify({ type: 'credential.created', timestamp: new Date(oldMs).toISOString(), data: {} }), 'event');
  const pipeline = ctx.redis.pipeline();
  // Several whole stream nodes of old entries: MINID with `~` trims whole nodes only.
  for (let i = 0; i < 1000; i += 1) pipeline.xadd(streamKey, `${oldMs + i}-0`, 't', 'a', 'c', '', 'body', body);
  await pipeline.exec();
  await events.store.commit({ organizationId, mutations: [], events: [newEvent('credential.created', { credential: { id: 'crd_x' } }, new Date())] }, new Date());
  const length = await ctx.redis.xlen(streamKey);
  t.ok(length < 1000, `old entries were trimmed (${length} of 1001 left)`);
  const [[firstId] = []] = await ctx.redis.xrange(streamKey, '-', '+', 'COUNT', 1);
  t.not(firstId, `${oldMs}-0`, 'the oldest entry is gone');
});
