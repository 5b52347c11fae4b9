import { BoundedCache } from '../bounded-cache.ts';
import { Coalescer } from '../coalescer.ts';
import { errors } from '../errors.ts';
import { newId, randomBase32, type NewResourceId } from '../ids.ts';
import type { Queues } from '../queues.ts';
import { createDeliveryLog } from '../storage/delivery-log.ts';
import { EVENT_RETENTION_SECONDS, type Mutation } from '../storage/event-log.ts';
import { unpackJson } from '../storage/packed-json.ts';
import { execTransaction } from '../storage/redis.ts';
import { checkEndpointUrl, parseCidrList } from '../webhooks/address-guard.ts';
import type { EventType } from '../webhooks/event-types.ts';
import { generateWebhookSecret } from '../webhooks/signing.ts';
import type { ServiceContext } from './context.ts';
import { newEvent, type EventEnvelope, type EventService } from './events.ts';
import { FirstAttemptsHere, type FirstAttemptRunner, type FirstAttemptSettling } from './first-attempts-here.ts';

/**
 * Webhook endpoints (SPEC §5) and everything that decides which deliveries exist: fan-out of committed
 * events, resend, recover, the test event, and the reconciler that catches events a crash left behind.
 * Making the HTTP requests is `webhook-delivery.ts`'s job.
 *
 * Records are JSON with a `version`, written through the event log's guarded commit like every other state.
 * Signing secrets live only in the endpoint's sealed `…:secrets` map: `current`, and each secret a rotation
 * replaced as `previous:<ms>:<n>`, signing alongside until that time (the record's `previousSecretExpiresAt` is
 * the latest of them).
 */

export interface WebhookEndpointRecord {
  id: string;
  url: string;
  /** null: every event type. */
  eventTypes: EventType[] | null;
  description: string;
  isEnabled: boolean;
  /** Why Plugboard disabled the endpoint (410 Gone, failing too long); null when enabled or disabled by the caller. */
  disabledReason: string | null;
  /** Until when the secret before the last rotation still signs deliveries (earlier ones end sooner). */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
  /**
   * Random per creation. An endpoint deleted and created again under its Idempotency-Key has the same id and
   * starts at version 1 again, with a new secret: id and version alone do not tell the two apart. Absent from
   * records created before it existed, which no record created since can be mistaken for.
   */
  incarnation?: string;
}

export type WebhookEndpoint = Omit<WebhookEndpointRecord, 'version' | 'incarnation'>;

export interface EndpointInput {
  url: string;
  eventTypes?: EventType[] | null;
  description?: string;
  isEnabled?: boolean;
}

export type EndpointPatch = Partial<EndpointInput>;

/** What started a delivery: the event itself, `POST /events/{id}/resend`, or `POST …/recover`. */
export type DeliveryTrigger = 'event' | 'resend' | 'recover';

/** The data of one delivery job: one event to one endpoint, through all of its retries. */
export interface DeliveryJob {
  organizationId: string;
  eventId: string;
  endpointId: string;
  /** 1 for the first request; incremented before each retry. */
  attemptNumber: number;
  trigger: DeliveryTrigger;
  /**
   * The incarnation of the endpoint the delivery was made for ('' for a record without one): a delivery that
   * finds another under the id (deleted and created again under its Idempotency-Key) is dropped, as one to a
   * deleted endpoint is. Absent from jobs queued before deliveries carried it; those are delivered to the
   * endpoint found under the id, as they always were (a re-creation queued behind them is as rare as before).
   */
  incarnation?: string;
}

/** One delivery to make: an event, and the endpoint (as `DeliveryJob` names it) it goes to. */
export type DeliveryTarget = Pick<DeliveryJob, 'eventId' | 'endpointId'> & { incarnation: string };

/** How a delivery names the endpoint incarnation it is for (see `DeliveryJob.incarnation`). */
export function incarnationOf(endpoint: WebhookEndpointRecord): string {
  return endpoint.incarnation ?? '';
}

