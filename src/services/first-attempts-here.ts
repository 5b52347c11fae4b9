import type { Logger } from 'pino';
import type { DeliveryStep } from './webhook-delivery.ts';
import type { DeliveryJob, DeliveryTarget } from './webhooks.ts';

/**
 * The first attempts of deliveries a workers process fans out, made by that process at once instead of
 * through the delivery queue. A queued delivery costs BullMQ's add, fetch and finish scripts (≈ 40 % of
 * Redis's work per timeout in benchmark 4) and a hop through the queue; most deliveries succeed on their
 * first attempt, so they need neither. A delivery that must try again later (busy endpoint, failure) is
 * queued then, as it would have been, with the job id its fan-out would have given it.
 *
 * Nothing is lost: the events stay in the pending-fanout set, held from the reconciler for as long as an
 * attempt can take (`longestStepMs`), and leave it once each of their deliveries finished or was queued.
 * A process that dies meanwhile leaves them to the reconciler, which queues them (at least once: one may
 * then be delivered twice, as after any crash).
 */

/** Runs one delivery step, exactly as a delivery job's worker does (`WebhookDeliveryService.run`). */
export interface FirstAttemptRunner {
  run(delivery: DeliveryJob, leaseId: string): Promise<DeliveryStep>;
  /** The longest a step can take: waiting for a slot, the request, the gate's calls. */
  longestStepMs: number;
  /** The most first attempts in flight in this process; fan-outs beyond it are queued. */
  maxInFlight: number;
}

/** The fan-out's side: what a queued delivery is called and where settled events go. */
export interface FirstAttemptSettling {
  /** The delivery's job id, as its fan-out would have given it (also its lease at the endpoint's gate). */
  jobIdOf(delivery: DeliveryJob): string;
  /** Queues the delivery to run after `delayMs`, under `jobIdOf`'s id. */
  queueLater(delivery: DeliveryJob, delayMs: number): Promise<void>;
  /** Every delivery of these events finished or was queued: they leave the pending-fanout set. */
  eventsSettled(organizationId: string, eventIds: string[]): Promise<void>;
}

export class FirstAttemptsHere {
  #inFlight = 0;
  #isClosed = false;
  #drained: (() => void) | null = null;
  /** Events whose attempts are done and whose settling (taking them off the pending set) is still under way. */
  readonly #settlings = new Set<Promise<void>>();

  constructor(
    readonly runner: FirstAttemptRunner,
    private readonly settling: FirstAttemptSettling,
    private readonly logger: Logger,
  ) {}

  /** Attempts booked and not yet finished. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Books up to `wanted` attempts (none once closed); the caller starts that many or gives them back. */
  book(wanted: number): number {
    const booked = this.#isClosed ? 0 : Math.max(0, Math.min(wanted, this.runner.maxInFlight - this.#inFlight));
    this.#inFlight += booked;
    return booked;
  }

  giveBack(booked: number): void {
    for (let i = 0; i < booked; i += 1) this.#finishedOne();
  }

  /** Starts the booked attempts (one per target, event trigger, first attempt); does not wait for them. */
  start(organizationId: string, targets: DeliveryTarget[]): void {
    const targetsByEvent = new Map<string, DeliveryTarget[]>();
    for (const target of targets) targetsByEvent.set(target.eventId, [...(targetsByEvent.get(target.eventId) ?? []), target]);
    for (const [eventId, eventTargets] of targetsByEvent) {
      // The incarnation goes with the delivery into the job it may become.
      const attempts = eventTargets.map(({ endpointId, incarnation }) =>
        this.#attempt({ organizationId, eventId, endpointId, attemptNumber: 1, trigger: 'event', incarnation }),
      );
      const settling = Promise.all(attempts).then(async (settled) => {
        if (!settled.every(Boolean)) return;
        await this.settling.eventsSettled(organizationId, [eventId]).catch((error: unknown) => {
          this.logger.warn({ err: error, organizationId, eventId }, 'delivered event not taken off the pending-fanout set; the reconciler will queue it again');
        });
      });
      this.#settlings.add(settling);
      void settling.finally(() => this.#settlings.delete(settling));
    }
  }

  /**
   * Takes no more attempts and waits for those in flight (each ends within `longestStepMs`), then for their
   * events to be settled: the process closes Redis next, and an event delivered but still pending would be
   * delivered again by the reconciler.
   */
  async close(): Promise<void> {
    this.#isClosed = true;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
    await Promise.all(this.#settlings);
  }

  /** Whether the delivery finished or was queued; false leaves its event to the reconciler. */
  async #attempt(delivery: DeliveryJob): Promise<boolean> {
    try {
      const step = await this.runner.run(delivery, this.settling.jobIdOf(delivery));
      if (step.kind === 'later') await this.settling.queueLater(step.next, step.delayMs);
      return true;
    } catch (error) {
      const { organizationId, eventId, endpointId } = delivery;
      this.logger.warn({ err: error, organizationId, eventId, endpointId }, 'first delivery attempt failed unexpectedly; the reconciler will queue it');
      return false;
    } finally {
      this.#finishedOne();
    }
  }

  #finishedOne(): void {
    this.#inFlight -= 1;
    if (this.#inFlight === 0 && this.#drained) this.#drained();
  }
}
