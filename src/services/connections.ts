/**
 * Everything that talks to providers on a credential's behalf: the provider step in flight (login, method
 * choice, code), the timers (challenge expiry, session warning and expiry, login retry, periodic sync), the reconciler,
 * and the sandbox helpers. Workers call these; each outcome becomes one state-machine input committed by
 * the credential store. A step or timer that is no longer current (a rerun after a crash, a superseded
 * timer) is refused by the state machine as stale and changes nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connectorFor, findProvider, type Provider } from '../connectors/catalog.ts';
import { createProviderHttp } from '../connectors/http.ts';
import { providerMessage } from '../connectors/provider-message.ts';
import { expireSession, revokeSession } from '../connectors/sandbox.ts';
import { ProviderUnavailableError, type DiscoveredAccount, type LoginOutcome, type ProviderConnector } from '../connectors/types.ts';
import { parseTimerId, type StepJob, type TimerTarget } from '../domain/credential-jobs.ts';
import {
  isSyncWanted,
  toView,
  UNEXPECTED_PROVIDER_ANSWER,
  type CredentialInput,
  type CredentialRecord,
  type CredentialView,
  type Step,
  type Transition,
} from '../domain/credential-state.ts';
import { errors } from '../errors.ts';
import { isRedisUnavailableError } from '../storage/redis.ts';
import type { AccountService } from './accounts.ts';
import type { ServiceContext } from './context.ts';
import { SECRET_FIELDS, SYSTEM_ACTOR, type CredentialStore, type TransitionExtras } from './credential-store.ts';

const RECONCILE_PAGE_SIZE = 500;
/**
 * How long a step keeps its provider's answer while Redis refuses to commit it (out of memory, read-only in
 * a failover), trying again with a growing pause. Giving up fails the job, and its retry asks the provider
 * again: a code sent twice (the provider has used it, so a new login and a new challenge for the customer),
 * a method chosen twice (a second SMS), a session thrown away. A lost connection needs no such loop: ioredis
 * holds the commit until Redis is back.
 */
const ANSWER_COMMIT_PATIENCE = { totalMs: 120_000, firstPauseMs: 250, longestPauseMs: 5_000 };
/**
 * Timers one claim takes, all run at once: a timer is mostly waiting on Redis (a sync also on the provider),
 * and one claim per 50 instead of a BullMQ fetch and finish per timer is what lets many that come due
 * together keep up.
 */
const TIMER_BATCH_SIZE = 50;

export type StepJobData = StepJob['data'];
/** A wake-up job names only the organization whose due timers it fires (as did the older per-timer jobs). */
export interface TimerWakeData {
  organizationId: string;
}

/** An index of credential ids a reconciler pass reads. */
interface CredentialIndex {
  page(cursor: string): Promise<[next: string, ids: string[]]>;
  removeGone(ids: string[]): Promise<number>;
}

/** Thrown after a provider outage was recorded, so the queue retries the step with backoff. */
export class StepRetryError extends Error {
  override readonly name = 'StepRetryError';
}