export interface DeliveryAttempt {
  id: string;
  eventId: string;
  endpointId: string;
  url: string;
  attemptNumber: number;
  trigger: DeliveryTrigger;
  attemptedAt: string;
  outcome: 'succeeded' | 'failed';
  /** null when no HTTP response came back (timeout, refused target, connection error). */
  responseStatus: number | null;
  latencyMs: number;
  /** The first 4 KiB of the response body. */
  responseBody: string | null;
  isResponseBodyTruncated: boolean;
  error: string | null;
  /** When the next retry is due, or null when this was the last attempt. */
  nextAttemptAt: string | null;
}

/**
 * Gives up after this many lost races in a row. Each loss means another change was committed, so only more
 * than this many changes to one endpoint at the same moment can make one of them a 409.
 */
const MAX_UPDATE_ATTEMPTS = 25;
/** The most replaced secrets that still sign: each one adds a signature to every delivery. */
const MAX_PREVIOUS_SECRETS = 5;
const PREVIOUS_SECRET_FIELD = 'previous:';
// Decrypted signing secrets kept per endpoint incarnation and version, up to this many.
const MAX_CACHED_SIGNING_SECRETS = 10_000;
/** The most events one fan-out takes: its deliveries are one `addBulk`. */
const MAX_EVENTS_PER_FANOUT = 500;

// KEYS: 1 the organization's endpoint id set. ARGV: 1 the prefix of an endpoint record's key (same hash tag).
// Returns the records (null for an id whose record is gone).
const LIST_ENDPOINTS_SCRIPT = `
local records = {}
for i, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do records[i] = redis.call('GET', ARGV[1] .. id) end
return records
`;

type ListEndpointsCommand = { webhookListEndpoints(endpointSetKey: string, recordKeyPrefix: string): Promise<(string | null)[]> };

// Completed jobs are kept an hour so a duplicate fan-out (reconciler racing the listener) finds their ids taken.
const DELIVERY_JOB_OPTIONS = {
  removeOnComplete: { age: 3600 },
  removeOnFail: { age: EVENT_RETENTION_SECONDS },
  // Only for unexpected errors (Redis away mid-job): retries after HTTP failures are scheduled by the delivery itself.
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
} as const;

/**
 * A fan-out's deliveries have fixed ids, so that fanning an event out twice delivers it once; resend and
 * recover must create new deliveries, so BullMQ numbers theirs. The id is also the delivery's lease at the
 * endpoint's gate.
 */
export function fanOutJobId(eventId: string, endpointId: string): string {
  return `${eventId}.${endpointId}`;
}

// The spread comes last: on Node 20's V8, each property added after a spread costs ≈ 0.7 µs.
function deliveryJobOptions(delivery: DeliveryJob) {
  return delivery.trigger === 'event' ? { jobId: fanOutJobId(delivery.eventId, delivery.endpointId), ...DELIVERY_JOB_OPTIONS } : { ...DELIVERY_JOB_OPTIONS };
}

interface PreviousSecret {
  secret: string;
  expiresAtMs: number;
}

/** The secrets rotations replaced, newest first, with the time each stops signing (some may have passed). */
function previousSecrets(stored: Record<string, string>, endpoint: WebhookEndpointRecord): PreviousSecret[] {
  const found = Object.entries(stored).flatMap(([field, secret]) => {
    // `previous:<ms>:<n>`: the time it stops signing, and a number that keeps two ending in the same ms apart.
    if (field.startsWith(PREVIOUS_SECRET_FIELD)) return [{ secret, expiresAtMs: Number(field.slice(PREVIOUS_SECRET_FIELD.length).split(':')[0]) }];
    // Kept by earlier versions: the one secret before the last rotation, until the record's overlap ends.
    if (field === 'previous' && endpoint.previousSecretExpiresAt !== null) return [{ secret, expiresAtMs: Date.parse(endpoint.previousSecretExpiresAt) }];
    return [];
  });
  return found.sort((a, b) => b.expiresAtMs - a.expiresAtMs);
}

export function toEndpointView({ version: _version, incarnation: _incarnation, ...view }: WebhookEndpointRecord): WebhookEndpoint {
  return view;
}

