/**
 * Where credential transitions become durable. `transition` loads a credential, runs the state machine,
 * and commits the new record, its events, its sealed secrets and index updates in ONE version-guarded write
 * to the org's event log; a concurrent writer makes the commit fail, and the input is re-applied to the
 * fresh record (where it is usually refused: that is how 20 simultaneous codes end as one step and 19 × 409).
 * After the commit it schedules the jobs the new state calls for and removes the ones it no longer does.
 * If the process dies in between, the reconciler schedules them from the same pure `jobsFor`.
 */
import type { JobsOptions } from 'bullmq';
import { jobsFor, supersededJobs, type CredentialJob } from '../domain/credential-jobs.ts';
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
import type { Mutation } from '../storage/event-log.ts';
import type { ServiceContext } from './context.ts';
import { newEvent, type EventService } from './events.ts';

/** The actor of transitions nobody asked for through the API: provider outcomes, timers, syncs. */
export const SYSTEM_ACTOR = 'system';

/** Field names in a credential's sealed secrets hash. */
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

export function createCredentialStore(ctx: ServiceContext, events: EventService, queues: Queues) {
  const { redis, keys, config } = ctx;

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
    const raw = await redis.get(keys.org(organizationId).credential(credentialId));
    return raw ? (JSON.parse(raw) as CredentialRecord) : null;
  }

  async function loadMany(organizationId: string, credentialIds: string[]): Promise<CredentialRecord[]> {
    if (credentialIds.length === 0) return [];
    const orgKeys = keys.org(organizationId);
    const raws = await redis.mget(...credentialIds.map((id) => orgKeys.credential(id)));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as CredentialRecord);
  }

  /** Secrets that die with the state that needed them, e.g. the login state once the challenge is over. */
  function obsoleteSecretFields(before: CredentialRecord, after: CredentialRecord): string[] {
    const fields: string[] = [];
    if (before.mfa && !after.mfa) fields.push(SECRET_FIELDS.loginState);
    if (before.session && !after.session) fields.push(SECRET_FIELDS.session);
    if (before.step?.kind === 'submit_code' && after.step?.id !== before.step.id) fields.push(SECRET_FIELDS.code(before.step.id));
    return fields;
  }

  async function commit(before: CredentialRecord | null, transition: Transition, extras: TransitionExtras): Promise<boolean> {
    const { credential, isDeleted } = transition;
    const orgKeys = keys.org(credential.organizationId);
    const recordKey = orgKeys.credential(credential.id);
    const secretsKey = orgKeys.credentialSecrets(credential.id);
    const mutations: Mutation[] = [];
    if (isDeleted) {
      mutations.push(
        { op: 'del', key: recordKey },
        { op: 'del', key: secretsKey },
        { op: 'zrem', key: orgKeys.credentials, member: credential.id },
        { op: 'srem', key: orgKeys.credentialsScheduled, member: credential.id },
      );
    } else {
      mutations.push({ op: 'set', key: recordKey, value: JSON.stringify(credential) });
      if (!before) mutations.push({ op: 'zadd', key: orgKeys.credentials, score: Date.parse(credential.createdAt), member: credential.id });
      const hasJobs = jobsFor(credential, config).length > 0;
      mutations.push({ op: hasJobs ? 'sadd' : 'srem', key: orgKeys.credentialsScheduled, member: credential.id });
      const sealed = ctx.secrets.seal(secretsKey, extras.secrets ?? {});
      for (const [field, value] of Object.entries(sealed)) mutations.push({ op: 'hset', key: secretsKey, field, value });
      if (before) for (const field of obsoleteSecretFields(before, credential)) mutations.push({ op: 'hdel', key: secretsKey, field });
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

  async function addJob(job: CredentialJob): Promise<void> {
    const retained = { removeOnComplete: true, removeOnFail: { age: 7 * 86400 } } satisfies JobsOptions;
    if (job.queue === 'credentialSteps') {
      await queues.credentialSteps.add('step', job.data, {
        ...retained,
        jobId: job.jobId,
        attempts: config.providerRetryAttempts,
        backoff: { type: 'exponential', delay: config.providerRetryDelayMs },
      });
    } else {
      await queues.timers.add(job.kind, job.data, {
        ...retained,
        jobId: job.jobId,
        delay: Math.max(0, Date.parse(job.runAt) - Date.now()),
        attempts: 5,
        backoff: { type: 'exponential', delay: 1000 },
      });
    }
  }

  /**
   * Makes the queues match the new state. A job that cannot be removed (it is running) finds itself stale.
   * A timer already due is not even tried: it is running (often it is the very job committing this
   * transition) or about to, and a BullMQ remove script per timeout would be spent on nothing.
   */
  async function schedule(before: CredentialRecord | null, after: CredentialRecord | null): Promise<void> {
    const wanted = after ? jobsFor(after, config) : [];
    const now = Date.now();
    const superseded = supersededJobs(before ? jobsFor(before, config) : [], wanted).filter(
      (job) => job.queue !== 'timers' || Date.parse(job.runAt) > now,
    );
    await Promise.all([
      ...superseded.map((job) => queues[job.queue].remove(job.jobId)),
      ...wanted.map(addJob),
    ]);
  }

  return {
    load,
    loadMany,

    async create(fields: NewCredential, actor: string, extras: TransitionExtras): Promise<CredentialRecord> {
      const transition = create(fields, env(actor));
      if (!(await commit(null, transition, extras))) throw new Error(`credential ${fields.id} already exists`);
      await schedule(null, transition.credential);
      return transition.credential;
    },

    /**
     * Applies an input to the current record and commits it. `input` may be a function of the record, and
     * `extras` of the transition (e.g. a secret named after the new step), re-evaluated on every retry.
     */
    async transition(
      organizationId: string,
      credentialId: string,
      input: CredentialInput | ((credential: CredentialRecord) => CredentialInput),
      actor: string,
      extras: TransitionExtras | ((transition: Transition, before: CredentialRecord) => Promise<TransitionExtras> | TransitionExtras) = {},
    ): Promise<TransitionResult> {
      for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt += 1) {
        const before = await load(organizationId, credentialId);
        if (!before) return { outcome: 'missing' };
        const result = apply(before, typeof input === 'function' ? input(before) : input, env(actor));
        if (isRefusal(result)) return { outcome: 'refused', credential: before, refusal: result };
        const resolvedExtras = typeof extras === 'function' ? await extras(result, before) : extras;
        if (!(await commit(before, result, resolvedExtras))) continue;
        const after = result.isDeleted ? null : result.credential;
        await schedule(before, after);
        return { outcome: 'applied', credential: result.credential, transition: result };
      }
      throw new Error(`credential ${credentialId}: gave up after ${MAX_COMMIT_ATTEMPTS} concurrent updates`);
    },

    /**
     * Re-creates the jobs these credentials' states call for that do not exist. Adding an existing id would
     * be a no-op too, but each add is a BullMQ script: one pipelined EXISTS per job keeps a reconciler pass
     * over 100,000 pending challenges from competing with the timers it checks.
     */
    async ensureScheduled(credentials: CredentialRecord[]): Promise<number> {
      const wanted = credentials.flatMap((credential) => jobsFor(credential, config));
      if (wanted.length === 0) return 0;
      const pipeline = redis.pipeline();
      for (const job of wanted) pipeline.exists(queues[job.queue].toKey(job.jobId));
      const results = (await pipeline.exec()) ?? [];
      const missing = wanted.filter((_, index) => results[index]?.[1] !== 1);
      await Promise.all(missing.map(addJob));
      return missing.length;
    },

    secretsKey(organizationId: string, credentialId: string): string {
      return keys.org(organizationId).credentialSecrets(credentialId);
    },
  };
}

export type CredentialStore = ReturnType<typeof createCredentialStore>;
