import { createHash } from 'node:crypto';
import { isPlainJson, packJson, unpackJson, type PackedKind } from './packed-json.ts';
import type { Keys } from './keys.ts';
import { BoundedCache } from '../bounded-cache.ts';
import { BASE32, base32OfBytes } from '../ids.ts';
import { readStored, type RedisClient, type StoredRead, type StoredValue } from './redis.ts';

/**
 * The organization's event log, and the one atomic write every state change goes through.
 *
 * Layout (all under the org's hash tag, so one Lua call can touch them together):
 * - `events` — a stream with one entry per event: `t` (its type's one-character code, see `EVENT_TYPE_CODES`),
 *   `c` (the last characters of its credential's id) and `body`, the packed envelope without its id. `t` and
 *   `c` let a filtered list skip entries without unpacking them (a `c` match is confirmed on the unpacked
 *   event). The stream is the order of the log, the cursor for paging, and the store: trimmed to the
 *   retention period as it grows.
 * - `events:pending-fanout` — a sorted set (score = commit time) of event ids not yet handed to webhooks;
 *   the fan-out removes them, the reconciler fans out stragglers again (at-least-once across crashes). A
 *   fan-out attempting deliveries itself moves their score to when those attempts will have ended.
 *
 * An event's id says where its entry is: `evt_`, the entry's milliseconds (10 base32 characters) and
 * sequence number (4), then 12 characters derived from the organization's id (`eventIdTail`), which make
 * ids unique across organizations, whose streams number their entries alike. So an event is found by its
 * id without an index, and its entry holds nothing but what filtering and sending need: every byte of it
 * is kept 35 days (≈ 250 bytes of Redis memory an entry, of which the packed body ≈ 190; the whole type,
 * credential id and a random tail cost ≈ 70 more, measured). The ids stay 26 lowercase base32 characters
 * (SPEC §1); they
 * also tell when the event was committed, which its `timestamp` says anyway.
 *
 * Stored by earlier versions and read until their 35 days are over: entries `r` (a random id tail), `type`,
 * `crd` (the whole credential id), `body`; and before those, a key `event:<id>` holding
 * `<stream id> <packed envelope>` or older forms of it (see `parseStoredEvent`), with an entry
 * `{ id, type, crd }`.
 */

export interface StoredEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown> & { credential?: { id: string } };
}

export type Mutation =
  | { op: 'set'; key: string; value: string | Buffer }
  | { op: 'del'; key: string }
  | { op: 'zadd'; key: string; score: number; member: string }
  | { op: 'zrem'; key: string; member: string }
  | { op: 'sadd'; key: string; member: string }
  | { op: 'srem'; key: string; member: string };

export interface Commit {
  organizationId: string;
  /**
   * Optimistic concurrency on one record with a version: JSON with a numeric `version` field, or a packed
   * record (`packGuardedRecord`). `expectedVersion` null means "must not exist yet". The commit is refused
   * (nothing written) when the stored version differs.
   * `expectedIncarnation` (JSON records only) also refuses it when the record's `incarnation` differs (null:
   * the record has none): a record deleted and created again under the same id can be back at the same version.
   */
  guard?: { key: string; expectedVersion: number | null; expectedIncarnation?: string | null };
  mutations: Mutation[];
  /**
   * Each event's `id` is provisional until the commit: the log gives it its final id (see the layout above)
   * and writes it into the event object. Read ids after committing.
   */
  events: StoredEvent[];
}

export const EVENT_RETENTION_SECONDS = 35 * 86400;

// An event id's 26 characters: the stream entry's milliseconds (50 bits: until the year 37,000), its sequence
// number within that millisecond (20 bits: Redis appends a few hundred thousand entries a second at most,
// far from a million in one millisecond), and the organization's tail.
const MS_CHARS = 10;
const SEQ_CHARS = 4;
const TAIL_CHARS = 26 - MS_CHARS - SEQ_CHARS;
const EVENT_ID_SHAPE = new RegExp(`^evt_([a-z2-7]{${MS_CHARS}})([a-z2-7]{${SEQ_CHARS}})([a-z2-7]{${TAIL_CHARS}})$`);

/**
 * The code each event type is stored under in its entry's `t`. Frozen: a stored code keeps its meaning for
 * as long as entries holding it are kept, so a new type gets a new code. A type without a code is stored
 * whole (codes are one character, types longer), so forgetting one costs memory, not events.
 */
