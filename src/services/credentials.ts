/**
 * The credentials API as a service (SPEC §4), free of HTTP: routes of any API version call it and only
 * translate. Every change goes through the state machine and one atomic commit (credential-store.ts);
 * passwords and extra fields go straight into the credential's sealed secrets and never come back out.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { findProvider, type Provider } from '../connectors/catalog.ts';
import {
  toView,
  type CredentialInput,
  type CredentialRecord,
  type LoginChange,
  type CredentialView,
  type Status,
  type StatusDetail,
} from '../domain/credential-state.ts';
import { normalizeCode } from '../domain/one-time-code.ts';
import { errors } from '../errors.ts';
import { newId, type NewResourceId } from '../ids.ts';
import type { AccountService, AccountSortField, AccountView } from './accounts.ts';
import type { ServiceContext } from './context.ts';
import { CredentialContendedError, SECRET_FIELDS, type CredentialStore, type TransitionExtras, type TransitionResult } from './credential-store.ts';
import { pageOf, pageOfCreationIndex, paginate, type Page, type PageRequest } from './pagination.ts';

export interface NewCredentialInput {
  providerId: string;
  username: string;
  password: string;
  extraFields?: Record<string, string>;
  correlationId?: string | null;
  /** Login values no connector reads (v1's username2..4, password2..4), by name: sealed like the password, never returned. */
  additionalSecrets?: Record<string, string>;
}

/** Any subset; a new username, password or extra field means a new login. */
export interface CredentialChanges {
  username?: string;
  password?: string;
  extraFields?: Record<string, string>;
  correlationId?: string | null;
  additionalSecrets?: Record<string, string>;
  /** v1's `enabled`: false disables, true logs a disabled credential in again (see the state machine's `update`). */
  isEnabled?: boolean;
}

export interface CredentialFilters {
  status?: Status;
  statusDetail?: StatusDetail;
  providerId?: string;
  correlationId?: string;
  isCustomerActionRequired?: boolean;
}

// Each filter matches the view's field of the same name. Spelled as a record so that a new filter cannot be
// left out.
const CREDENTIAL_FILTERS = Object.keys({
  status: true,
  statusDetail: true,
  providerId: true,
  correlationId: true,
  isCustomerActionRequired: true,
} satisfies Record<keyof CredentialFilters, true>) as (keyof CredentialFilters)[];

export type CredentialSortField = 'createdAt' | 'lastModifiedAt';
export const CREDENTIAL_SORT_FIELDS: readonly CredentialSortField[] = ['createdAt', 'lastModifiedAt'];

/** The answer to an MFA call: the credential now, and the step it started (to wait for). */
export interface StepStarted {
  credential: CredentialView;
  stepId: string | null;
}

const WAIT_POLL_MS = 50;

