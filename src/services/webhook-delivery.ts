import { performance } from 'node:perf_hooks';
import { BoundedCache } from '../bounded-cache.ts';
import { newId } from '../ids.ts';
import { createDeliveryLog, type DeliverySettlement, type Settlement } from '../storage/delivery-log.ts';
import { eventReads, storedEventFrom } from '../storage/event-log.ts';
import { createEndpointGate, DEFAULT_GATE_TUNING, type Admission, type EndpointGateTuning, type Handover } from '../storage/webhook-endpoint-gate.ts';
import type { StoredRead, StoredValue } from '../storage/redis.ts';
import { checkEndpointUrl, guardedLookup, type UrlVerdict } from '../webhooks/address-guard.ts';
import { createWebhookPoster, type PostOutcome } from '../webhooks/http-post.ts';
import { nextRetryDelayMs } from '../webhooks/retry-policy.ts';
import { webhookHeaders } from '../webhooks/signing.ts';
import { WaitingRooms } from '../webhooks/waiting-rooms.ts';
import type { ServiceContext } from './context.ts';
import { incarnationOf, parseEndpointRecord, type DeliveryAttempt, type DeliveryJob, type WebhookEndpointRecord, type WebhookService } from './webhooks.ts';

/**
 * One step of a delivery job: admit it past the endpoint's gate (isolation), make one signed request,
 * log the attempt, and say whether the job is finished or when it should run again. The queue mechanics
 * (moving the job to BullMQ's delayed set) stay in `workers/webhook-delivery.ts`.
 */

/** The DNS resolver behind the SSRF guard; tests inject a stub so no name ever resolves off loopback. */
export type DnsResolver = NonNullable<Parameters<typeof guardedLookup>[1]>;

export interface WebhookDeliveryOptions {
  resolve?: DnsResolver;
  gateTuning?: EndpointGateTuning;
  /** The longest a delivery holds its worker slot waiting for a busy endpoint (default DEFAULT_MAX_LOCAL_WAIT_MS). */
  maxLocalWaitMs?: number;
  /** Told of every attempt as it is logged (one the allow-list refused included), e.g. to count them for `/metrics`. */
  onAttempt?: (attempt: { delivered: boolean; latencyMs: number }) => void;
}

export type DeliveryStep =
  | { kind: 'finished' }
  /** Run the job again after `delayMs`, with `next` as its data (a retry counts one attempt more; a postponement does not). */
  | { kind: 'later'; delayMs: number; next: DeliveryJob };

export const MAX_STORED_RESPONSE_BYTES = 4096;
export const USER_AGENT = 'Plugboard-Webhooks/1.0';

// Parked jobs wake over this window after the cooldown, not all in the same millisecond.
const PARKED_WAKE_SPREAD_MS = 1_000;
/**
 * The longest a delivery holds its worker slot waiting for a slot at a busy endpoint. Waiting costs no CPU;
 * giving up costs a trip through BullMQ's delayed set and a fetch that may find the endpoint busy again.
 * With 100 ms, a single endpoint's backlog in benchmark 4 kept most of the 200 slots in that churn (expiry →
 * webhook p99 55 s; 46 s with 1 s). Only a fast endpoint gets waiters this long (see `admitSoon`: one
 * answering in 5 s with 100 slots gets 20). The price: a delivery to another endpoint queued behind a fast
 * endpoint's backlog is fetched at the pace that backlog is delivered, not at the pace jobs can be bounced.
 */
export const DEFAULT_MAX_LOCAL_WAIT_MS = 1000;
/** A waiter asks the gate again at least this long after it last asked, unless a slot here frees first. */
export const MIN_LOCAL_RECHECK_MS = 10;
const MAX_CACHED_URL_VERDICTS = 10_000;

interface HttpOutcome extends PostOutcome {
  latencyMs: number;
}