const EVENT_TYPE_CODES: ReadonlyMap<string, string> = new Map([
  ['credential.created', 'a'],
  ['credential.status_changed', 'b'],
  ['credential.connected', 'c'],
  ['credential.mfa.method_required', 'd'],
  ['credential.mfa.code_required', 'e'],
  ['credential.mfa.code_rejected', 'f'],
  ['credential.mfa.timed_out', 'g'],
  ['credential.mfa.session_expiring', 'h'],
  ['credential.mfa.refresh_required', 'i'],
  ['credential.disabled', 'j'],
  ['credential.deleted', 'k'],
  ['webhook.test', 'l'],
  ['user.two_factor.enabled', 'm'],
  ['user.two_factor.disabled', 'n'],
  ['user.two_factor.recovery_code_used', 'o'],
  ['user.two_factor.locked', 'p'],
  ['webhook.endpoint_disabled', 'q'],
]);
const EVENT_TYPES_BY_CODE = new Map([...EVENT_TYPE_CODES].map(([type, code]) => [code, type]));

/** The event types stored under a one-character code (for tests: every type in the catalog should be). */
export const CODED_EVENT_TYPES: readonly string[] = [...EVENT_TYPE_CODES.keys()];

// 30 bits: two credentials of an organization share a hint about once in a billion pairs, and then a
// filtered list unpacks the other's events to tell them apart.
const CREDENTIAL_HINT_CHARS = 6;

const credentialHint = (credentialId: string) => credentialId.slice(-CREDENTIAL_HINT_CHARS);

function base32Digits(number: number, width: number): string {
  let digits = '';
  for (let rest = number, place = 0; place < width; place += 1, rest = Math.floor(rest / 32)) digits = BASE32[rest % 32] + digits;
  return digits;
}

function base32Number(digits: string): number {
  let number = 0;
  for (const digit of digits) number = number * 32 + BASE32.indexOf(digit);
  return number;
}

// Every commit and every delivery needs its organization's tail: hashed once per organization (the hash
// was ≈ 1 % of the workers' busy time in benchmark 4's profile).
const tailsByOrganization = new BoundedCache<string, string>(10_000);

/**
 * The last 12 characters of the organization's event ids: 60 bits of a hash of its id. Event ids stored
 * before had a random tail of the same length here; their entries hold it (`r`) or they have none.
 */
export function eventIdTail(organizationId: string): string {
  const cached = tailsByOrganization.get(organizationId);
  if (cached) return cached;
  const digest = createHash('sha256').update(organizationId).digest();
  return tailsByOrganization.set(organizationId, base32OfBytes(digest.subarray(0, TAIL_CHARS)));
}

/**
 * Where an event id says its entry is: the stream entry id and the tail the id must end with. Every
 * 26-character id decodes, including the random ids of events stored before (no entry there matches their
 * tail, so they are looked up the old way); a UUID-form id names no position.
 */
export function eventPosition(eventId: string): { entryId: string; tail: string } | null {
  const match = EVENT_ID_SHAPE.exec(eventId);
  if (!match) return null;
  const [, ms = '', seq = '', tail = ''] = match;
  return { entryId: `${base32Number(ms)}-${base32Number(seq)}`, tail };
}

/** The id of the event at a stream entry, ending with `tail` (what the commit script gives it). */
export function eventIdAt(streamId: string, tail: string): string {
  const [ms = '0', seq = '0'] = streamId.split('-');
  return `evt_${base32Digits(Number(ms), MS_CHARS)}${base32Digits(Number(seq), SEQ_CHARS)}${tail}`;
}

/** What reads an event in one round trip: its stream entry, and its key as earlier versions stored it. */
export function eventReads(keys: Keys, organizationId: string, eventId: string): StoredRead[] {
  const orgKeys = keys.org(organizationId);
  const position = eventPosition(eventId);
  // 0-0 is never an entry's id: an id that names no position is looked up under its key alone.
  return [{ stream: orgKeys.events, entryId: position?.entryId ?? '0-0' }, orgKeys.event(eventId)];
}

/**
 * The event from what `eventReads` read (in that order): the stream entry if the id's tail is the entry's
 * and the entry is within the retention period (the stream is trimmed by whole nodes, so a few entries
 * outlive it a while), else the key of an event stored by an earlier version.
 */
export function storedEventFrom(
  organizationId: string,
  eventId: string,
  [entry, legacy]: StoredValue[],
  nowMs: number,
): { streamId: string; envelope: string } | null {
  const position = eventPosition(eventId);
  if (position && Array.isArray(entry)) {
    const fields = fieldsOf(entry);
    const isWithinRetention = Number.parseInt(position.entryId, 10) >= nowMs - EVENT_RETENTION_SECONDS * 1000;
    if (fields.body && entryTail(organizationId, fields) === position.tail && isWithinRetention) {
      return { streamId: position.entryId, envelope: envelopeOf(eventId, fields.body) };
    }
  }
  return parseStoredEvent(legacy instanceof Buffer ? legacy : null);
}