/** Whether an endpoint, enabled or not, is meant to get an event: a test event only the endpoint it tests, others by subscription. */
function isMeantFor(event: EventEnvelope, endpoint: WebhookEndpointRecord): boolean {
  if (event.type === 'webhook.test') return event.data.endpointId === endpoint.id;
  // Not even kept for `recover`: the endpoint's own disabling is news for the others, not for the one that was down.
  if (event.type === 'webhook.endpoint_disabled' && event.data.endpointId === endpoint.id) return false;
  return endpoint.eventTypes === null || (endpoint.eventTypes as string[]).includes(event.type);
}

/** The endpoints an event goes to now. */
function recipientsAmong(endpoints: WebhookEndpointRecord[], event: EventEnvelope): WebhookEndpointRecord[] {
  return endpoints.filter((endpoint) => endpoint.isEnabled && isMeantFor(event, endpoint));
}

function targetOf(eventId: string, endpoint: WebhookEndpointRecord): DeliveryTarget {
  return { eventId, endpointId: endpoint.id, incarnation: incarnationOf(endpoint) };
}

export function createWebhookService(ctx: ServiceContext, queues: Queues, events: EventService) {
  const { redis, keys, config } = ctx;
  const allowList = parseCidrList(config.webhookAllowedTargets);
  redis.defineCommand('webhookListEndpoints', { numberOfKeys: 1, lua: LIST_ENDPOINTS_SCRIPT });
  const endpointCommands = redis as typeof redis & ListEndpointsCommand;
  const deliveryLog = createDeliveryLog(redis, keys);
  const signingSecretsCache = new BoundedCache<string, { current: string; previous: PreviousSecret[] }>(MAX_CACHED_SIGNING_SECRETS);

  /**
   * The refused URL as an error echoes it: a password in it goes no further than the request it came in. Read
   * as the URL parser reads it (which finds credentials in `https:u:pw@host` too); one it cannot read is not echoed.
   */
  const echoable = (url: string): string | undefined => {
    if (!URL.canParse(url)) return undefined;
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '[redacted]';
    parsed.password = '';
    return parsed.href;
  };

  function assertDeliverableUrl(url: string) {
    // The URL parser drops these silently (around the URL, and tabs and newlines inside it), so the URL the
    // integrator reads back would not be the one called; spaces belong percent-encoded. Checked when a URL is
    // given, not before each delivery: endpoints stored with them before this check keep receiving.
    if (/[\s\p{Cc}]/u.test(url)) {
      throw errors.invalidParameter({ param: 'url', message: 'url: must not contain spaces or control characters', value: echoable(url) });
    }
    const verdict = checkEndpointUrl(url, allowList);
    if (!verdict.ok) throw errors.invalidParameter({ param: 'url', message: `url: ${verdict.reason}`, value: echoable(url) });
  }

  async function findRecord(organizationId: string, endpointId: string): Promise<WebhookEndpointRecord | null> {
    return parseEndpointRecord(await redis.get(keys.org(organizationId).webhookEndpoint(endpointId)));
  }

  const endpointNotFound = () => errors.notFound({ message: 'Webhook endpoint not found', param: 'id' });

  async function loadRecord(organizationId: string, endpointId: string): Promise<WebhookEndpointRecord> {
    const record = await findRecord(organizationId, endpointId);
    if (!record) throw endpointNotFound();
    return record;
  }

  /** One round trip: every fan-out reads the organization's endpoints. */
  async function listRecords(organizationId: string): Promise<WebhookEndpointRecord[]> {
    const orgKeys = keys.org(organizationId);
    const raws = await endpointCommands.webhookListEndpoints(orgKeys.webhookEndpoints, orgKeys.webhookEndpoint(''));
    return raws.map(parseEndpointRecord).filter((record): record is WebhookEndpointRecord => record !== null);
  }

  /**
   * The record again after a lost race, as long as it is still the endpoint first read (`first`). One deleted
   * meantime and created again under its Idempotency-Key (same id, new incarnation) is another endpoint: the
   * request answers the 404 it would have had after the delete, and does not apply to the new one. A caller
   * retrying on that 404 reads the new endpoint first and changes it knowingly; applied silently, a change
   * meant for the old endpoint (a URL, disabling it, a rotation whose secret goes nowhere) would land on one
   * its creator has just configured and been told the secret of.
   */
  async function reloadSame(organizationId: string, first: WebhookEndpointRecord): Promise<WebhookEndpointRecord> {
    const current = await loadRecord(organizationId, first.id);
    if (current.incarnation !== first.incarnation) throw endpointNotFound();
    return current;
  }

  /**
   * Read-modify-write under the record's version and incarnation; retried when another writer got there first.
   * `alongside` adds writes that must land in the same commit as the new version.
   */
  async function updateRecord(
    organizationId: string,
    endpointId: string,
    change: (record: WebhookEndpointRecord) => Partial<WebhookEndpointRecord>,
    alongside: (record: WebhookEndpointRecord) => Promise<Mutation[]> = async () => [],
  ): Promise<WebhookEndpointRecord> {
    const first = await loadRecord(organizationId, endpointId);
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt += 1) {
      const current = attempt === 0 ? first : await reloadSame(organizationId, first);
      const next = await commitChange(organizationId, current, change(current), () => alongside(current));
      if (next) return next;
    }
    throw errors.conflict({ message: 'The webhook endpoint is being changed concurrently; retry' });
  }

  /** Writes `current` with `change` as its next version, unless another write got there first (null). */
  async function commitChange(
    organizationId: string,
    current: WebhookEndpointRecord,
    change: Partial<WebhookEndpointRecord>,
    alongside: () => Promise<Mutation[]> = async () => [],
    committedEvents: EventEnvelope[] = [],
  ): Promise<WebhookEndpointRecord | null> {
    const key = keys.org(organizationId).webhookEndpoint(current.id);
    const next = { ...current, ...change, updatedAt: ctx.now().toISOString(), version: current.version + 1 };
    const committed = await events.commit({
      organizationId,
      guard: { key, expectedVersion: current.version, expectedIncarnation: current.incarnation ?? null },
      mutations: [{ op: 'set', key, value: JSON.stringify(next) }, ...(await alongside())],
      events: committedEvents,
    });
    return committed ? next : null;
  }

  /** Deletes the endpoint with everything kept for it, unless another write got there first (false). */
  async function commitDeletion(organizationId: string, record: WebhookEndpointRecord): Promise<boolean> {
    const orgKeys = keys.org(organizationId);
    const del = (key: string): Mutation => ({ op: 'del', key });
    return events.commit({
      organizationId,
      guard: { key: orgKeys.webhookEndpoint(record.id), expectedVersion: record.version, expectedIncarnation: record.incarnation ?? null },
      mutations: [
        del(orgKeys.webhookEndpoint(record.id)),
        { op: 'srem', key: orgKeys.webhookEndpoints, member: record.id },
        del(orgKeys.webhookEndpointSecrets(record.id)),
        del(orgKeys.webhookEndpointHealth(record.id)),
        del(orgKeys.webhookEndpointInFlight(record.id)),
        del(orgKeys.webhookEndpointFailed(record.id)),
      ],
      events: [],
    });
  }

  async function enqueueDeliveries(organizationId: string, targets: DeliveryTarget[], trigger: DeliveryTrigger) {
    if (targets.length === 0) return;
    await queues.webhookDelivery.addBulk(
      targets.map(({ eventId, endpointId, incarnation }) => {
        const data: DeliveryJob = { organizationId, eventId, endpointId, attemptNumber: 1, trigger, incarnation };
        return { name: 'deliver', data, opts: deliveryJobOptions(data) };
      }),
    );
  }

  let firstAttemptsHere: FirstAttemptsHere | null = null;
  const settledFanouts = new Coalescer<string>((organizationId, eventIds) => events.store.markFannedOut(organizationId, eventIds), MAX_EVENTS_PER_FANOUT);
  const firstAttemptSettling: FirstAttemptSettling = {
    jobIdOf: (delivery) => fanOutJobId(delivery.eventId, delivery.endpointId),
    async queueLater(delivery, delayMs) {
      await queues.webhookDelivery.add('deliver', delivery, { delay: delayMs, ...deliveryJobOptions(delivery) });
    },
    eventsSettled: (organizationId, eventIds) => settledFanouts.add(organizationId, eventIds),
  };

  /**
   * One delivery per enabled endpoint each event is meant for, then the events leave the pending-fanout
   * set. Done by the process that committed the events, with no queue hop in between: a crash before the
   * last step leaves them pending, and the reconciler does it again (delivery job ids make that idempotent).
   * In a workers process, deliveries up to its room start their first attempt here instead of being queued
   * (see `first-attempts-here.ts`); their events stay pending, held from the reconciler, until they settle.
   * The reconciler's own fan-outs only queue: a second fan-out is idempotent through job ids, an attempt is not.
   */
  async function fanOutNow(organizationId: string, committed: EventEnvelope[], isFirstFanout: boolean): Promise<void> {
    const endpoints = await listRecords(organizationId);
    await recordMissed(organizationId, committed, endpoints);
    const targets = committed.flatMap((event) => recipientsAmong(endpoints, event).map((endpoint) => targetOf(event.id, endpoint)));
    const here = isFirstFanout ? firstAttemptsHere : null;
    const booked = here?.book(targets.length) ?? 0;
    const attemptedHere = targets.slice(0, booked);
    const held = new Set(attemptedHere.map((target) => target.eventId));
    try {
      await enqueueDeliveries(organizationId, targets.slice(booked), 'event');
      if (here && held.size > 0) await events.store.holdFanout(organizationId, [...held], ctx.now().getTime() + here.runner.longestStepMs);
    } catch (error) {
      here?.giveBack(booked);
      throw error;
    }
    here?.start(organizationId, attemptedHere);
    await events.store.markFannedOut(
      organizationId,
      committed.map((event) => event.id).filter((eventId) => !held.has(eventId)),
    );
  }

  /**
   * What a disabled endpoint is meant to get goes straight to its gave-up set, as a delivery that gave up
   * would: once the endpoint is enabled again, `recover` since the outage sends everything it missed.
   */
  async function recordMissed(organizationId: string, committed: EventEnvelope[], endpoints: WebhookEndpointRecord[]): Promise<void> {
    for (const endpoint of endpoints) {
      if (endpoint.isEnabled) continue;
      const eventIds = committed.filter((event) => isMeantFor(event, endpoint)).map((event) => event.id);
      if (eventIds.length > 0) await deliveryLog.recordMissed(organizationId, endpoint.id, eventIds, ctx.now().getTime());
    }
  }

  // Commits of one organization that land together (a claim's 50 timers, concurrent API requests) share
  // one fan-out: one endpoint read, one addBulk, one write to the pending set, instead of one each.
  const fanOuts = new Coalescer<EventEnvelope>((organizationId, committed) => fanOutNow(organizationId, committed, true), MAX_EVENTS_PER_FANOUT);

  async function fanOut(organizationId: string, committed: EventEnvelope[]): Promise<void> {
    if (committed.length > 0) await fanOuts.add(organizationId, committed);
  }

  return {
    allowList,

    /**
     * `naming.isIdempotent`: the id comes from the request's Idempotency-Key (see `idForCreation`); an endpoint
     * found under it was made by an earlier run of this request whose answer was lost, and is the answer,
     * secret included, as the lost answer had it (another URL under the same key is a reuse of the key).
     */
    async createEndpoint(
      organizationId: string,
      input: EndpointInput,
      naming: NewResourceId = { id: newId('whe'), isIdempotent: false },
    ): Promise<WebhookEndpoint & { secret: string }> {
      assertDeliverableUrl(input.url);
      const earlier = naming.isIdempotent ? await findRecord(organizationId, naming.id) : null;
      if (earlier) {
        if (earlier.url !== input.url) throw errors.idempotencyMismatch({ param: 'Idempotency-Key' });
        const { current } = await ctx.secrets.readAll(keys.org(organizationId).webhookEndpointSecrets(earlier.id));
        if (current === undefined) throw errors.conflict({ message: 'The endpoint this Idempotency-Key created was deleted in the meantime' });
        return { ...toEndpointView(earlier), secret: current };
      }
      // Checked, not reserved: creates racing each other may pass the cap by as many as race, no more.
      if ((await redis.scard(keys.org(organizationId).webhookEndpoints)) >= config.webhookMaxEndpoints) {
        throw errors.conflict({ message: `An organization has at most ${config.webhookMaxEndpoints} webhook endpoints (WEBHOOK_MAX_ENDPOINTS); delete one first` });
      }
      const now = ctx.now().toISOString();
      const record: WebhookEndpointRecord = {
        id: naming.id,
        url: input.url,
        eventTypes: input.eventTypes ?? null,
        description: input.description ?? '',
        isEnabled: input.isEnabled ?? true,
        disabledReason: null,
        previousSecretExpiresAt: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
        incarnation: randomBase32(16),
      };
      const orgKeys = keys.org(organizationId);
      const secret = generateWebhookSecret();
      // The secret first: a record never exists without one (an orphaned secret is harmless).
      await ctx.secrets.write(orgKeys.webhookEndpointSecrets(record.id), { current: secret });
      await events.commit({
        organizationId,
        guard: { key: orgKeys.webhookEndpoint(record.id), expectedVersion: null },
        mutations: [
          { op: 'set', key: orgKeys.webhookEndpoint(record.id), value: JSON.stringify(record) },
          { op: 'sadd', key: orgKeys.webhookEndpoints, member: record.id },
        ],
        events: [],
      });
      return { ...toEndpointView(record), secret };
    },

    async listEndpoints(organizationId: string): Promise<WebhookEndpoint[]> {
      return (await listRecords(organizationId)).map(toEndpointView);
    },

    async getEndpoint(organizationId: string, endpointId: string): Promise<WebhookEndpoint> {
      return toEndpointView(await loadRecord(organizationId, endpointId));
    },

    async updateEndpoint(organizationId: string, endpointId: string, patch: EndpointPatch): Promise<WebhookEndpoint> {
      if (patch.url !== undefined) assertDeliverableUrl(patch.url);
      const updated = await updateRecord(organizationId, endpointId, (current) => ({
        ...(patch.url !== undefined ? { url: patch.url } : {}),
        ...(patch.eventTypes !== undefined ? { eventTypes: patch.eventTypes } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.isEnabled !== undefined ? { isEnabled: patch.isEnabled, disabledReason: patch.isEnabled ? null : current.disabledReason } : {}),
      }));
      // A new URL or a re-enabled endpoint starts with a clean slate: no open breaker, no failure streak.
      if (patch.url !== undefined || patch.isEnabled === true) {
        await redis.del(keys.org(organizationId).webhookEndpointHealth(endpointId));
      }
      return toEndpointView(updated);
    },

    /**
     * A delete that loses the race to another delete answers the 404 a delete after it gets (the record is
     * gone when it reads again), and one that loses to a re-creation under the id too (see `reloadSame`). One
     * that loses to a change deletes the changed endpoint: the change came first.
     */
    async deleteEndpoint(organizationId: string, endpointId: string): Promise<void> {
      const first = await loadRecord(organizationId, endpointId);
      for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt += 1) {
        const record = attempt === 0 ? first : await reloadSame(organizationId, first);
        if (await commitDeletion(organizationId, record)) return;
      }
      throw errors.conflict({ message: 'The webhook endpoint is being changed concurrently; retry' });
    },

    /**
     * A new secret signs from now on; the old one keeps signing alongside until `previousSecretExpiresAt`,
     * so receivers can switch without losing a delivery. Secrets replaced before keep their own overlap
     * (a rotation retried by mistake must not cut off the secret receivers still have), up to
     * `MAX_PREVIOUS_SECRETS` of them.
     */
    async rotateSecret(organizationId: string, endpointId: string): Promise<{ secret: string; previousSecretExpiresAt: string }> {
      const secretsKey = keys.org(organizationId).webhookEndpointSecrets(endpointId);
      const secret = generateWebhookSecret();
      // Timed per attempt: a rotation retried after a concurrent one gives the secret it replaces a full overlap.
      let nowMs = 0;
      const expiresAtMs = () => nowMs + config.webhookSecretOverlapSeconds * 1000;
      // Secrets and overlap change in the record's own commit: one version of an endpoint's incarnation always
      // signs with the same secrets, which lets `signingSecrets` cache them by incarnation and version.
      const changeOverlap = () => {
        nowMs = ctx.now().getTime();
        return { previousSecretExpiresAt: new Date(expiresAtMs()).toISOString() };
      };
      await updateRecord(organizationId, endpointId, changeOverlap, async (record) => {
        const stored = await ctx.secrets.readAll(secretsKey);
        // A record never exists without its secrets (written before it, deleted with it): deleted since it was read.
        if (stored.current === undefined) throw endpointNotFound();
        const stillSigning = previousSecrets(stored, record).filter((previous) => previous.expiresAtMs > nowMs);
        const kept = [{ secret: stored.current, expiresAtMs: expiresAtMs() }, ...stillSigning].slice(0, MAX_PREVIOUS_SECRETS);
        const fields = Object.fromEntries(kept.map((previous, index) => [`${PREVIOUS_SECRET_FIELD}${previous.expiresAtMs}:${index}`, previous.secret]));
        return [ctx.secrets.writeMutation(secretsKey, { ...fields, current: secret })];
      });
      return { secret, previousSecretExpiresAt: new Date(expiresAtMs()).toISOString() };
    },

    /**
     * Every secret that signs a delivery right now: the current one, then those replaced whose overlap has
     * not ended, newest first. Null when the endpoint was deleted (with its secrets) since its record was read.
     */
    async signingSecrets(organizationId: string, endpoint: WebhookEndpointRecord): Promise<string[] | null> {
      const cacheKey = `${organizationId}/${endpoint.id}/${endpoint.incarnation ?? ''}@${endpoint.version}`;
      let stored = signingSecretsCache.get(cacheKey);
      if (stored === undefined) {
        const all = await ctx.secrets.readAll(keys.org(organizationId).webhookEndpointSecrets(endpoint.id));
        if (all.current === undefined) return null;
        stored = signingSecretsCache.set(cacheKey, { current: all.current, previous: previousSecrets(all, endpoint) });
      }
      const nowMs = ctx.now().getTime();
      return [stored.current, ...stored.previous.filter((previous) => previous.expiresAtMs > nowMs).map((previous) => previous.secret)];
    },

    /** Commits a `webhook.test` event; the fan-out sends it to this endpoint only. */
    async sendTest(organizationId: string, endpointId: string): Promise<EventEnvelope> {
      const record = await loadRecord(organizationId, endpointId);
      if (!record.isEnabled) throw errors.conflict({ message: 'The webhook endpoint is disabled; enable it before testing' });
      const event = newEvent('webhook.test', { endpointId, message: 'A test event sent on request.' }, ctx.now());
      await events.commit({ organizationId, mutations: [], events: [event] });
      return event;
    },

    /** Re-sends, with their original event ids, the deliveries to this endpoint that gave up since `since`. */
    async recover(organizationId: string, endpointId: string, since: Date): Promise<{ eventIds: string[] }> {
      const record = await loadRecord(organizationId, endpointId);
      if (!record.isEnabled) throw errors.conflict({ message: 'The webhook endpoint is disabled; enable it before recovering' });
      const failedKey = keys.org(organizationId).webhookEndpointFailed(endpointId);
      // Read and taken off the list in one step, so that recovers running at once split the ids instead of each
      // sending them all; a new failure puts an id back.
      const transaction = redis
        .multi()
        .zrangebyscore(failedKey, since.getTime(), '+inf', 'WITHSCORES')
        .zremrangebyscore(failedKey, since.getTime(), '+inf');
      const [idsAndScores] = (await execTransaction(transaction, 'recover')) as [string[], number];
      const eventIds = idsAndScores.filter((_, index) => index % 2 === 0);
      if (eventIds.length === 0) return { eventIds };
      try {
        await enqueueDeliveries(
          organizationId,
          eventIds.map((eventId) => targetOf(eventId, record)),
          'recover',
        );
      } catch (error) {
        // Not queued, so still given up: back on the list (with their times) for the next recover. Where Redis
        // refuses that too (out of memory), the log names them for a resend each.
        const scoresAndIds = eventIds.flatMap((eventId, index) => [idsAndScores[2 * index + 1] ?? '0', eventId]);
        await redis.zadd(failedKey, ...scoresAndIds).catch((putBackError: unknown) => {
          ctx.logger.error({ err: putBackError, organizationId, endpointId, eventIds }, 'recover could neither queue these deliveries nor put them back; resend each event');
        });
        throw error;
      }
      return { eventIds };
    },

    /** Sends an event again, with its original id, to every enabled endpoint it is meant for. */
    async resend(organizationId: string, eventId: string): Promise<{ eventId: string; endpointIds: string[] }> {
      const event = await events.get(organizationId, eventId);
      if (!event) throw errors.notFound({ message: 'Event not found', param: 'id' });
      const recipients = recipientsAmong(await listRecords(organizationId), event);
      await enqueueDeliveries(
        organizationId,
        recipients.map((endpoint) => targetOf(eventId, endpoint)),
        'resend',
      );
      return { eventId, endpointIds: recipients.map((endpoint) => endpoint.id) };
    },

    /** The `events.onCommitted` listener. */
    onEventsCommitted: fanOut,

    /**
     * From now on this process makes the first attempt of the deliveries it fans out (workers processes,
     * see `first-attempts-here.ts`). Close the returned object before the queues: it waits for them.
     */
    makeFirstAttemptsHere(runner: FirstAttemptRunner): FirstAttemptsHere {
      firstAttemptsHere = new FirstAttemptsHere(runner, firstAttemptSettling, ctx.logger);
      return firstAttemptsHere;
    },

    /**
     * At-least-once across crashes: events committed before `olderThan` and still pending (the process died
     * between commit and fan-out, or the fan-out failed) are fanned out again. Returns how many.
     */
    async reconcileFanout(olderThan: Date): Promise<number> {
      let cursor = '0';
      let reconciled = 0;
      do {
        const [next, organizationIds] = await redis.sscan(keys.organizations, cursor, 'COUNT', 200);
        cursor = next;
        for (const organizationId of organizationIds) {
          const eventIds = await events.store.pendingFanout(organizationId, olderThan);
          if (eventIds.length === 0) continue;
          const stored = await Promise.all(eventIds.map((eventId) => events.get(organizationId, eventId)));
          // An event past its retention has nothing left to deliver; it only leaves the pending set.
          await events.store.markFannedOut(
            organizationId,
            eventIds.filter((_, i) => stored[i] === null),
          );
          await fanOutNow(
            organizationId,
            stored.filter((event): event is EventEnvelope => event !== null),
            false,
          );
          reconciled += eventIds.length;
        }
      } while (cursor !== '0');
      return reconciled;
    },

    async listAttempts(organizationId: string, eventId: string): Promise<DeliveryAttempt[]> {
      if (!(await events.get(organizationId, eventId))) throw errors.notFound({ message: 'Event not found', param: 'id' });
      const raw = await redis.lrangeBuffer(keys.org(organizationId).attempts(eventId), 0, -1);
      return raw.map((entry) => JSON.parse(unpackJson(entry)) as DeliveryAttempt);
    },

    /**
     * Disables the endpoint if it is still the one the failing attempt was sent to (`seen`), and tells the
     * organization's other endpoints with a `webhook.endpoint_disabled` event. False when it changed meanwhile
     * (a new URL, enabled again) or is gone, or created again under its id (back at version 1): a late 410
     * from before must not undo that.
     */
    async disableEndpoint(organizationId: string, endpointId: string, reason: string, seen: Pick<WebhookEndpointRecord, 'version' | 'incarnation'>): Promise<boolean> {
      const current = await findRecord(organizationId, endpointId);
      if (current?.version !== seen.version || current.incarnation !== seen.incarnation) return false;
      const disabled = await commitChange(organizationId, current, { isEnabled: false, disabledReason: reason }, undefined, [
        newEvent('webhook.endpoint_disabled', { endpointId, disabledReason: reason }, ctx.now()),
      ]);
      return disabled !== null;
    },
  };
}

export function parseEndpointRecord(raw: string | null): WebhookEndpointRecord | null {
  return raw ? (JSON.parse(raw) as WebhookEndpointRecord) : null;
}

export type WebhookService = ReturnType<typeof createWebhookService>;