export function createWebhookDeliveryService(
  ctx: ServiceContext,
  deps: { webhooks: WebhookService },
  options: WebhookDeliveryOptions = {},
) {
  const { config, logger } = ctx;
  const { webhooks } = deps;
  const gateTuning = options.gateTuning ?? { ...DEFAULT_GATE_TUNING, maxInFlightPerEndpoint: config.webhookMaxInFlightPerEndpoint };
  const gate = createEndpointGate(ctx.redis, ctx.keys, config.webhookTimeoutMs, gateTuning);
  const waitingRooms = new WaitingRooms<Handover, Admission>();
  const maxLocalWaitMs = options.maxLocalWaitMs ?? DEFAULT_MAX_LOCAL_WAIT_MS;
  const deliveryLog = createDeliveryLog(ctx.redis, ctx.keys);
  // A URL's verdict depends on nothing but the URL and this process's allow-list: parsed once, not per request.
  const urlVerdicts = new BoundedCache<string, UrlVerdict>(MAX_CACHED_URL_VERDICTS);
  const poster = createWebhookPoster({
    timeoutMs: config.webhookTimeoutMs,
    // Checked after DNS, right before connecting: a name that resolves to a private address is never reached.
    lookup: guardedLookup(webhooks.allowList, options.resolve),
    userAgent: USER_AGENT,
    maxResponseBytes: MAX_STORED_RESPONSE_BYTES,
  });

  /** `body` is the event envelope as stored at commit, sent as it is. */
  async function attempt(endpoint: WebhookEndpointRecord, secrets: string[], eventId: string, body: string): Promise<HttpOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    // The allow-list may have shrunk since the endpoint was created.
    const verdict = urlVerdicts.get(endpoint.url) ?? urlVerdicts.set(endpoint.url, checkEndpointUrl(endpoint.url, webhooks.allowList));
    if (!verdict.ok) {
      return { responseStatus: null, responseHeaders: {}, responseBody: null, isResponseBodyTruncated: false, error: `refused: ${verdict.reason}`, latencyMs: 0 };
    }
    const headers = webhookHeaders({ secrets, msgId: eventId, timestamp: Math.floor(ctx.now().getTime() / 1000), body });
    const outcome = await poster.post(endpoint.url, headers, body);
    return { latencyMs: elapsed(), ...outcome };
  }

  /**
   * The gate's answer, after waiting in the worker's waiting room of a busy endpoint when a slot is expected
   * within `maxLocalWaitMs`: the endpoint answers fast enough for the deliveries already waiting and this one
   * (its typical latency per slot, times their number). A fast endpoint with a backlog (the usual single
   * endpoint of an integrator) then keeps every slot busy, each freed slot handed to the next waiter, and a
   * round trip through BullMQ's delayed set is saved; a slow endpoint's jobs still leave the worker's slots
   * to others. A waiter is handed the slot of a delivery of this process that succeeded (admitted by that
   * delivery's finish); otherwise it asks again when woken, at its reserved turn, or when its time is up;
   * only its first ask books a turn. One that leaves after asking again goes back to the queue for the turn
   * its last ask named, unbooked: it booked one already, and booking one per ask pushed a busy endpoint's
   * turns further out with every refused ask (common when processes share an endpoint: each wakes only its
   * own waiters).
   */
  async function admitSoon(room: string, organizationId: string, endpointId: string, leaseId: string, readOnAdmission: StoredRead[]): Promise<Admission> {
    const deadline = performance.now() + maxLocalWaitMs;
    for (let ask = 0; ; ask++) {
      const admission = await gate.admit(organizationId, endpointId, leaseId, readOnAdmission, ask === 0);
      if (admission.admitted || admission.reason === 'parked') return admission;
      const remainingMs = deadline - performance.now();
      const expectedWaitMs = ((waitingRooms.size(room) + 1) * admission.latencyMs) / gate.tuning.maxInFlightPerEndpoint;
      if (remainingMs <= 0 || expectedWaitMs > remainingMs) return admission;
      // Not before its turn, nor before the waiters ahead of it can have gone: an unbooked turn is only a
      // slot's time away, and asking that often would poll Redis in a loop.
      const waitMs = Math.min(Math.max(admission.retryInMs, expectedWaitMs, MIN_LOCAL_RECHECK_MS), remainingMs);
      const handedOver = await waitingRooms.wait(room, waitMs, { leaseId, readOnAdmission });
      if (handedOver) return handedOver;
    }
  }

  /** Logs the attempt (null: none was made, e.g. the endpoint is disabled) and where the delivery stands. */
  function settlement(delivery: DeliveryJob, attempt: DeliveryAttempt | null, stands: DeliverySettlement): Settlement {
    const { organizationId, eventId, endpointId } = delivery;
    return { organizationId, eventId, endpointId, attemptJson: attempt && JSON.stringify(attempt), settlement: stands, nowMs: ctx.now().getTime() };
  }

  function postponement(admission: Exclude<Admission, { admitted: true }>): number {
    return admission.reason === 'parked' ? admission.retryInMs + Math.round(Math.random() * PARKED_WAKE_SPREAD_MS) : admission.retryInMs;
  }

  /**
   * After a failed attempt: disable the endpoint, or keep the retry its schedule gives (`scheduledRetryMs`, null
   * when it gives up). Returns the retry delay, if any. `endpoint` is the endpoint the attempt was sent to: one
   * changed since (or deleted and created again under its id) is not disabled by its answer.
   */
  async function afterFailure(
    delivery: DeliveryJob,
    endpoint: WebhookEndpointRecord,
    outcome: HttpOutcome,
    failingSinceMs: number | null,
    scheduledRetryMs: number | null,
  ): Promise<number | null> {
    const { organizationId, endpointId } = delivery;
    const now = ctx.now().getTime();
    let disabledReason: string | null = null;
    if (outcome.responseStatus === 410) {
      disabledReason = 'The endpoint answered 410 Gone';
    } else if (failingSinceMs !== null && now - failingSinceMs >= config.webhookDisableAfterSeconds * 1000) {
      disabledReason = `Every delivery failed for ${config.webhookDisableAfterSeconds} seconds`;
    }
    if (disabledReason !== null && (await webhooks.disableEndpoint(organizationId, endpointId, disabledReason, endpoint))) {
      logger.warn({ organizationId, endpointId, reason: disabledReason }, 'webhook endpoint disabled');
      return null;
    }
    return scheduledRetryMs;
  }

  /**
   * Makes the request of an admitted delivery (its lease held) and settles it. After a success, the lease's
   * slot is handed to this process's next waiter for the endpoint by the finish call itself; otherwise the
   * lease is given back, and that waiter woken to ask, by `handBack`.
   */
  async function deliverAdmitted(delivery: DeliveryJob, leaseId: string, [endpointRead, ...eventRead]: StoredValue[], room: string): Promise<DeliveryStep> {
    const { organizationId, endpointId, eventId } = delivery;
    // Called with the gate call that gives the lease back, once it is sent: the woken waiter's ask follows it
    // on the same connection, so Redis frees the slot first and the waiter takes it in that round trip.
    // Waking it when the reply came back left the slot idle for a round trip and a half (≈ 30 ms under
    // benchmark 4's load, against requests of ≈ 20 ms).
    const handBack = <T>(givingBack: Promise<T>): Promise<T> => {
      waitingRooms.wakeFirst(room);
      return givingBack;
    };
    const attemptedAt = ctx.now();
    const endpoint = endpointFor(delivery, parseEndpointRecord(endpointRead instanceof Buffer ? endpointRead.toString() : null));
    const body = storedEventFrom(organizationId, eventId, eventRead, attemptedAt.getTime())?.envelope;
    if (!endpoint || !endpoint.isEnabled || body === undefined) {
      await handBack(gate.release(organizationId, endpointId, leaseId));
      // Disabled: kept for `recover` once the endpoint is enabled again. Deleted or expired: nothing to do.
      if (endpoint && body !== undefined) await deliveryLog.settle(settlement(delivery, null, 'gave_up'));
      return { kind: 'finished' };
    }
    let outcome: HttpOutcome | null;
    try {
      const secrets = await webhooks.signingSecrets(organizationId, endpoint);
      outcome = secrets && (await attempt(endpoint, secrets, eventId, body));
    } catch (error) {
      await handBack(gate.release(organizationId, endpointId, leaseId));
      throw error;
    }
    if (outcome === null) {
      // Deleted (with its secrets) since the gate read its record: nothing to do, as for one already gone.
      await handBack(gate.release(organizationId, endpointId, leaseId));
      return { kind: 'finished' };
    }
    const delivered = outcome.responseStatus !== null && outcome.responseStatus >= 200 && outcome.responseStatus < 300;
    options.onAttempt?.({ delivered, latencyMs: outcome.latencyMs });
    const attemptRecord = (retryInMs: number | null): DeliveryAttempt => ({
      id: newId('att'),
      eventId,
      endpointId,
      url: endpoint.url,
      attemptNumber: delivery.attemptNumber,
      trigger: delivery.trigger,
      attemptedAt: attemptedAt.toISOString(),
      outcome: delivered ? 'succeeded' : 'failed',
      responseStatus: outcome.responseStatus,
      latencyMs: outcome.latencyMs,
      responseBody: outcome.responseBody,
      isResponseBodyTruncated: outcome.isResponseBodyTruncated,
      error: outcome.error,
      nextAttemptAt: retryInMs === null ? null : new Date(ctx.now().getTime() + retryInMs).toISOString(),
    });
    if (delivered) {
      // Final at once, so the gate's call logs the attempt and settles the delivery too, and hands the slot
      // to the next waiter here, admitted in the same call (its ask saved). Should the call fail, the waiter
      // is let go to ask for itself.
      const next = waitingRooms.takeFirst(room);
      let handedOver: Admission | null = null;
      try {
        ({ handedOver } = await gate.finish(organizationId, endpointId, leaseId, {
          delivered: true,
          latencyMs: outcome.latencyMs,
          settlement: settlement(delivery, attemptRecord(null), 'succeeded'),
          handover: next?.ticket,
        }));
      } finally {
        next?.hand(handedOver ?? undefined);
      }
      return { kind: 'finished' };
    }
    const scheduledRetryMs = nextRetryDelayMs({
      schedule: config.webhookRetryScheduleSeconds,
      attemptNumber: delivery.attemptNumber,
      retryAfterHeader: firstHeader(outcome.responseHeaders['retry-after']),
      nowMs: ctx.now().getTime(),
    });
    const { failingSinceMs } = await handBack(gate.finish(organizationId, endpointId, leaseId, { delivered: false, latencyMs: outcome.latencyMs, retryInMs: scheduledRetryMs }));
    const retryInMs = await afterFailure(delivery, endpoint, outcome, failingSinceMs, scheduledRetryMs);
    await deliveryLog.settle(settlement(delivery, attemptRecord(retryInMs), retryInMs === null ? 'gave_up' : 'retrying'));
    logger.info(
      { organizationId, endpointId, eventId, attemptNumber: delivery.attemptNumber, status: outcome.responseStatus, error: outcome.error },
      'webhook delivery attempt failed',
    );
    if (retryInMs === null) return { kind: 'finished' };
    return { kind: 'later', delayMs: retryInMs, next: { ...delivery, attemptNumber: delivery.attemptNumber + 1 } };
  }

  return {
    gate,

    /** The longest `run` takes: the wait for a slot, the request, and the gate's calls (a lease's life covers them). */
    longestStepMs: maxLocalWaitMs + config.webhookTimeoutMs + gateTuning.leaseMarginMs,

    /** `leaseId` identifies the job across worker crashes, so a re-run keeps its in-flight slot. */
    async run(delivery: DeliveryJob, leaseId: string): Promise<DeliveryStep> {
      const { organizationId, endpointId, eventId } = delivery;
      const orgKeys = ctx.keys.org(organizationId);
      // The gate first: a postponed job (the common case for a backlog) costs one Redis call, nothing more;
      // an admitted one gets its endpoint and event in the same call.
      const room = `${organizationId}/${endpointId}`;
      const admission = await admitSoon(room, organizationId, endpointId, leaseId, [orgKeys.webhookEndpoint(endpointId), ...eventReads(ctx.keys, organizationId, eventId)]);
      if (!admission.admitted) return { kind: 'later', delayMs: postponement(admission), next: delivery };
      return deliverAdmitted(delivery, leaseId, admission.read, room);
    },
  };
}

/**
 * The endpoint a delivery is for, or null when there is none under its id or the one there is another
 * incarnation (deleted and created again under its Idempotency-Key since the delivery was fanned out): then the
 * delivery is dropped as one to a deleted endpoint is. A job queued before deliveries named their incarnation
 * names none and goes to the endpoint under its id, as it did when it was queued.
 */
function endpointFor(delivery: DeliveryJob, found: WebhookEndpointRecord | null): WebhookEndpointRecord | null {
  if (found === null || delivery.incarnation === undefined) return found;
  return incarnationOf(found) === delivery.incarnation ? found : null;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export type WebhookDeliveryService = ReturnType<typeof createWebhookDeliveryService>;
