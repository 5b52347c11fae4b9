import { isPlainJson, packJson, unpackJson, type PackedKind } from './packed-json.ts';
import type { Keys } from './keys.ts';
import type { RedisClient } from './redis.ts';

/**
 * The organization's event log, and the one atomic write every state change goes through.
 *
 * Layout (all under the org's hash tag, so one Lua call can touch them together):
 * - `events` — a stream of `{ id, type, crd }` entries: the order of the log and the cursor for paging.
 * - `event:<id>` — `<stream id> <packed envelope>`, expiring with the retention period (see `parseStoredEvent`).
 * - `events:pending-fanout` — a sorted set (score = commit time) of event ids not yet handed to webhooks;
 *   the fan-out removes them, the reconciler fans out stragglers again (at-least-once across crashes). A
 *   fan-out attempting deliveries itself moves their score to when those attempts will have ended.
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
   */
  guard?: { key: string; expectedVersion: number | null };
  mutations: Mutation[];
  events: StoredEvent[];
}

export const EVENT_RETENTION_SECONDS = 35 * 86400;

// KEYS: 1 stream, 2 pending-fanout, 3 guard key (or the stream again when unguarded), 4.. mutation keys.
// ARGV: 1 expected version ('' must not exist, '*' unguarded), 2 now ms, 3 retention ms, 4 event ttl s,
//       5 event key prefix, 6 event count, then per event: id, type, credential id, packed envelope;
//       then per mutation: op, key index (into KEYS), then 1 or 2 operands.
const COMMIT_SCRIPT = `
local expected = ARGV[1]
if expected ~= '*' then
  local current = redis.call('GET', KEYS[3])
  if expected == '' then
    if current then return 'CONFLICT' end
  else
    if not current then return 'CONFLICT' end
    local version
    if string.byte(current, 1) == 123 then version = cjson.decode(current)['version']
    else version = string.match(current, '^(%d+) ') end
    if tostring(version) ~= expected then return 'CONFLICT' end
  end
end
local now = tonumber(ARGV[2])
local minId = tostring(now - tonumber(ARGV[3]))
local ttl = tonumber(ARGV[4])
local eventPrefix = ARGV[5]
local eventCount = tonumber(ARGV[6])
local i = 7
for _ = 1, eventCount do
  local id, etype, crd, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local streamId = redis.call('XADD', KEYS[1], 'MINID', '~', minId, '*', 'id', id, 'type', etype, 'crd', crd)
  redis.call('SET', eventPrefix .. id, streamId .. ' ' .. body, 'EX', ttl)
  redis.call('ZADD', KEYS[2], now, id)
  i = i + 4
end
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
return 'OK'
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
export function parseStoredEvent(raw: Buffer | null): { streamId: string; envelope: string } | null {
  if (raw === null) return null;
  if (isPlainJson(raw)) return JSON.parse(raw.toString('utf8')) as { streamId: string; envelope: string };
  const space = raw.indexOf(SPACE);
  return { streamId: raw.toString('latin1', 0, space), envelope: unpackJson(raw.subarray(space + 1)) };
}

export function createEventStore(redis: RedisClient, keys: Keys) {
  redis.defineCommand('plugboardCommit', { lua: COMMIT_SCRIPT });
  type WithCommit = RedisClient & { plugboardCommit(numKeys: number, ...args: (string | number | Buffer)[]): Promise<string> };

  async function loadStored(organizationId: string, eventId: string): Promise<{ streamId: string; envelope: string } | null> {
    return parseStoredEvent(await redis.getBuffer(keys.org(organizationId).event(eventId)));
  }

  return {
    /** Writes the mutations and appends the events atomically. Returns false (and writes nothing) on a version conflict. */
    async commit(commit: Commit, now: Date): Promise<boolean> {
      const orgKeys = keys.org(commit.organizationId);
      const keyList = [orgKeys.events, orgKeys.pendingFanout, commit.guard?.key ?? orgKeys.events];
      const keyIndex = (key: string) => {
        let index = keyList.indexOf(key);
        if (index === -1) index = keyList.push(key) - 1;
        return index + 1;
      };
      const eventArgs = commit.events.flatMap((event) => [event.id, event.type, event.data.credential?.id ?? '', packJson(JSON.stringify(event), 'event')]);
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
      const result = await (redis as WithCommit).plugboardCommit(
        keyList.length,
        ...keyList,
        expected,
        now.getTime(),
        EVENT_RETENTION_SECONDS * 1000,
        EVENT_RETENTION_SECONDS,
        orgKeys.event(''),
        commit.events.length,
        ...eventArgs,
        ...mutationArgs,
      );
      return result === 'OK';
    },

    async get(organizationId: string, eventId: string): Promise<StoredEvent | null> {
      const stored = await loadStored(organizationId, eventId);
      return stored ? (JSON.parse(stored.envelope) as StoredEvent) : null;
    },

    /** Oldest first, after a cursor (an event id). Unknown cursors are the caller's 400 to give. */
    async list(organizationId: string, query: EventQuery): Promise<EventPage | null> {
      const orgKeys = keys.org(organizationId);
      let start = '-';
      if (query.after) {
        const cursor = await loadStored(organizationId, query.after);
        if (!cursor) return null;
        start = `(${cursor.streamId}`;
      }
      const data: StoredEvent[] = [];
      const batchSize = Math.max(query.limit * 2, 100);
      let exhausted = false;
      while (data.length < query.limit && !exhausted) {
        const entries = await redis.xrange(orgKeys.events, start, '+', 'COUNT', batchSize);
        exhausted = entries.length < batchSize;
        for (const [streamId, fields] of entries) {
          start = `(${streamId}`;
          const entry = fieldsToObject(fields);
          if (query.type && entry.type !== query.type) continue;
          if (query.credentialId && entry.crd !== query.credentialId) continue;
          const event = await this.get(organizationId, entry.id ?? '');
          if (event) data.push(event);
          if (data.length === query.limit) break;
        }
      }
      const last = data.at(-1);
      return { data, nextCursor: data.length === query.limit && last ? last.id : null };
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

function fieldsToObject(fields: string[]): Record<string, string> {
  const object: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) object[fields[i] as string] = fields[i + 1] as string;
  return object;
}

export type EventStore = ReturnType<typeof createEventStore>;