/** The id of the event an entry holds: named by its position, or (stored by an earlier version) written in it; null for neither. */
function entryEventId(organizationId: string, streamId: string, fields: Record<string, Buffer>): string | null {
  if (fields.body) return eventIdAt(streamId, entryTail(organizationId, fields));
  return fields.id?.toString('latin1') ?? null;
}

/** The tail of the id of the event an entry holds: its own (stored by the version before) or the org's. */
function entryTail(organizationId: string, fields: Record<string, Buffer>): string {
  return fields.r?.toString('latin1') ?? eventIdTail(organizationId);
}

/** The event type of an entry: coded, stored whole (no code), or in the field earlier versions wrote. */
function entryType(fields: Record<string, Buffer>): string | undefined {
  const stored = (fields.t ?? fields.type)?.toString();
  return stored === undefined ? undefined : (EVENT_TYPES_BY_CODE.get(stored) ?? stored);
}

/** Whether an entry may hold an event of the credential: sure for earlier versions' entries, a hint for others. */
function mayBeOfCredential(fields: Record<string, Buffer>, credentialId: string): boolean {
  if (fields.crd) return fields.crd.toString() === credentialId;
  return fields.c?.toString() === credentialHint(credentialId);
}

/** The envelope a webhook sends: the stored one with its id put back in front. */
function envelopeOf(eventId: string, body: Buffer): string {
  return `{"id":${JSON.stringify(eventId)},${unpackJson(body).slice(1)}`;
}

function fieldsOf(entry: Buffer[]): Record<string, Buffer> {
  const fields: Record<string, Buffer> = {};
  for (let i = 0; i + 1 < entry.length; i += 2) fields[(entry[i] as Buffer).toString('latin1')] = entry[i + 1] as Buffer;
  return fields;
}

// KEYS: 1 stream, 2 pending-fanout, 3 guard key (or the stream again when unguarded), 4.. mutation keys.
// ARGV: 1 expected version ('' must not exist, '*' unguarded), 2 now ms, 3 retention ms, 4 the org's event id
//       tail, 5 event count, 6 expected incarnation ('*' not checked, '' none), then per event: type code,
//       credential hint, packed envelope without the id; then per mutation: op, key index (into KEYS), then 1
//       or 2 operands. Returns { 'OK', event ids… } or { 'CONFLICT' }.
const COMMIT_SCRIPT = `
local expected = ARGV[1]
if expected ~= '*' then
  local current = redis.call('GET', KEYS[3])
  if expected == '' then
    if current then return { 'CONFLICT' } end
  else
    if not current then return { 'CONFLICT' } end
    local version, incarnation
    if string.byte(current, 1) == 123 then
      local record = cjson.decode(current)
      version, incarnation = record['version'], record['incarnation']
    else version = string.match(current, '^(%d+) ') end
    if tostring(version) ~= expected then return { 'CONFLICT' } end
    if ARGV[6] ~= '*' and (incarnation or '') ~= ARGV[6] then return { 'CONFLICT' } end
  end
end
local alphabet = '${BASE32}'
local function base32(number, width)
  local digits = {}
  for place = width, 1, -1 do
    local digit = number % 32
    digits[place] = string.sub(alphabet, digit + 1, digit + 1)
    number = (number - digit) / 32
  end
  return table.concat(digits)
end
local now = tonumber(ARGV[2])
local minId = tostring(now - tonumber(ARGV[3]))
local tail = ARGV[4]
local eventCount = tonumber(ARGV[5])
local reply = { 'OK' }
local i = 7
for _ = 1, eventCount do
  local streamId = redis.call('XADD', KEYS[1], 'MINID', '~', minId, '*', 't', ARGV[i], 'c', ARGV[i + 1], 'body', ARGV[i + 2])
  local ms, seq = string.match(streamId, '^(%d+)-(%d+)$')
  local id = 'evt_' .. base32(tonumber(ms), ${MS_CHARS}) .. base32(tonumber(seq), ${SEQ_CHARS}) .. tail
  redis.call('ZADD', KEYS[2], now, id)
  reply[#reply + 1] = id
  i = i + 3
end
-- XADD's MINID trims only on a write: a stream that gets no event for the retention period expires whole.
if eventCount > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'set' then redis.call('SET', key, ARGV[i + 2]); i = i + 3
  elseif op == 'del' then redis.call('DEL', key); i = i + 2
  elseif op == 'zadd' then redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif op == 'zrem' then redis.call('ZREM', key, ARGV[i + 2]); i = i + 3
  elseif op == 'sadd' then redis.call('SADD', key, ARGV[i + 2]); i = i + 3
  elseif op == 'srem' then redis.call('SREM', key, ARGV[i + 2]); i = i + 3
  else return redis.error_reply('unknown op ' .. op) end
end
return reply
`;