export function createCredentialService(ctx: ServiceContext, store: CredentialStore, accounts: AccountService) {
  async function requireRecord(organizationId: string, credentialId: string): Promise<CredentialRecord> {
    const record = await store.load(organizationId, credentialId);
    if (!record) throw notFound();
    return record;
  }

  /** Runs a client's input and turns a refusal into the matching API error. */
  async function act(
    organizationId: string,
    credentialId: string,
    input: Parameters<CredentialStore['transition']>[2],
    actor: string,
    extras?: Parameters<CredentialStore['transition']>[4],
  ): Promise<Extract<TransitionResult, { outcome: 'applied' | 'refused' }>> {
    const result = await store.transition(organizationId, credentialId, input, actor, extras).catch((error: unknown) => {
      if (error instanceof CredentialContendedError) throw errors.conflict({ message: 'The credential is being changed concurrently; retry' });
      throw error;
    });
    if (result.outcome === 'missing') throw notFound();
    if (result.outcome === 'refused') {
      const { refused, message, param } = result.refusal;
      if (refused === 'invalid') throw errors.invalidParameter({ message, param });
      if (refused !== 'unchanged') throw errors.conflict({ message, param });
    }
    return result;
  }

  /** Whether the stored secrets hold every one of these values: an update that repeats them changes no login. */
  async function holdsSecrets(credential: CredentialRecord, secrets: Record<string, string>): Promise<boolean> {
    if (Object.keys(secrets).length === 0) return true;
    const stored = await ctx.secrets.readAll(store.secretsKey(credential.organizationId, credential.id));
    return Object.entries(secrets).every(([field, value]) => stored[field] === value);
  }

  /** Every credential of the organization, oldest first; for callers that filter beyond `CredentialFilters` (v1's search). */
  async function listAll(organizationId: string): Promise<CredentialView[]> {
    const ids = await ctx.redis.zrange(ctx.keys.org(organizationId).credentials, 0, -1);
    return (await store.loadMany(organizationId, ids)).map(toView);
  }

  function stepStarted(result: { credential: CredentialRecord }): StepStarted {
    return { credential: toView(result.credential), stepId: result.credential.step?.id ?? null };
  }

  return {
    /**
     * `naming.isIdempotent`: the id comes from the request's Idempotency-Key (see `idForCreation`), so finding
     * it taken means this is a retry of a creation whose answer was lost: the credential made then is the
     * answer, if it was made from the same login; otherwise the key was reused for another one.
     */
    async create(
      organizationId: string,
      input: NewCredentialInput,
      actor: string,
      naming: NewResourceId = { id: newId('crd'), isIdempotent: false },
    ): Promise<StepStarted> {
      const provider = findProvider(input.providerId);
      if (!provider) throw errors.invalidParameter({ message: 'Unknown providerId', param: 'providerId', value: input.providerId });
      const extraFields = checkExtraFields(provider, input.extraFields ?? {}, true);
      const fields = { id: naming.id, organizationId, providerId: provider.id, username: input.username, correlationId: input.correlationId ?? null };
      const secrets = { ...loginSecrets(input.password, extraFields), ...additionalSecretFields(input.additionalSecrets) };
      const created = await store.create(fields, actor, { secrets });
      if (created) return stepStarted({ credential: created });
      if (!naming.isIdempotent) throw new Error(`credential ${naming.id} already exists`);
      const earlier = await store.load(organizationId, naming.id);
      if (!earlier) throw errors.conflict({ message: 'The credential this Idempotency-Key created was deleted in the meantime' });
      const isSameLogin =
        earlier.providerId === fields.providerId &&
        earlier.username === fields.username &&
        earlier.correlationId === fields.correlationId &&
        (await holdsSecrets(earlier, secrets));
      if (!isSameLogin) throw errors.idempotencyMismatch({ param: 'Idempotency-Key' });
      return stepStarted({ credential: earlier });
    },

    listAll,

    async list(organizationId: string, query: CredentialFilters & PageRequest<CredentialSortField>): Promise<Page<CredentialView>> {
      const filters = CREDENTIAL_FILTERS.filter((filter) => query[filter] !== undefined);
      if (filters.length === 0 && query.sort.field === 'createdAt') {
        const { ids, totalElements } = await pageOfCreationIndex(ctx.redis, ctx.keys.org(organizationId).credentials, query);
        return pageOf((await store.loadMany(organizationId, ids)).map(toView), query, totalElements);
      }
      const views = (await listAll(organizationId)).filter((view) => filters.every((filter) => view[filter] === query[filter]));
      return paginate(views, query);
    },

    async get(organizationId: string, credentialId: string): Promise<CredentialView> {
      return toView(await requireRecord(organizationId, credentialId));
    },

    async update(organizationId: string, credentialId: string, changes: CredentialChanges, actor: string): Promise<StepStarted> {
      const current = await requireRecord(organizationId, credentialId);
      const provider = findProvider(current.providerId) as Provider;
      const secrets: Record<string, string> = {};
      if (changes.password !== undefined) secrets[SECRET_FIELDS.password] = changes.password;
      if (changes.extraFields !== undefined) secrets[SECRET_FIELDS.extraFields] = JSON.stringify(checkExtraFields(provider, changes.extraFields, false));
      Object.assign(secrets, additionalSecretFields(changes.additionalSecrets));
      const isLoginGiven = Object.keys(secrets).length > 0 || changes.username !== undefined;
      // Decided against each record the update is committed over: a worker's commit landing meanwhile (the
      // login's outcome, a sync) must not turn the same details again into a new login. Secrets read after the
      // record belong to it, or to a later version, over which the version-guarded commit fails and is retried.
      const login = async (record: CredentialRecord): Promise<LoginChange> => {
        if (!isLoginGiven) return 'untouched';
        const isRepeated = (changes.username === undefined || changes.username === record.username) && (await holdsSecrets(record, secrets));
        return isRepeated ? 'repeated' : 'changed';
      };
      const result = await act(
        organizationId,
        credentialId,
        async (record) => ({ kind: 'update', username: changes.username, correlationId: changes.correlationId, login: await login(record), isEnabled: changes.isEnabled }),
        actor,
        { secrets },
      );
      return stepStarted(result);
    },

    async remove(organizationId: string, credentialId: string, actor: string): Promise<void> {
      await act(organizationId, credentialId, { kind: 'delete' }, actor, async () => ({
        mutations: await accounts.mutationsForDeletion(organizationId, credentialId),
      }));
    },

    async disable(organizationId: string, credentialId: string, actor: string): Promise<CredentialView> {
      return toView((await act(organizationId, credentialId, { kind: 'disable' }, actor)).credential);
    },

    /** `onlyFrom`: only from these states, decided against the record the refresh commits over. */
    async refresh(organizationId: string, credentialId: string, actor: string, onlyFrom?: readonly StatusDetail[]): Promise<StepStarted> {
      return stepStarted(await act(organizationId, credentialId, { kind: 'refresh', onlyFrom }, actor));
    },

    async chooseMethod(
      organizationId: string,
      credentialId: string,
      body: { challengeId: string; methodId: string; isResubmission?: boolean },
      actor: string,
    ): Promise<StepStarted> {
      const input: CredentialInput = { kind: 'choose_method', challengeId: body.challengeId, methodId: body.methodId, isResubmission: body.isResubmission ?? false };
      return stepStarted(await act(organizationId, credentialId, input, actor));
    },

    /**
     * The code travels to the worker sealed, named after the step that will submit it, as `normalizeCode`
     * makes it (whitespace dropped, digits of any script as ASCII). One that cannot be right costs no attempt.
     */
    async submitCode(organizationId: string, credentialId: string, body: { challengeId: string; code: string }, actor: string): Promise<StepStarted> {
      const code = normalizeCode(body.code);
      if (code === '') throw errors.invalidParameter({ message: 'code is empty', param: 'code' });
      if (code === null) throw errors.invalidParameter({ message: 'code may hold only letters, digits and ASCII punctuation', param: 'code' });
      const withCode = (transition: { credential: CredentialRecord }): TransitionExtras => ({
        secrets: { [SECRET_FIELDS.code(transition.credential.step?.id ?? '')]: code },
      });
      const input: CredentialInput = { kind: 'submit_code', challengeId: body.challengeId, codeLength: code.length };
      return stepStarted(await act(organizationId, credentialId, input, actor, withCode));
    },

    /** The accounts found behind one of the organization's credentials; a 404 for anyone else's. */
    async accountsOf(organizationId: string, credentialId: string, request: PageRequest<AccountSortField>): Promise<Page<AccountView>> {
      await requireRecord(organizationId, credentialId);
      return accounts.list(organizationId, { ...request, credentialId });
    },

    /**
     * Resolves once the step is no longer in flight (its outcome is committed), at the deadline, or when
     * `stop` aborts (the process is shutting down: the caller answers with the state as it is).
     */
    async waitForStep(organizationId: string, credentialId: string, stepId: string, timeoutMs: number, stop?: AbortSignal): Promise<CredentialView | null> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const record = await store.load(organizationId, credentialId);
        if (!record || record.step?.id !== stepId || Date.now() >= deadline || stop?.aborted) return record && toView(record);
        await sleep(Math.min(WAIT_POLL_MS, deadline - Date.now()), undefined, { signal: stop }).catch(() => {});
      }
    },
  };
}