export function createConnectionService(ctx: ServiceContext, store: CredentialStore, accounts: AccountService) {
  const http = createProviderHttp();
  const connectors = new Map<string, ProviderConnector>();

  function connectorOf(providerId: string): { provider: Provider; connector: ProviderConnector } {
    const provider = findProvider(providerId);
    if (!provider) throw new Error(`provider ${providerId} is no longer in the catalog`);
    let connector = connectors.get(providerId);
    if (!connector) {
      connector = connectorFor(provider, { sandboxBaseUrl: ctx.config.sandboxBaseUrl, http });
      connectors.set(providerId, connector);
    }
    return { provider, connector };
  }

  /** The ids of credentials with a step in flight, a page at a time; ids whose record is gone leave it. */
  function steppingIndex(key: string): CredentialIndex {
    return {
      page: (cursor) => ctx.redis.sscan(key, cursor, 'COUNT', RECONCILE_PAGE_SIZE),
      removeGone: (ids) => ctx.redis.srem(key, ...ids),
    };
  }

  /**
   * Every credential id of the organization, a page at a time. An id whose record is gone leaves the index
   * too: one commit writes or deletes a record and its index entry together, so such an id can only be left by
   * a record deleted by hand or a partial restore; nothing else would remove it, and it would count in the
   * list's `totalElements` and be read by every full pass. Removing it cannot race a commit: ids are never
   * reused, and a credential's record exists from the commit that indexed it until the one that unindexed it.
   */
  function creationIndex(key: string): CredentialIndex {
    return {
      async page(cursor) {
        const [next, idsAndScores] = await ctx.redis.zscan(key, cursor, 'COUNT', RECONCILE_PAGE_SIZE);
        return [next, idsAndScores.filter((_, position) => position % 2 === 0)];
      },
      removeGone: (ids) => ctx.redis.zrem(key, ...ids),
    };
  }

  function readSecrets(credential: CredentialRecord): Promise<Record<string, string>> {
    return ctx.secrets.readAll(store.secretsKey(credential.organizationId, credential.id));
  }

  function requireSecret(credential: CredentialRecord, secrets: Record<string, string>, field: string): string {
    const value = secrets[field];
    if (value === undefined) throw new Error(`credential ${credential.id} has no ${field.split('.')[0]} secret`);
    return value;
  }

  async function readSecret(credential: CredentialRecord, field: string): Promise<string> {
    return requireSecret(credential, await readSecrets(credential), field);
  }

  async function callProvider(credential: CredentialRecord, step: Step, connector: ProviderConnector, secrets: Record<string, string>): Promise<LoginOutcome> {
    const secret = (field: string) => requireSecret(credential, secrets, field);
    switch (step.kind) {
      case 'login':
        return connector.login({
          username: credential.username,
          password: secret(SECRET_FIELDS.password),
          extraFields: extraFieldsOf(secrets),
        });
      case 'choose_method': {
        const method = credential.mfa?.availableMethods.find((candidate) => candidate.id === step.methodId);
        if (!method) throw new Error(`credential ${credential.id}: the chosen method is not in the challenge`);
        const request = { loginState: secret(SECRET_FIELDS.loginState), methodId: method.providerMethodId };
        return step.isResubmission ? connector.resendCode(request) : connector.chooseMethod(request);
      }
      case 'submit_code':
        return connector.submitCode({ loginState: secret(SECRET_FIELDS.loginState), code: secret(SECRET_FIELDS.code(step.id)) });
    }
  }

  /**
   * The state-machine input for an outcome, and the secrets and accounts that are committed with it.
   * `credentialSecrets`: what the customer gave us, kept out of the provider's words (`providerMessage`).
   */
  function outcomeInput(
    stepId: string,
    outcome: LoginOutcome,
    credentialSecrets: Record<string, string>,
  ): { input: CredentialInput; secrets?: Record<string, string>; accounts?: DiscoveredAccount[] } {
    switch (outcome.kind) {
      case 'connected':
        return {
          input: { kind: 'connected', stepId, sessionExpiresAt: outcome.sessionExpiresAt },
          secrets: { [SECRET_FIELDS.session]: outcome.session },
          accounts: outcome.accounts,
        };
      case 'method_required':
        return {
          input: { kind: 'method_required', stepId, methods: outcome.methods, expiresAt: outcome.expiresAt },
          secrets: { [SECRET_FIELDS.loginState]: outcome.loginState },
        };
      case 'code_required': {
        const { loginState, kind: _kind, ...challenge } = outcome;
        return { input: { kind: 'code_required', stepId, ...challenge }, secrets: { [SECRET_FIELDS.loginState]: loginState } };
      }
      case 'code_rejected':
        return { input: { kind: 'code_rejected', stepId }, secrets: { [SECRET_FIELDS.loginState]: outcome.loginState } };
      case 'invalid_credentials':
      case 'access_limited':
        return { input: { kind: outcome.kind, stepId, message: providerMessage(outcome.message, secretValues(credentialSecrets)) } };
      case 'challenge_expired':
        return { input: { kind: 'challenge_expired', stepId } };
    }
  }

  /** Extras of a provider answer, computed against the record the transition applies to. */
  function withDiscovery(secrets: Record<string, string> | undefined, discovered: DiscoveredAccount[] | undefined) {
    return async (_transition: Transition, before: CredentialRecord): Promise<TransitionExtras> => ({
      secrets,
      mutations: discovered ? await accounts.mutationsForDiscovery(before, discovered, ctx.now()) : [],
    });
  }

  async function sync(credential: CredentialRecord, sessionId: string): Promise<void> {
    const { organizationId, id } = credential;
    const { connector } = connectorOf(credential.providerId);
    let outcome;
    try {
      outcome = await connector.sync({ session: await readSecret(credential, SECRET_FIELDS.session) });
    } catch (error) {
      ctx.logger.warn({ credentialId: id, reason: (error as Error).message }, 'sync failed; trying again at the next sync');
      await store.transition(organizationId, id, { kind: 'sync_failed', sessionId }, SYSTEM_ACTOR);
      return;
    }
    if (outcome.kind === 'session_invalid') {
      await store.transition(organizationId, id, { kind: 'session_invalid', sessionId, lost: 'REVOKED' }, SYSTEM_ACTOR);
      return;
    }
    await store.transition(
      organizationId,
      id,
      { kind: 'synced', sessionId, sessionExpiresAt: outcome.sessionExpiresAt },
      SYSTEM_ACTOR,
      withDiscovery({ [SECRET_FIELDS.session]: outcome.session }, outcome.accounts),
    );
  }

  async function requireSandboxSession(organizationId: string, credentialId: string): Promise<{ credential: CredentialRecord; session: string }> {
    const credential = await store.load(organizationId, credentialId);
    if (!credential) throw errors.notFound({ message: 'Credential not found' });
    if (!findProvider(credential.providerId)?.isSandbox) {
      throw errors.invalidParameter({ message: 'Sandbox helpers only work on credentials of sandbox providers' });
    }
    const noSession = () => errors.conflict({ message: 'The credential holds no provider session' });
    if (!credential.session) throw noSession();
    // Gone since the record was read when a concurrent call ended the session.
    const session = (await readSecrets(credential))[SECRET_FIELDS.session];
    if (session === undefined) throw noSession();
    return { credential, session };
  }

  /** Runs one timer. One whose challenge or session is no longer current changes nothing. */
  async function runTimer(organizationId: string, timerId: string): Promise<void> {
    const target: TimerTarget | null = parseTimerId(timerId);
    if (!target) {
      ctx.logger.warn({ timerId }, 'dropping a timer of unknown shape');
      return;
    }
    const { credentialId, ref } = target;
    switch (target.kind) {
      case 'challenge_expiry':
        await store.transition(organizationId, credentialId, { kind: 'challenge_expired_timer', challengeId: ref }, SYSTEM_ACTOR);
        return;
      case 'session_warning':
        await store.transition(organizationId, credentialId, { kind: 'session_warning', sessionId: ref }, SYSTEM_ACTOR);
        return;
      case 'session_expiry':
        await store.transition(organizationId, credentialId, { kind: 'session_expired', sessionId: ref }, SYSTEM_ACTOR);
        return;
      case 'login_retry':
        await store.transition(organizationId, credentialId, { kind: 'login_retry_due', dueAt: ref }, SYSTEM_ACTOR);
        return;
      case 'sync': {
        const credential = await store.load(organizationId, credentialId);
        if (isSyncWanted(credential, ref)) await sync(credential, ref);
        return;
      }
    }
  }

  /** Commits a provider's answer, trying again for `ANSWER_COMMIT_PATIENCE.totalMs` while Redis refuses writes. */
  async function whileRedisRefuses<T>(credentialId: string, commit: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + ANSWER_COMMIT_PATIENCE.totalMs;
    let pauseMs = ANSWER_COMMIT_PATIENCE.firstPauseMs;
    for (;;) {
      try {
        return await commit();
      } catch (error) {
        if (!isRedisUnavailableError(error) || Date.now() + pauseMs > giveUpAt) throw error;
        ctx.logger.warn({ credentialId, err: error, retryInMs: pauseMs }, "Redis refused a provider step's outcome; trying again");
        await sleep(pauseMs);
        pauseMs = Math.min(pauseMs * 2, ANSWER_COMMIT_PATIENCE.longestPauseMs);
      }
    }
  }

  return {
    /**
     * Performs the step in flight, if `stepId` still is it. Provider outages are recorded and rethrown as
     * `StepRetryError` for the queue's backoff, except on the last attempt, which ends the step.
     */
    async runStep(data: StepJobData, attempt: { isFinal: boolean }): Promise<void> {
      const credential = await store.load(data.organizationId, data.credentialId);
      const step = credential?.step;
      if (!credential || step?.id !== data.stepId) return;
      let outcome: LoginOutcome;
      // The secrets are one sealed value: read and opened once, however many of them the step needs.
      const secrets = await readSecrets(credential);
      try {
        outcome = await callProvider(credential, step, connectorOf(credential.providerId).connector, secrets);
      } catch (error) {
        const reason = error instanceof ProviderUnavailableError ? 'The provider website cannot be reached' : UNEXPECTED_PROVIDER_ANSWER;
        ctx.logger.warn({ credentialId: credential.id, step: step.kind, reason: (error as Error).message }, 'provider step failed');
        const input: CredentialInput = { kind: 'provider_unavailable', stepId: step.id, message: reason, willRetry: !attempt.isFinal };
        const result = await store.transition(credential.organizationId, credential.id, input, SYSTEM_ACTOR);
        if (!attempt.isFinal && result.outcome === 'applied') throw new StepRetryError(reason);
        return;
      }
      const { input, secrets: newSecrets, accounts: discovered } = outcomeInput(step.id, outcome, secrets);
      await whileRedisRefuses(credential.id, () =>
        store.transition(credential.organizationId, credential.id, input, SYSTEM_ACTOR, withDiscovery(newSecrets, discovered)),
      );
    },

    /**
     * Fires every due timer of the organization, a claimed batch at a time, until none is due or `stop` is
     * aborted. A timer that throws stays claimed and fires again when its lease ends; the others are released.
     */
    async fireDueTimers(organizationId: string, { stop }: { stop?: AbortSignal } = {}): Promise<{ fired: number; failed: number }> {
      let fired = 0;
      let failed = 0;
      for (;;) {
        // A process shutting down fires no more batches: another process (or this one, restarted) is woken for the rest.
        if (stop?.aborted) {
          await store.ensureTimerWakes(organizationId, ctx.now().getTime());
          return { fired, failed };
        }
        const claim = await store.claimDueTimers(organizationId, TIMER_BATCH_SIZE);
        const outcomes = await Promise.allSettled(claim.ids.map((id) => runTimer(organizationId, id)));
        const ran = claim.ids.filter((_, index) => outcomes[index]?.status === 'fulfilled');
        await store.releaseTimers(organizationId, claim, ran);
        for (const [index, outcome] of outcomes.entries()) {
          if (outcome.status === 'rejected') {
            ctx.logger.warn({ err: outcome.reason, timerId: claim.ids[index] }, 'timer failed; it fires again when its lease ends');
          }
        }
        fired += ran.length;
        failed += claim.ids.length - ran.length;
        if (claim.ids.length < TIMER_BATCH_SIZE) return { fired, failed };
      }
    },

    /**
     * Re-creates missing step jobs and timers (SPEC §6), e.g. after a crash between a commit and its enqueue.
     * A commit writes its timers itself, so only a step can go missing that way: the regular pass reads the
     * credentials with a step in flight. `everyCredential` reads every credential of the creation index instead,
     * for timers lost otherwise or written by a version without the timer index; whether one has work is
     * `workFor` of its record, so those without any are read and left as they are. `checked` counts the
     * records read (in a full pass every credential), `rescheduled` the steps and timers re-created. `stop`
     * ends the pass between pages.
     */
    async reconcile({ everyCredential, stop }: { everyCredential: boolean; stop?: AbortSignal }): Promise<{ checked: number; rescheduled: number }> {
      let checked = 0;
      let rescheduled = 0;
      for (const organizationId of await ctx.redis.smembers(ctx.keys.organizations)) {
        // A process shutting down leaves the rest to the next pass, here or elsewhere.
        if (stop?.aborted) break;
        const orgKeys = ctx.keys.org(organizationId);
        // Earlier versions kept the credentials with work in a set of their own for this pass.
        if (everyCredential) await ctx.redis.unlink(orgKeys.obsoleteCredentialsScheduled);
        const index = everyCredential ? creationIndex(orgKeys.credentials) : steppingIndex(orgKeys.credentialsStepping);
        // Paged, so an org with 100k pending challenges never builds one giant MGET or job batch.
        let cursor = '0';
        do {
          const [next, ids] = await index.page(cursor);
          cursor = next;
          const credentials = await store.loadMany(organizationId, ids);
          const found = new Set(credentials.map((credential) => credential.id));
          const gone = ids.filter((id) => !found.has(id));
          if (gone.length > 0) await index.removeGone(gone);
          rescheduled += await store.ensureScheduled(organizationId, credentials);
          checked += credentials.length;
        } while (cursor !== '0' && !stop?.aborted);
        // Until the next pass, and then some: a timer due before the pass after next is woken by this one.
        await store.ensureTimerWakes(organizationId, ctx.now().getTime() + 2 * ctx.config.reconcileIntervalSeconds * 1000);
      }
      return { checked, rescheduled };
    },

    /** Sandbox helper: the provider session ends now, which the credential learns at once. */
    async expireSandboxSession(organizationId: string, credentialId: string): Promise<CredentialView> {
      const { credential, session } = await requireSandboxSession(organizationId, credentialId);
      await expireSession(ctx.config.sandboxBaseUrl, session, http);
      const sessionId = credential.session?.id ?? '';
      const result = await store.transition(organizationId, credentialId, { kind: 'session_invalid', sessionId, lost: 'EXPIRED' }, SYSTEM_ACTOR);
      if (result.outcome === 'missing') throw errors.notFound({ message: 'Credential not found' });
      return toView(result.credential);
    },

    /** Sandbox helper: the provider silently stops honouring the session; the next sync finds out. */
    async revokeSandboxSession(organizationId: string, credentialId: string): Promise<CredentialView> {
      const { credential, session } = await requireSandboxSession(organizationId, credentialId);
      await revokeSession(ctx.config.sandboxBaseUrl, session, http);
      return toView(credential);
    },
  };
}

export type ConnectionService = ReturnType<typeof createConnectionService>;

function extraFieldsOf(secrets: Record<string, string>): Record<string, string> {
  return JSON.parse(secrets[SECRET_FIELDS.extraFields] ?? '{}') as Record<string, string>;
}

/** Every value of a credential's secrets, extra fields one by one. */
function secretValues(secrets: Record<string, string>): string[] {
  return [...Object.values(secrets), ...Object.values(extraFieldsOf(secrets))];
}
