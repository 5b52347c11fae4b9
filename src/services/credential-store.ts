/**
 * Where credential transitions become durable. `transition` loads a credential, runs the state machine,
 * and commits the new record, its events, its sealed secrets, its pending timers and index updates in ONE
 * version-guarded write to the org's event log; a concurrent writer makes the commit fail, and the input is
 * re-applied to the fresh record (where it is usually refused: that is how 20 simultaneous codes end as one
 * step and 19 × 409). After the commit it enqueues the step the new state calls for and makes sure a BullMQ
 * wake-up job exists for each new timer. If the process dies in between, the reconciler does both from the
 * same pure `workFor`.
 *
 * Timers are entries of the org's timer index (see storage/timer-index), not one BullMQ job each: a wake-up
 * job per organization and 100 ms bucket fires every timer due by then, so 100,000 pending challenges are
 * 100,000 sorted-set entries (≈ 0.1 KiB each, against ≈ 1 KiB for a delayed job) and expire in batches.
 */
import type { JobsOptions } from 'bullmq';
import { BoundedCache } from '../bounded-cache.ts';
import { timerChanges, workFor, type StepJob, type Timer } from '../domain/credential-jobs.ts';
import {
  apply,
  create,
  isRefusal,
  type CredentialInput,
  type CredentialRecord,
  type NewCredential,
  type Refusal,
  type Transition,
  type TransitionEnv,
} from '../domain/credential-state.ts';
import { newId, randomBase32 } from '../ids.ts';
import type { Queues } from '../queues.ts';
import { packGuardedRecord, unpackGuardedRecord, type Mutation } from '../storage/event-log.ts';
import { createTimerIndex, type TimerClaim } from '../storage/timer-index.ts';
import { getManyBuffers } from '../storage/redis.ts';
import type { ServiceContext } from './context.ts';
import { newEvent, type EventService } from './events.ts';

/** The actor of transitions nobody asked for through the API: provider outcomes, timers, syncs. */
export const SYSTEM_ACTOR = 'system';

/** Field names in a credential's sealed secrets map. */
export const SECRET_FIELDS = {
  password: 'password',
  extraFields: 'extraFields',
  /** The connector's opaque state of the open MFA challenge. */
  loginState: 'loginState',
  /** The connector's opaque provider session. */
  session: 'session',
  /** A submitted one-time code, until its step has run. Named per step so concurrent submissions never mix. */
  code: (stepId: string) => `code.${stepId}`,
  /** A login value no connector reads yet (v1's username2..4, password2..4), kept sealed like the password. */
  additional: (name: string) => `additional.${name}`,
} as const;

interface WorkChange {
  stepBefore: StepJob | null;
  stepAfter: StepJob | null;
  timers: { added: Timer[]; removed: Timer[] };
}

/** Besides the record and its events, a transition may write sealed secrets and other records (accounts). */
export interface TransitionExtras {
  secrets?: Record<string, string>;
  mutations?: Mutation[];
}

export type TransitionResult =
  | { outcome: 'applied'; credential: CredentialRecord; transition: Transition }
  | { outcome: 'refused'; credential: CredentialRecord; refusal: Refusal }
  | { outcome: 'missing' };

/** Gives up after this many lost races in a row; each loss means someone else made progress. */
const MAX_COMMIT_ATTEMPTS = 25;

/**
 * A transition that lost `MAX_COMMIT_ATTEMPTS` races in a row. A worker's job fails and is retried; a client's
 * request is a 409 to retry (the credentials service says so), not a fault of ours.
 */
export class CredentialContendedError extends Error {
  constructor(credentialId: string) {
    super(`credential ${credentialId}: gave up after ${MAX_COMMIT_ATTEMPTS} concurrent updates`);
    this.name = 'CredentialContendedError';
  }
}

/** Timers due within the same bucket of an organization share one wake-up job. */
const WAKE_BUCKET_MS = 100;
/**
 * A wake-up job is shared (deterministic id, added once per process) only while its bucket is this far
 * ahead: it cannot have started yet, even on a worker whose clock runs ahead by less. A nearer or past
 * bucket gets a job of its own, since an existing one may already have looked and finished.
 */
const WAKE_SHARE_MARGIN_MS = 2_000;
const REMEMBERED_WAKES = 10_000;
/** How long a claimed timer is held before another process may fire it: longer than any provider round trip. */
export const TIMER_LEASE_MS = 60_000;

// Spread last into a job's options: on Node 20's V8, properties added after a spread cost ≈ 0.7 µs each.
const retained = { removeOnComplete: true, removeOnFail: { age: 7 * 86400 } } satisfies JobsOptions;