export interface EventPage {
  data: StoredEvent[];
  nextCursor: string | null;
}

export interface EventQuery {
  after?: string;
  limit: number;
  type?: string;
  credentialId?: string;
}

const SPACE = 0x20;

/**
 * The most entries of the log one page reads. A filter matching few events of a long log (one credential's
 * among an organization's millions) would otherwise read the whole log in one request, however small
 * `limit` is; the cap bounds a request's work (tens of milliseconds), and the cursor it
 * returns lets the reader go on.
 */
export const MAX_ENTRIES_READ_PER_PAGE = 10_000;
// Filtered pages read this many entries a round trip: most are skipped without unpacking them.
const FILTERED_BATCH_SIZE = 1_000;

/**
 * A guarded record as stored: `<version> <packed JSON>`. The commit's guard reads the version in front
 * instead of decoding the record. Records stored as plain JSON (before packing, or small ones never
 * packed) are guarded and read as well.
 */
export function packGuardedRecord(record: { version: number }, kind: PackedKind): Buffer {
  return Buffer.concat([Buffer.from(`${record.version} `, 'latin1'), packJson(JSON.stringify(record), kind)]);
}

/** The record's JSON text. */
export function unpackGuardedRecord(raw: Buffer): string {
  return isPlainJson(raw) ? raw.toString('utf8') : unpackJson(raw.subarray(raw.indexOf(SPACE) + 1));
}

/**
 * An event's key holds its stream id and its packed envelope (see `packed-json.ts`), side by side: the
 * envelope is serialized once, at commit, and a delivery sends exactly those bytes. Events stored by
 * earlier versions are read until their retention ends: the envelope as plain JSON after the stream id
 * (`unpackJson` reads it as it is), and before that a JSON object holding both, which starts with `{`
 * where a stream id starts with a digit.
 */
function parseStoredEvent(raw: Buffer | null): { streamId: string; envelope: string } | null {
  if (raw === null) return null;
  if (isPlainJson(raw)) return JSON.parse(raw.toString('utf8')) as { streamId: string; envelope: string };
  const space = raw.indexOf(SPACE);
  return { streamId: raw.toString('latin1', 0, space), envelope: unpackJson(raw.subarray(space + 1)) };
}