function notFound() {
  return errors.notFound({ message: 'Credential not found' });
}

/**
 * What a new credential seals to log in with. No extra fields (most providers have none) are not sealed at
 * all: an empty sealed field cost ≈ 100 bytes of Redis per credential, and the login step reads a missing one
 * as none.
 */
export function loginSecrets(password: string, extraFields: Record<string, string>): Record<string, string> {
  return { [SECRET_FIELDS.password]: password, ...(Object.keys(extraFields).length > 0 ? { [SECRET_FIELDS.extraFields]: JSON.stringify(extraFields) } : {}) };
}

function additionalSecretFields(additionalSecrets: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(additionalSecrets).map(([name, value]) => [SECRET_FIELDS.additional(name), value]));
}

/** Extra fields are the provider's login fields beyond username and password; nothing else is accepted. */
function checkExtraFields(provider: Provider, extraFields: Record<string, string>, isNew: boolean): Record<string, string> {
  const known = provider.loginFields.filter((field) => field.name !== 'username' && field.name !== 'password');
  for (const name of Object.keys(extraFields)) {
    if (!known.some((field) => field.name === name)) {
      throw errors.invalidParameter({ message: `${provider.name} has no login field "${name}"`, param: `extraFields.${name}` });
    }
  }
  if (isNew) {
    const missing = known.find((field) => field.isRequired && extraFields[field.name] === undefined);
    if (missing) throw errors.invalidParameter({ message: `${provider.name} needs the login field "${missing.name}"`, param: `extraFields.${missing.name}` });
  }
  return extraFields;
}

export type CredentialService = ReturnType<typeof createCredentialService>;
