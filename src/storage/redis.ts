import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';

/**
 * One Redis server or a Redis Cluster, behind one type: every caller runs the same code on both. That works
 * because every multi-key command, MULTI and Lua script only touches keys of one hash tag (see keys.ts).
 * The one thing that differs is walking the key space: use `scanAll`, never `SCAN` on the client.
 */
export type RedisClient = Redis | Cluster;

export type RedisTopology = Pick<Config, 'redisUrl' | 'redisClusterNodes'>;

/** A value a Lua call reads on the way: a string key's, or the fields of one stream entry. */
export type StoredRead = string | { stream: string; entryId: string };

/** What a `StoredRead` read, as bytes: the value, the entry's fields and values in turn, or null when missing. */
export type StoredValue = Buffer | Buffer[] | null;

/** The keys and arguments a Lua call gets for `reads`: the keys in order, and one entry id per key ('' for a string). */
export function readArgs(reads: StoredRead[]): { keys: string[]; entryIds: string[] } {
  return {
    keys: reads.map((read) => (typeof read === 'string' ? read : read.stream)),
    entryIds: reads.map((read) => (typeof read === 'string' ? '' : read.entryId)),
  };
}

/** The same reads from outside a script, pipelined: one round trip. */
export async function readStored(redis: RedisClient, reads: StoredRead[]): Promise<StoredValue[]> {
  return Promise.all(
    reads.map(async (read) => {
      if (typeof read === 'string') return redis.getBuffer(read);
      const [entry] = await redis.xrangeBuffer(read.stream, read.entryId, read.entryId);
      return entry ? entry[1] : null;
    }),
  );
}

/**
 * Lua reading what \`readArgs\` passed: \`readStored(key, entryId)\` returns a string key's value, or the fields
 * of the stream entry with that id, or false when there is none.
 */
export const READ_STORED_LUA = `local function readStored(key, entryId)
  if entryId == '' then return redis.call('GET', key) end
  local entries = redis.call('XRANGE', key, entryId, entryId)
  if #entries == 0 then return false end
  return entries[1][2]
end`;

export interface RedisClientOptions {
  /** For CLIs: fail a command after one attempt and never reconnect, instead of waiting for Redis forever. */
  failFast?: boolean;
}

/**
 * A connection for commands, to the single Redis or to the cluster the config names. BullMQ gets its own
 * (`duplicateForQueues`) and duplicates that for the blocking connections its workers need.
 * `maxRetriesPerRequest: null` keeps commands queued while Redis restarts or a cluster fails over instead of
 * failing them (BullMQ requires it of worker connections).
 */
export function createRedisClient(topology: RedisTopology, name: string, { failFast = false }: RedisClientOptions = {}): RedisClient {
  const options = { connectionName: name, maxRetriesPerRequest: failFast ? 1 : null };
  const noReconnect = () => null;
  if (topology.redisClusterNodes.length === 0) {
    return new Redis(topology.redisUrl, { ...options, enableAutoPipelining: true, ...(failFast ? { retryStrategy: noReconnect } : {}) });
  }
  // No auto-pipelining on a cluster: ioredis routes an auto-pipelined script by its first argument, which
  // for a script with a variable number of keys (the event log's commit) is the key count, not a key, and
  // the batch then fails with "All keys in the pipeline should belong to the same slots allocation group".
  return new Cluster(topology.redisClusterNodes, {
    redisOptions: options,
    ...(failFast ? { clusterRetryStrategy: noReconnect } : {}),
  });
}

/**
 * BullMQ's connection: the same Redis as `redis`, connecting on first use, without auto-pipelining. BullMQ
 * defines its ~50 Lua scripts on the client it is given, and ioredis copies every script defined on a client
 * into each auto-pipeline batch it builds; on the shared client that copying cost the workers ~7 % of their
 * CPU, for batching BullMQ does not need (it pipelines its own multi-command steps).
 */
export function duplicateForQueues(redis: RedisClient, name: string): RedisClient {
  if (isCluster(redis)) return redis.duplicate([], { lazyConnect: true, redisOptions: { ...redis.options.redisOptions, connectionName: name } });
  return redis.duplicate({ lazyConnect: true, enableAutoPipelining: false, connectionName: name });
}

export interface ConnectionWatch {
  /** False from a lost connection (or a failed first connect) until the client is ready again, and while Redis stalls. */
  isUp(): boolean;
  /** Stops the stall probe; the client itself stays open (its owner closes it). */
  stop(): void;
}