export function createCredentialStore(ctx: ServiceContext, events: EventService, queues: Queues) {
  const { redis, keys, config } = ctx;
  const timerIndex = createTimerIndex(redis, keys);
  const addedWakes = new BoundedCache<string, Promise<unknown>>(REMEMBERED_WAKES);

  function env(actor: string): TransitionEnv {
    return {
      now: ctx.now(),
      config,
      actor,
      newId: (kind) => {
        switch (kind) {
          case 'challenge':
            return newId('mfa');
          case 'method':
            return newId('mth');
          case 'step':
          case 'session':
            return randomBase32(16);
        }
      },
    };
  }

  async function load(organizationId: string, credentialId: string): Promise<CredentialRecord | null> {
    const raw = await redis.getBuffer(keys.org(organizationId).credential(credentialId));
    return raw ? (JSON.parse(unpackGuardedRecord(raw)) as CredentialRecord) : null;
  }

  async function loadMany(organizationId: string, credentialIds: string[]): Promise<CredentialRecord[]> {
    if (credentialIds.length === 0) return [];
    const orgKeys = keys.org(organizationId);
    const raws = await getManyBuffers(redis, credentialIds.map((id) => orgKeys.credential(id)));
    return raws.filter((raw) => raw !== null).map((raw) => JSON.parse(unpackGuardedRecord(raw)) as CredentialRecord);
  }

  /** Secrets that die with the state that needed them, e.g. the login state once the challenge is over. */
  function obsoleteSecretFields(before: CredentialRecord, after: CredentialRecord): string[] {
    const fields: string[] = [];
    if (before.mfa && !after.mfa) fields.push(SECRET_FIELDS.loginState);
    if (before.session && !after.session) fields.push(SECRET_FIELDS.session);
    if (before.step?.kind === 'submit_code' && after.step?.id !== before.step.id) fields.push(SECRET_FIELDS.code(before.step.id));
    return fields;
  }

  /**
   * The credential's secrets after a commit that writes `written`, or null when they stay as they are. All
   * secrets are one sealed value, so a commit writing or dropping some fields writes the whole map: the one
   * stored now, minus the fields that died with the old state, plus the new ones. Reading it outside the
   * commit is safe because every commit of a credential, and so every write of its secrets, is guarded by
   * the record's version: a commit landing in between makes ours fail and the transition retry on a fresh
   * record, reading the secrets again.
   */
  async function nextSecrets(
    before: CredentialRecord | null,
    after: CredentialRecord,
    secretsKey: string,
    written: Record<string, string>,
  ): Promise<Record<string, string> | null> {
    if (!before) return Object.keys(written).length > 0 ? written : null;
    const obsolete = obsoleteSecretFields(before, after);
    if (Object.keys(written).length === 0 && obsolete.length === 0) return null;
    const stored = await ctx.secrets.readAll(secretsKey);
    const dropped = obsolete.filter((field) => field in stored);
    if (Object.keys(written).length === 0 && dropped.length === 0) return null;
    for (const field of dropped) delete stored[field];
    return { ...stored, ...written };
  }

  /**
   * How a transition changes the credential's background work, computed once: the commit writes the timers
   * and the stepping index, `schedule` enqueues the step and wakes the new timers.
   */
  function workChange(before: CredentialRecord | null, after: CredentialRecord | null): WorkChange {
    const workBefore = before ? workFor(before, config) : null;
    const workAfter = after ? workFor(after, config) : null;
    return {
      stepBefore: workBefore?.step ?? null,
      stepAfter: workAfter?.step ?? null,
      timers: timerChanges(workBefore?.timers ?? [], workAfter?.timers ?? []),
    };
  }

  /** The commit's writes to the timer index: timers the new state no longer wants go, new or moved ones come. */
  function timerMutations(timersKey: string, changes: { added: Timer[]; removed: Timer[] }): Mutation[] {
    return [
      ...changes.removed.map((timer): Mutation => ({ op: 'zrem', key: timersKey, member: timer.id })),
      ...changes.added.map((timer): Mutation => ({ op: 'zadd', key: timersKey, score: Date.parse(timer.runAt), member: timer.id })),
    ];
  }

  async function commit(before: CredentialRecord | null, transition: Transition, change: WorkChange, extras: TransitionExtras): Promise<boolean> {
    const { credential, isDeleted } = transition;
    const orgKeys = keys.org(credential.organizationId);
    const recordKey = orgKeys.credential(credential.id);
    const secretsKey = orgKeys.credentialSecrets(credential.id);
    const mutations: Mutation[] = timerMutations(orgKeys.timers, change.timers);
    if (isDeleted) {
      mutations.push(
        { op: 'del', key: recordKey },
        { op: 'del', key: secretsKey },
        { op: 'zrem', key: orgKeys.credentials, member: credential.id },
        { op: 'srem', key: orgKeys.credentialsStepping, member: credential.id },
      );
    } else {
      mutations.push({ op: 'set', key: recordKey, value: packGuardedRecord(credential, 'credential') });
      if (!before) mutations.push({ op: 'zadd', key: orgKeys.credentials, score: Date.parse(credential.createdAt), member: credential.id });
      // Only commits put an id in the stepping index, so a change between two stepless states has nothing to remove.
      if (change.stepBefore || change.stepAfter) {
        mutations.push({ op: change.stepAfter ? 'sadd' : 'srem', key: orgKeys.credentialsStepping, member: credential.id });
      }
      const secrets = await nextSecrets(before, credential, secretsKey, extras.secrets ?? {});
      if (secrets) mutations.push(ctx.secrets.writeMutation(secretsKey, secrets));
    }
    mutations.push(...(extras.mutations ?? []));
    const now = ctx.now();
    return events.commit({
      organizationId: credential.organizationId,
      guard: { key: recordKey, expectedVersion: before?.version ?? null },
      mutations,
      events: transition.events.map((event) => newEvent(event.type, event.data, now)),
    });
  }

  async function addStep(job: StepJob): Promise<void> {
    await queues.credentialSteps.add('step', job.data, {
      jobId: job.jobId,
      attempts: config.providerRetryAttempts,
      backoff: { type: 'exponential', delay: config.providerRetryDelayMs },
      ...retained,
    });
  }

  /** Back in the queue with all its tries; a no-op when another process retried it first or it is gone. */
  async function retryFailedStep(step: StepJob): Promise<void> {
    const job = await queues.credentialSteps.getJob(step.jobId);
    if (!job) return;
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (error) {
      if (await job.isFailed()) throw error;
    }
    ctx.logger.warn({ organizationId: step.data.organizationId, credentialId: step.data.credentialId, jobId: step.jobId }, 'a credential step that had failed runs again');
  }

  const bucketOf = (atMs: number) => Math.ceil(atMs / WAKE_BUCKET_MS) * WAKE_BUCKET_MS;

  /**
   * Makes sure a wake-up job fires the organization's timers at (or within a bucket after) `atMs`.
   * `trustMemory: false` adds the job even if this process added it before (the reconciler, after a loss).
   */
  function wakeAt(organizationId: string, atMs: number, { trustMemory = true } = {}): Promise<unknown> {
    const bucketMs = bucketOf(atMs);
    const now = Date.now();
    const isShared = bucketMs > now + WAKE_SHARE_MARGIN_MS;
    const jobId = isShared ? `wake-${organizationId}-${bucketMs}` : `wake-${organizationId}-${bucketMs}-${randomBase32(8)}`;
    const added = isShared && trustMemory ? addedWakes.get(jobId) : undefined;
    if (added) return added;
    const adding = queues.timers.add(
      'wake',
      { organizationId },
      { jobId, delay: Math.max(0, bucketMs - now), attempts: 5, backoff: { type: 'exponential', delay: 1000 }, ...retained },
    );
    if (isShared) {
      addedWakes.set(jobId, adding);
      // Not remembered when it failed: the next timer of that bucket tries again.
      adding.catch(() => addedWakes.delete(jobId));
    }
    return adding;
  }

  /**
   * After a commit: enqueues the new step, removes a superseded one that has not started (a running one
   * finds itself stale), and wakes the organization's timers when the new ones come due.
   *
   * The commit stands whatever happens here, so a failure is logged, not thrown: an error would tell the
   * caller the change failed, and a client retrying it would create a second credential. The reconciler
   * enqueues what is missing within RECONCILE_INTERVAL_SECONDS.
   */
  async function schedule(organizationId: string, { stepBefore, stepAfter, timers }: WorkChange): Promise<void> {
    const scheduled = await Promise.allSettled([
      ...(stepBefore && stepBefore.jobId !== stepAfter?.jobId ? [queues.credentialSteps.remove(stepBefore.jobId)] : []),
      ...(stepAfter ? [addStep(stepAfter)] : []),
      ...timers.added.map((timer) => wakeAt(organizationId, Date.parse(timer.runAt))),
    ]);
    for (const outcome of scheduled) {
      if (outcome.status === 'rejected') ctx.logger.warn({ err: outcome.reason, organizationId }, 'could not queue work after a commit; the reconciler will');
    }
  }

  return {
    load,
    loadMany,

    /** The new credential, or null when one with its id exists already. */
    async create(fields: NewCredential, actor: string, extras: TransitionExtras): Promise<CredentialRecord | null> {
      const transition = create(fields, env(actor));
      const change = workChange(null, transition.credential);
      if (!(await commit(null, transition, change, extras))) return null;
      await schedule(fields.organizationId, change);
      return transition.credential;
    },

    /**
     * Applies an input to the current record and commits it. `input` may be a function of the record, and
     * `extras` of the transition (e.g. a secret named after the new step), re-evaluated on every retry.
     */
    async transition(
      organizationId: string,
      credentialId: string,
      input: CredentialInput | ((credential: CredentialRecord) => CredentialInput | Promise<CredentialInput>),
      actor: string,
      extras: TransitionExtras | ((transition: Transition, before: CredentialRecord) => Promise<TransitionExtras> | TransitionExtras) = {},
    ): Promise<TransitionResult> {
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt += 1) {
        const before = await load(organizationId, credentialId);
        if (!before) return { outcome: 'missing' };
        const result = apply(before, typeof input === 'function' ? await input(before) : input, env(actor));
        if (isRefusal(result)) return { outcome: 'refused', credential: before, refusal: result };
        const resolvedExtras = typeof extras === 'function' ? await extras(result, before) : extras;
        const change = workChange(before, result.isDeleted ? null : result.credential);
        if (!(await commit(before, result, change, resolvedExtras))) continue;
        await schedule(organizationId, change);
        return { outcome: 'applied', credential: result.credential, transition: result };
      }
      throw new CredentialContendedError(credentialId);
    },

    /**
     * Re-creates the steps and timers these credentials (of one organization) call for that do not exist,
     * e.g. after a crash between a commit and its enqueue, or timers of an older version that kept them as
     * BullMQ jobs, and runs again the steps whose job failed for good (a job whose workers kept dying, an
     * unexpected error on its last try), which would otherwise hold their credential in flight forever.
     * Adding an existing step would be a no-op too, but each add is a BullMQ script: a pipelined EXISTS and
     * ZSCORE per step keeps a pass over 100,000 credentials from competing with the work it checks.
     * A credential that calls for no step or timer costs no Redis call here.
     */
    async ensureScheduled(organizationId: string, credentials: CredentialRecord[]): Promise<number> {
      const work = credentials.map((credential) => workFor(credential, config));
      const steps = work.flatMap(({ step }) => (step ? [step] : []));
      const timers = work.flatMap(({ timers: wanted }) => wanted);
      const pipeline = redis.pipeline();
      for (const step of steps) pipeline.exists(queues.credentialSteps.toKey(step.jobId)).zscore(queues.credentialSteps.toKey('failed'), step.jobId);
      const replies = steps.length > 0 ? ((await pipeline.exec()) ?? []) : [];
      const missingSteps = steps.filter((_, index) => replies[2 * index]?.[1] !== 1);
      const failedSteps = steps.filter((_, index) => replies[2 * index]?.[1] === 1 && replies[2 * index + 1]?.[1] !== null);
      const missingTimerIds = new Set(await timerIndex.missing(organizationId, timers.map((timer) => timer.id)));
      const missingTimers = timers.filter((timer) => missingTimerIds.has(timer.id));
      await timerIndex.addMissing(organizationId, missingTimers.map((timer) => ({ id: timer.id, runAtMs: Date.parse(timer.runAt) })));
      await Promise.all([
        ...missingSteps.map(addStep),
        ...failedSteps.map(retryFailedStep),
        ...missingTimers.map((timer) => wakeAt(organizationId, Date.parse(timer.runAt), { trustMemory: false })),
      ]);
      return missingSteps.length + failedSteps.length + missingTimers.length;
    },

    /**
     * Adds the wake-up jobs of the organization's timers due by `untilMs` that have none (a crash between a
     * commit and its wake-up, a lost job): overdue ones are woken now. One lookup per bucket, not per timer.
     */
    async ensureTimerWakes(organizationId: string, untilMs: number): Promise<void> {
      const now = ctx.now().getTime();
      let afterMs = -Infinity;
      for (;;) {
        const dueMs = await timerIndex.nextDueMs(organizationId, afterMs, untilMs);
        if (dueMs === null) return;
        await wakeAt(organizationId, dueMs, { trustMemory: false });
        afterMs = Math.max(bucketOf(dueMs), now);
      }
    },

    /**
     * Claims up to `limit` due timers of the organization for `TIMER_LEASE_MS`, and wakes its timers again
     * when the lease ends, so the ones a dying process held are fired by another.
     */
    async claimDueTimers(organizationId: string, limit: number): Promise<TimerClaim> {
      const claim = await timerIndex.claimDue(organizationId, ctx.now().getTime(), TIMER_LEASE_MS, limit);
      if (claim.ids.length > 0) await wakeAt(organizationId, claim.leaseUntilMs);
      return claim;
    },

    /** Ends a claim for the timers that ran: those their own commit did not remove or move are done. */
    releaseTimers: (organizationId: string, claim: TimerClaim, ids: string[]) => timerIndex.release(organizationId, claim, ids),

    secretsKey(organizationId: string, credentialId: string): string {
      return keys.org(organizationId).credentialSecrets(credentialId);
    },
  };
}

export type CredentialStore = ReturnType<typeof createCredentialStore>;