export function createEventStore(redis: RedisClient, keys: Keys, now: () => Date) {
  redis.defineCommand('plugboardCommit', { lua: COMMIT_SCRIPT });
  type WithCommit = RedisClient & { plugboardCommit(numKeys: number, ...args: (string | number | Buffer)[]): Promise<string[]> };

  async function loadStored(organizationId: string, eventId: string): Promise<{ streamId: string; envelope: string } | null> {
    return storedEventFrom(organizationId, eventId, await readStored(redis, eventReads(keys, organizationId, eventId)), now().getTime());
  }

  async function get(organizationId: string, eventId: string): Promise<StoredEvent | null> {
    const stored = await loadStored(organizationId, eventId);
    return stored ? (JSON.parse(stored.envelope) as StoredEvent) : null;
  }

  /** The event of a stream entry: in it, or (stored by an earlier version) under its own key. */
  async function eventOfEntry(organizationId: string, eventId: string, fields: Record<string, Buffer>): Promise<StoredEvent | null> {
    return fields.body ? (JSON.parse(envelopeOf(eventId, fields.body)) as StoredEvent) : get(organizationId, eventId);
  }

  return {
    /**
     * Writes the mutations and appends the events atomically, giving each event its final id (see `Commit`).
     * Returns false (and writes nothing) on a version conflict.
     */
    async commit(commit: Commit, at: Date): Promise<boolean> {
      const orgKeys = keys.org(commit.organizationId);
      const keyList = [orgKeys.events, orgKeys.pendingFanout, commit.guard?.key ?? orgKeys.events];
      const keyIndex = (key: string) => {
        let index = keyList.indexOf(key);
        if (index === -1) index = keyList.push(key) - 1;
        return index + 1;
      };
      const eventArgs = commit.events.flatMap(({ id: _provisional, ...withoutId }) => [
        EVENT_TYPE_CODES.get(withoutId.type) ?? withoutId.type,
        credentialHint(withoutId.data.credential?.id ?? ''),
        packJson(JSON.stringify(withoutId), 'event'),
      ]);
      const mutationArgs = commit.mutations.flatMap((m): (string | number | Buffer)[] => {
        switch (m.op) {
          case 'set':
            return ['set', keyIndex(m.key), m.value];
          case 'del':
            return ['del', keyIndex(m.key)];
          case 'zadd':
            return ['zadd', keyIndex(m.key), m.score, m.member];
          case 'zrem':
          case 'sadd':
          case 'srem':
            return [m.op, keyIndex(m.key), m.member];
        }
      });
      const expected = commit.guard ? (commit.guard.expectedVersion === null ? '' : String(commit.guard.expectedVersion)) : '*';
      const expectedIncarnation = commit.guard?.expectedIncarnation;
      const [result, ...eventIds] = await (redis as WithCommit).plugboardCommit(
        keyList.length,
        ...keyList,
        expected,
        at.getTime(),
        EVENT_RETENTION_SECONDS * 1000,
        eventIdTail(commit.organizationId),
        commit.events.length,
        expectedIncarnation === undefined ? '*' : (expectedIncarnation ?? ''),
        ...eventArgs,
        ...mutationArgs,
      );
      if (result !== 'OK') return false;
      commit.events.forEach((event, index) => (event.id = eventIds[index] ?? event.id));
      return true;
    },

    get,

    /**
     * Oldest first, after a cursor (an event id). Unknown cursors are the caller's 400 to give. A filtered
     * page reads at most `MAX_ENTRIES_READ_PER_PAGE` entries: when they hold fewer than `limit` matches, the
     * page has those and a cursor at the last entry read, so the next page goes on from there.
     */
    async list(organizationId: string, query: EventQuery): Promise<EventPage | null> {
      const orgKeys = keys.org(organizationId);
      // Entries older than the retention period may linger until their stream node is trimmed whole.
      let start = String(now().getTime() - EVENT_RETENTION_SECONDS * 1000);
      if (query.after) {
        const cursor = await loadStored(organizationId, query.after);
        if (!cursor) return null;
        start = `(${cursor.streamId}`;
      }
      const isFiltered = query.type !== undefined || query.credentialId !== undefined;
      const batchSize = isFiltered ? FILTERED_BATCH_SIZE : Math.max(query.limit * 2, 100);
      const data: StoredEvent[] = [];
      let entriesRead = 0;
      let lastEntryRead: string | null = null;
      let exhausted = false;
      while (data.length < query.limit && !exhausted && entriesRead < MAX_ENTRIES_READ_PER_PAGE) {
        const count = Math.min(batchSize, MAX_ENTRIES_READ_PER_PAGE - entriesRead);
        const entries = await redis.xrangeBuffer(orgKeys.events, start, '+', 'COUNT', count);
        exhausted = entries.length < count;
        for (const [streamIdBytes, entry] of entries) {
          const streamId = streamIdBytes.toString('latin1');
          start = `(${streamId}`;
          entriesRead += 1;
          const fields = fieldsOf(entry);
          const eventId = entryEventId(organizationId, streamId, fields);
          if (eventId === null) continue;
          lastEntryRead = eventId;
          if (query.type && entryType(fields) !== query.type) continue;
          if (query.credentialId && !mayBeOfCredential(fields, query.credentialId)) continue;
          const event = await eventOfEntry(organizationId, eventId, fields);
          if (event && (!query.credentialId || event.data.credential?.id === query.credentialId)) data.push(event);
          if (data.length === query.limit) break;
        }
      }
      const last = data.at(-1);
      if (data.length === query.limit && last) return { data, nextCursor: last.id };
      return { data, nextCursor: exhausted ? null : lastEntryRead };
    },

    async markFannedOut(organizationId: string, eventIds: string[]): Promise<void> {
      if (eventIds.length > 0) await redis.zrem(keys.org(organizationId).pendingFanout, ...eventIds);
    },

    /** Keeps pending events from the reconciler until `untilMs` (their deliveries are being attempted). */
    async holdFanout(organizationId: string, eventIds: string[], untilMs: number): Promise<void> {
      if (eventIds.length > 0) await redis.zadd(keys.org(organizationId).pendingFanout, 'XX', ...eventIds.flatMap((eventId) => [untilMs, eventId]));
    },

    /** Events committed (or held) until before `olderThan` that no fan-out has claimed yet. */
    async pendingFanout(organizationId: string, olderThan: Date, limit = 500): Promise<string[]> {
      return redis.zrangebyscore(keys.org(organizationId).pendingFanout, '-inf', olderThan.getTime(), 'LIMIT', 0, limit);
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