/**
 * Resolves once any of the connections has been down for `awayMs` without a break: what a caller waits for
 * before giving up on Redis, where a failover or a fork pause of a second or two must not count.
 */
export function whenAwayFor(watches: ConnectionWatch[], awayMs: number, checkEveryMs = 100): { reached: Promise<void>; cancel(): void } {
  let awaySince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reached = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      if (watches.every((watch) => watch.isUp())) awaySince = undefined;
      else awaySince ??= Date.now();
      if (awaySince !== undefined && Date.now() - awaySince >= awayMs) {
        clearInterval(timer);
        resolve();
      }
    }, checkEveryMs);
  });
  return { reached, cancel: () => clearInterval(timer) };
}

/** How often an open connection is probed, and how long a probe may go unanswered before Redis counts as stalled. */
export const STALL_PROBE = { intervalMs: 500, stalledAfterMs: 1000 };

/**
 * A probe that waits wherever our commands would: a script, because `CLIENT PAUSE WRITE` (a failover, an
 * operator) holds scripts and writes but answers PING, and nearly every request writes (its rate-limit count).
 * It writes nothing, so a Redis that is out of memory still answers it (that case is a quick error, not a stall).
 */
const PROBE_SCRIPT = 'return 1';

/**
 * Follows a client's connection by its events. While it is down, ioredis holds commands until Redis is back
 * (`maxRetriesPerRequest: null`); a caller that would rather answer at once asks `isUp` first. Logs each
 * outage once, when it starts and when it ends: ioredis raises an error event at every reconnect attempt,
 * and prints each to stderr itself when nobody listens.
 *
 * A Redis can also stop answering without closing the connection (a stopped process, a network that drops
 * packets, `CLIENT PAUSE`): commands then wait without any event. So while the connection is open it is
 * probed, and a probe unanswered for `STALL_PROBE.stalledAfterMs` makes `isUp` false until it is answered.
 * Commands already sent keep waiting (no command timeout: a write timed out here could still land later,
 * and BullMQ's blocking commands must not time out); only the callers that ask `isUp` answer at once.
 */
export function watchConnection(client: RedisClient, logger: Logger, connection: string): ConnectionWatch {
  let isConnected = true;
  let isOutageLogged = false;
  let lastError: string | undefined;
  let probeSentAt: number | undefined;
  /** Which probe is current: one sent before a reconnect is resent by ioredis and must not end a later one. */
  let probeNumber = 0;
  let isStallLogged = false;
  /** Whether the current probe is overdue; logs the stall when first seen (by a caller or by the next probe's tick). */
  const isStalled = () => {
    const waitedMs = probeSentAt === undefined ? 0 : Date.now() - probeSentAt;
    if (waitedMs <= STALL_PROBE.stalledAfterMs) return false;
    if (!isStallLogged) logger.warn({ connection, waitedMs }, 'Redis does not answer though connected; requests get a 503 until it does');
    isStallLogged = true;
    return true;
  };
  // Named, so that `stop` can take them off a client that outlives this watch (one shared by several containers).
  const listeners = {
    error: (error: Error) => {
      lastError = error.message;
    },
    close: () => {
      isConnected = false;
      probeSentAt = undefined;
      probeNumber++;
    },
    // Only a connection ioredis will reopen is an outage; one closed on purpose (shutdown) is not.
    reconnecting: () => {
      if (!isOutageLogged) logger.warn({ connection, reason: lastError }, 'Redis connection lost; commands wait until it is back');
      isOutageLogged = true;
    },
    ready: () => {
      if (isOutageLogged) logger.info({ connection }, 'Redis connection is back');
      isConnected = true;
      isOutageLogged = false;
      lastError = undefined;
    },
  };
  for (const [name, listener] of Object.entries(listeners)) client.on(name, listener);

  const probe = async () => {
    // A connection that is not open has its own signal; a probe would only wait in the offline queue.
    if (probeSentAt !== undefined || client.status !== 'ready') return;
    probeSentAt = Date.now();
    const sent = ++probeNumber;
    try {
      const targets = isCluster(client) ? client.nodes('master') : [client];
      await Promise.all(targets.map((target) => target.eval(PROBE_SCRIPT, 0)));
    } catch {
      // An error is an answer: Redis is not stalled (a lost connection shows in `isConnected`).
    }
    if (sent !== probeNumber) return;
    if (isStallLogged) logger.info({ connection }, 'Redis answers again');
    probeSentAt = undefined;
    isStallLogged = false;
  };
  const probeTimer = setInterval(() => {
    isStalled();
    void probe();
  }, STALL_PROBE.intervalMs).unref();
  const stop = () => {
    clearInterval(probeTimer);
    for (const [name, listener] of Object.entries(listeners)) client.off(name, listener);
    client.off('end', stop);
  };
  client.once('end', stop);

  return { isUp: () => isConnected && !isStalled(), stop };
}

/**
 * A reply, or an error once `ms` have passed without one: for readers that must answer anyway (readiness,
 * metrics). The command itself is not cancelled; only this caller stops waiting for it.
 */
export async function withinDeadline<T>(reply: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([reply, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Errors that say Redis cannot take commands for now (out of memory under noeviction, loading its data after
 * a restart, a failover, a connection given up on), as opposed to a command that is wrong: the caller may
 * simply try again later.
 */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error.message === 'Connection is closed.') return true;
  return error.name === 'ReplyError' && /^(OOM|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY) /.test(error.message);
}

/** Runs a MULTI and returns each command's reply; throws the first command's error, or when it was discarded. */
export async function execTransaction(transaction: ChainableCommander, what: string): Promise<unknown[]> {
  const results = await transaction.exec();
  if (!results) throw new Error(`${what}: the transaction was discarded`);
  const failed = results.find(([error]) => error);
  if (failed) throw failed[0];
  return results.map(([, reply]) => reply);
}

/** Closes a client, including one that never connected (quitting that one would connect it first). */
export async function closeRedisClient(redis: RedisClient): Promise<void> {
  // QUIT waits behind commands queued while offline, for as long as Redis stays away.
  if (redis.status === 'ready') await redis.quit();
  else redis.disconnect();
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** The servers that hold keys: every master of a cluster, or the single server. */
export async function dataNodes(redis: RedisClient): Promise<Redis[]> {
  if (!isCluster(redis)) return [redis];
  // The node list fills in once the slot map has loaded; a command waits for that in the offline queue.
  await redis.ping();
  return redis.nodes('master');
}

/**
 * Every key matching `pattern`, in batches, from every master. The batches may mix hash slots: act on
 * each key with its own command (a multi-key DEL of a batch would fail with CROSSSLOT on a cluster).
 */
export async function* scanAll(redis: RedisClient, pattern: string, batchSize = 500): AsyncGenerator<string[]> {
  for (const node of await dataNodes(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', batchSize);
      cursor = next;
      if (batch.length > 0) yield batch;
    } while (cursor !== '0');
  }
}

export class UnsafeRedisError extends Error {
  override name = 'UnsafeRedisError';
}

/** SPEC §6: Redis must never evict our data; persistence off is allowed but warned about. Checks every master. */
export async function checkRedisSettings(redis: RedisClient, logger: Logger): Promise<void> {
  for (const node of await dataNodes(redis)) {
    const where = isCluster(redis) ? ` on cluster node ${node.options.host}:${node.options.port}` : '';
    const [, policy] = (await node.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      throw new UnsafeRedisError(
        `Redis maxmemory-policy is "${policy}"${where}; Plugboard needs "noeviction" (evicted keys would lose credentials, events and jobs)`,
      );
    }
    const [, appendonly] = (await node.config('GET', 'appendonly')) as [string, string];
    const [, save] = (await node.config('GET', 'save')) as [string, string];
    if (appendonly !== 'yes' && save.trim() === '') {
      logger.warn(`Redis${where} has neither AOF nor RDB snapshots enabled: a Redis restart loses all data`);
    }
  }
}

/** Keys per MGET: one command over 100,000 keys would hold Redis, and every other tenant, for its duration. */
const MGET_CHUNK_SIZE = 1000;

/** MGET of any number of keys (of one hash tag), in commands of a bounded size. */
export async function getMany(redis: RedisClient, keys: string[]): Promise<(string | null)[]> {
  return inMgetChunks(keys, (chunk) => redis.mget(...chunk));
}

/** `getMany` for binary values. */
export async function getManyBuffers(redis: RedisClient, keys: string[]): Promise<(Buffer | null)[]> {
  return inMgetChunks(keys, (chunk) => redis.mgetBuffer(...chunk));
}

async function inMgetChunks<T>(keys: string[], mget: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const chunks: string[][] = [];
  for (let start = 0; start < keys.length; start += MGET_CHUNK_SIZE) chunks.push(keys.slice(start, start + MGET_CHUNK_SIZE));
  return (await Promise.all(chunks.map(mget))).flat();
}
