/**
 * The credential state machine (SPEC §4, §5), as data and pure functions: no I/O, no clock, no randomness
 * of its own. The API and the workers both feed it inputs; the service layer commits what it returns
 * (the new record and its events) in one atomic, version-guarded write.
 *
 * Three ids keep late arrivals harmless:
 * - `step.id` names the provider round trip in flight. A provider outcome for any other step (a worker
 *   rerun after a crash, a login superseded by an update or refresh) is refused as stale.
 * - `mfa.challengeId` names the open challenge. Client calls and expiry timers for another one are refused.
 * - `session.id` names the stored provider session. Warnings, expiries and syncs of a replaced one are refused.
 */
import type { MfaMethodType } from '../connectors/types.ts';

/** SPEC §4's table: each statusDetail belongs to exactly one status. */
export const STATUS_DETAILS = {
  DATA_EXTRACTION_IN_PROGRESS: { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: false },
  PROVIDER_WEBSITE_INACCESSIBLE: { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: false },
  MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED: { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: true },
  MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED: { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: true },
  MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED: { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: false },
  LOGIN_AND_DATA_DISCOVERY_SUCCESS: { status: 'CONNECTION_SUCCESS', isCustomerActionRequired: false },
  INVALID_CREDENTIALS: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true },
  OTHER_ACCESS_LIMITATION: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true },
  MULTI_FACTOR_AUTHENTICATION_CODE_INVALID: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true },
  MULTI_FACTOR_AUTHENTICATION_TIMED_OUT: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true },
  MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: true },
  DISABLED: { status: 'CONNECTION_FAILURE', isCustomerActionRequired: false },
} as const;

export type StatusDetail = keyof typeof STATUS_DETAILS;
export type Status = (typeof STATUS_DETAILS)[StatusDetail]['status'];
export const STATUS_DETAIL_NAMES = Object.keys(STATUS_DETAILS) as StatusDetail[];
export const STATUSES: readonly Status[] = ['CONNECTION_IN_PROGRESS', 'CONNECTION_SUCCESS', 'CONNECTION_FAILURE'];

/** What `statusMessage` says when the provider gave no words of its own. */
const DEFAULT_MESSAGES: Record<StatusDetail, string> = {
  DATA_EXTRACTION_IN_PROGRESS: 'Logging in to the provider.',
  PROVIDER_WEBSITE_INACCESSIBLE: 'The provider website cannot be reached; retrying.',
  MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED: 'The provider asks where to send a verification code.',
  MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED: 'The provider sent a verification code; submit it before mfa.expiresAt.',
  MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED: 'Checking the verification code with the provider.',
  LOGIN_AND_DATA_DISCOVERY_SUCCESS: 'Connected.',
  INVALID_CREDENTIALS: 'The provider rejected the username or password.',
  OTHER_ACCESS_LIMITATION: 'The provider refuses access to this account.',
  MULTI_FACTOR_AUTHENTICATION_CODE_INVALID: 'Too many wrong verification codes; refresh to start again.',
  MULTI_FACTOR_AUTHENTICATION_TIMED_OUT: 'No verification code arrived in time; refresh to start again.',
  MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED: 'The provider session ended; refresh to log in again with a new code.',
  DISABLED: 'Disabled.',
};

/** What CODE_REQUIRED says: an authenticator app's code is read off the customer's device, not sent. */
function codeRequiredMessage(mfa: Challenge): string {
  const selected = mfa.availableMethods.find((method) => method.id === mfa.selectedMethodId);
  return selected?.type === 'APP'
    ? 'The provider asks for the code the authenticator app shows; submit it before mfa.expiresAt.'
    : DEFAULT_MESSAGES.MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED;
}

export type MfaStage = 'METHOD_SELECTION' | 'CODE_ENTRY';

export interface ChallengeMethod {
  id: string;
  type: MfaMethodType;
  destination: string | null;
  /** The provider's id for the method; internal, never shown. */
  providerMethodId: string;
}

export interface Challenge {
  challengeId: string;
  stage: MfaStage;
  availableMethods: ChallengeMethod[];
  selectedMethodId: string | null;
  codeLength: number | null;
  expiresAt: string;
  attemptsRemaining: number;
  /** Codes sent again on request (`isResubmission`); internal. Missing in challenges from before it was counted. */
  resends?: number;
}

/** The most times one challenge's code is sent again: each is a text or call to the customer, paid by someone. */
export const MAX_CODE_RESENDS = 5;

export interface ProviderSession {
  id: string;
  obtainedAt: string;
  expiresAt: string | null;
  /** Obtained through MFA: when it ends, a person must supply a new code. Otherwise we just log in again. */
  isMfa: boolean;
  warnedAt: string | null;
}

/** Why a stored MFA session was lost (`credential.mfa.refresh_required`'s `data.reason`). */
export type SessionLoss = 'EXPIRED' | 'REVOKED';

export type StepKind = 'login' | 'choose_method' | 'submit_code';

/** The provider round trip in flight. Its presence is what makes MFA submissions single-flight. */
export interface Step {
  id: string;
  kind: StepKind;
  requestedAt: string;
  /** choose_method: our `mth_` id and whether a new code is asked for on the same challenge. */
  methodId?: string;
  isResubmission?: boolean;
}

/** The stored JSON record. Secrets (password, extra fields, login state, session, pending code) live elsewhere. */
export interface CredentialRecord {
  id: string;
  organizationId: string;
  providerId: string;
  username: string;
  correlationId: string | null;
  status: Status;
  statusDetail: StatusDetail;
  statusMessage: string | null;
  isActive: boolean;
  mfa: Challenge | null;
  session: ProviderSession | null;
  step: Step | null;
  lastSyncedAt: string | null;
  nextSyncAt: string | null;
  createdAt: string;
  createdBy: string;
  lastModifiedAt: string;
  lastModifiedBy: string;
  version: number;
}

/** SPEC §4's credential object. */
export interface CredentialView {
  id: string;
  providerId: string;
  username: string;
  correlationId: string | null;
  status: Status;
  statusDetail: StatusDetail;
  statusMessage: string | null;
  isCustomerActionRequired: boolean;
  isAccessible: boolean;
  isActive: boolean;
  mfa: null | {
    challengeId: string;
    stage: MfaStage;
    availableMethods: { id: string; type: MfaMethodType; destination: string | null }[];
    selectedMethodId: string | null;
    codeLength: number | null;
    expiresAt: string;
    attemptsRemaining: number;
  };
  mfaSession: null | { obtainedAt: string; expiresAt: string | null };
  lastSyncedAt: string | null;
  nextSyncAt: string | null;
  createdAt: string;
  createdBy: string;
  lastModifiedAt: string;
  lastModifiedBy: string;
}

export function toView(record: CredentialRecord): CredentialView {
  const { mfa, session } = record;
  return {
    id: record.id,
    providerId: record.providerId,
    username: record.username,
    correlationId: record.correlationId,
    status: record.status,
    statusDetail: record.statusDetail,
    statusMessage: record.statusMessage,
    isCustomerActionRequired: STATUS_DETAILS[record.statusDetail].isCustomerActionRequired,
    isAccessible: record.status === 'CONNECTION_SUCCESS',
    isActive: record.isActive,
    mfa: mfa && {
      challengeId: mfa.challengeId,
      stage: mfa.stage,
      availableMethods: mfa.availableMethods.map(({ id, type, destination }) => ({ id, type, destination })),
      selectedMethodId: mfa.selectedMethodId,
      codeLength: mfa.codeLength,
      expiresAt: mfa.expiresAt,
      attemptsRemaining: mfa.attemptsRemaining,
    },
    mfaSession: session?.isMfa ? { obtainedAt: session.obtainedAt, expiresAt: session.expiresAt } : null,
    lastSyncedAt: record.lastSyncedAt,
    nextSyncAt: record.nextSyncAt,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    lastModifiedAt: record.lastModifiedAt,
    lastModifiedBy: record.lastModifiedBy,
  };
}

export type CredentialEventType =
  | 'credential.created'
  | 'credential.status_changed'
  | 'credential.connected'
  | 'credential.mfa.method_required'
  | 'credential.mfa.code_required'
  | 'credential.mfa.code_rejected'
  | 'credential.mfa.timed_out'
  | 'credential.mfa.session_expiring'
  | 'credential.mfa.refresh_required'
  | 'credential.disabled'
  | 'credential.deleted';

export interface PendingEvent {
  type: CredentialEventType;
  data: { credential: CredentialView } & Record<string, unknown>;
}

/** A provider's MFA method as the connector reports it. */
export interface OfferedMethod {
  id: string;
  type: MfaMethodType;
  destination: string | null;
}

export type CredentialInput =
  // What the provider said about the step in flight.
  | { kind: 'connected'; stepId: string; sessionExpiresAt: string | null }
  | { kind: 'method_required'; stepId: string; methods: OfferedMethod[]; expiresAt: string | null }
  | {
      kind: 'code_required';
      stepId: string;
      methods: OfferedMethod[];
      selectedMethodId: string;
      codeLength: number;
      expiresAt: string | null;
    }
  | { kind: 'code_rejected'; stepId: string }
  /** `message`: the provider's own words, when it gave any. */
  | { kind: 'invalid_credentials'; stepId: string; message?: string }
  | { kind: 'access_limited'; stepId: string; message?: string }
  | { kind: 'challenge_expired'; stepId: string }
  /** Could not reach the provider; `willRetry` false once the retries are used up. */
  | { kind: 'provider_unavailable'; stepId: string; message: string; willRetry: boolean }
  // What the API client asked for.
  | { kind: 'choose_method'; challengeId: string; methodId: string; isResubmission: boolean }
  /** `codeLength`: how many characters the submitted code has (the code itself travels sealed). */
  | { kind: 'submit_code'; challengeId: string; codeLength: number }
  /** `onlyFrom`: refuse unless the credential is in one of these, checked in the same commit as the refresh. */
  | { kind: 'refresh'; onlyFrom?: readonly StatusDetail[] }
  | { kind: 'disable' }
  /**
   * `login`: what the update does to the login details (see `LoginChange`). `isEnabled` (v1's `enabled`): false
   * disables the credential, true logs a disabled one in again; absent, neither.
   */
  | { kind: 'update'; username?: string; correlationId?: string | null; login: LoginChange; isEnabled?: boolean }
  | { kind: 'delete' }
  // Timers.
  | { kind: 'challenge_expired_timer'; challengeId: string }
  | { kind: 'session_warning'; sessionId: string }
  | { kind: 'session_expired'; sessionId: string }
  /** A login out of quick retries tries again at `nextSyncAt`; `dueAt` is that time in ms, as the timer names it. */
  | { kind: 'login_retry_due'; dueAt: string }
  // Periodic sync with the stored session.
  | { kind: 'synced'; sessionId: string; sessionExpiresAt: string | null }
  | { kind: 'sync_failed'; sessionId: string }
  /** `lost`: ended before its time by the provider (a sync found it), or ended now on request (the sandbox's expireSession). */
  | { kind: 'session_invalid'; sessionId: string; lost: SessionLoss };

/**
 * An update's login details: `changed` (a username or secret differs from the stored one, so the old login
 * means nothing any more), `repeated` (given, but the same as stored: a retried PATCH, or a customer typing the
 * same password again), `untouched` (none given).
 */
export type LoginChange = 'changed' | 'repeated' | 'untouched';

export type InputKind = CredentialInput['kind'];

/** Inputs from outside (API calls) are refused with a conflict; internal ones that no longer apply are stale. */
const API_INPUTS: ReadonlySet<InputKind> = new Set(['choose_method', 'submit_code', 'refresh', 'disable', 'update', 'delete']);

export interface TransitionRule {
  /** The statusDetails this input may act on. Anything else is refused. */
  from: readonly StatusDetail[];
  /** The statusDetails it can lead to. */
  to: readonly StatusDetail[];
  /** The events it can emit. */
  emits: readonly CredentialEventType[];
}

const LOGGING_IN = ['DATA_EXTRACTION_IN_PROGRESS', 'PROVIDER_WEBSITE_INACCESSIBLE'] as const;
const AWAITING_CUSTOMER = ['MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'] as const;
const MFA_STAGES = [...AWAITING_CUSTOMER, 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED'] as const;
const IN_PROGRESS = [...LOGGING_IN, ...MFA_STAGES] as const;
const CONNECTED = ['LOGIN_AND_DATA_DISCOVERY_SUCCESS'] as const;
const FAILED = [
  'INVALID_CREDENTIALS',
  'OTHER_ACCESS_LIMITATION',
  'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID',
  'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT',
  'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED',
] as const;
const ANY = STATUS_DETAIL_NAMES;

/** Failures the customer can fix alone by starting the MFA login again (the hosted page offers it). */
export const CUSTOMER_RESTARTABLE: readonly StatusDetail[] = [
  'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT',
  'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED',
  'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID',
];

/** The allowed transitions. `apply` refuses inputs from other states; the unit tests hold every branch to this table. */
export const TRANSITIONS: Record<InputKind, TransitionRule> = {
  connected: { from: IN_PROGRESS, to: CONNECTED, emits: ['credential.status_changed', 'credential.connected'] },
  // A provider may ask again after a choice or a code (a method that could not send, a second factor): the
  // customer gets a new challenge, or a new code on this one.
  method_required: {
    from: IN_PROGRESS,
    to: ['MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'],
    emits: ['credential.status_changed', 'credential.mfa.method_required'],
  },
  code_required: {
    from: IN_PROGRESS,
    to: ['MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'],
    emits: ['credential.status_changed', 'credential.mfa.code_required', 'credential.mfa.timed_out'],
  },
  code_rejected: {
    from: ['MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED'],
    to: ['MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', 'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID', 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'],
    emits: ['credential.status_changed', 'credential.mfa.code_rejected', 'credential.mfa.timed_out'],
  },
  invalid_credentials: { from: IN_PROGRESS, to: ['INVALID_CREDENTIALS'], emits: ['credential.status_changed'] },
  access_limited: { from: IN_PROGRESS, to: ['OTHER_ACCESS_LIMITATION'], emits: ['credential.status_changed'] },
  challenge_expired: {
    from: MFA_STAGES,
    to: ['MULTI_FACTOR_AUTHENTICATION_TIMED_OUT', 'DATA_EXTRACTION_IN_PROGRESS'],
    emits: ['credential.status_changed', 'credential.mfa.timed_out'],
  },
  provider_unavailable: {
    from: IN_PROGRESS,
    to: ['PROVIDER_WEBSITE_INACCESSIBLE', ...AWAITING_CUSTOMER, 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED', 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'],
    emits: ['credential.status_changed', 'credential.mfa.timed_out', 'credential.mfa.method_required'],
  },
  choose_method: { from: AWAITING_CUSTOMER, to: AWAITING_CUSTOMER, emits: [] },
  submit_code: {
    from: ['MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'],
    to: ['MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED'],
    emits: ['credential.status_changed'],
  },
  refresh: {
    from: ['PROVIDER_WEBSITE_INACCESSIBLE', ...AWAITING_CUSTOMER, ...CONNECTED, ...FAILED, 'DISABLED'],
    // A connection with a provider session syncs now, staying connected; every other state logs in again.
    to: ['DATA_EXTRACTION_IN_PROGRESS', ...CONNECTED],
    emits: ['credential.status_changed'],
  },
  disable: {
    from: ANY.filter((detail) => detail !== 'DISABLED'),
    to: ['DISABLED'],
    emits: ['credential.status_changed', 'credential.disabled'],
  },
  update: { from: ANY, to: ANY, emits: ['credential.status_changed', 'credential.disabled'] },
  delete: { from: ANY, to: ANY, emits: ['credential.deleted'] },
  challenge_expired_timer: {
    from: AWAITING_CUSTOMER,
    to: ['MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'],
    emits: ['credential.status_changed', 'credential.mfa.timed_out'],
  },
  login_retry_due: { from: ['PROVIDER_WEBSITE_INACCESSIBLE'], to: ['PROVIDER_WEBSITE_INACCESSIBLE'], emits: [] },
  session_warning: { from: CONNECTED, to: CONNECTED, emits: ['credential.mfa.session_expiring'] },
  session_expired: {
    from: CONNECTED,
    to: ['MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'DATA_EXTRACTION_IN_PROGRESS'],
    emits: ['credential.status_changed', 'credential.mfa.refresh_required'],
  },
  synced: { from: CONNECTED, to: CONNECTED, emits: [] },
  sync_failed: { from: CONNECTED, to: CONNECTED, emits: [] },
  session_invalid: {
    from: CONNECTED,
    to: ['MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'DATA_EXTRACTION_IN_PROGRESS'],
    emits: ['credential.status_changed', 'credential.mfa.refresh_required'],
  },
};

export interface StateMachineConfig {
  mfaChallengeTtlSeconds: number;
  mfaMaxAttempts: number;
  syncIntervalSeconds: number;
  providerOutageRetrySeconds: number;
}

/** Everything a transition needs from outside, passed in so `apply` stays pure. */
export interface TransitionEnv {
  now: Date;
  config: StateMachineConfig;
  /** Who causes the change (an API key id, or `system`). */
  actor: string;
  newId(kind: 'challenge' | 'method' | 'step' | 'session'): string;
}

export interface Transition {
  credential: CredentialRecord;
  events: PendingEvent[];
  isDeleted: boolean;
}

export interface Refusal {
  /**
   * `stale`: an internal input that no longer applies (drop it). `conflict`: the client's request does not
   * fit the current state (409). `invalid`: the request names something that does not exist (400).
   * `unchanged`: already in the requested state (answer with the credential as it is).
   */
  refused: 'stale' | 'conflict' | 'invalid' | 'unchanged';
  message: string;
  param?: string;
}

export function isRefusal(result: Transition | Refusal): result is Refusal {
  return 'refused' in result;
}

export interface NewCredential {
  id: string;
  organizationId: string;
  providerId: string;
  username: string;
  correlationId: string | null;
}

/** A new credential starts logging in at once. */
export function create(fields: NewCredential, env: TransitionEnv): Transition {
  const now = env.now.toISOString();
  // Fields named one by one: on Node 20's V8, each property added after a spread costs ≈ 0.7 µs (the copy's
  // shape is made anew every time): ≈ 15 µs for this literal, ≈ 5 % of the API's time in a create.
  const credential: CredentialRecord = {
    id: fields.id,
    organizationId: fields.organizationId,
    providerId: fields.providerId,
    username: fields.username,
    correlationId: fields.correlationId,
    status: 'CONNECTION_IN_PROGRESS',
    statusDetail: 'DATA_EXTRACTION_IN_PROGRESS',
    statusMessage: DEFAULT_MESSAGES.DATA_EXTRACTION_IN_PROGRESS,
    isActive: true,
    mfa: null,
    session: null,
    step: { id: env.newId('step'), kind: 'login', requestedAt: now },
    lastSyncedAt: null,
    nextSyncAt: null,
    createdAt: now,
    createdBy: env.actor,
    lastModifiedAt: now,
    lastModifiedBy: env.actor,
    version: 1,
  };
  return { credential, events: [event('credential.created', credential)], isDeleted: false };
}

export function apply(credential: CredentialRecord, input: CredentialInput, env: TransitionEnv): Transition | Refusal {
  const rule = TRANSITIONS[input.kind];
  if (!rule.from.includes(credential.statusDetail)) {
    if (input.kind === 'disable') return { refused: 'unchanged', message: 'The credential is already disabled' };
    if (isProviderOutcome(input) && credential.step?.id === input.stepId && TRANSITIONS.provider_unavailable.from.includes(credential.statusDetail)) {
      // An answer to the step in flight that this stage has no rule for ends the step as an unexpected answer does.
      // Refused as stale, it would leave the step in flight without a job, which the reconciler would run again
      // and again (a code or an SMS sent each time).
      const unexpected = { kind: 'provider_unavailable', stepId: input.stepId, message: UNEXPECTED_PROVIDER_ANSWER, willRetry: false } as const;
      return providerUnavailable(new Change(credential, env), unexpected);
    }
    return API_INPUTS.has(input.kind)
      ? { refused: 'conflict', message: `Not possible while the credential is ${credential.statusDetail}` }
      : stale(`${input.kind} does not apply to ${credential.statusDetail}`);
  }
  const change = new Change(credential, env);
  switch (input.kind) {
    case 'connected':
    case 'method_required':
    case 'code_required':
    case 'code_rejected':
    case 'invalid_credentials':
    case 'access_limited':
    case 'challenge_expired':
    case 'provider_unavailable':
      if (credential.step?.id !== input.stepId) return stale('the outcome belongs to a step that is no longer current');
      return applyProviderOutcome(change, input);
    case 'choose_method':
      return chooseMethod(change, input);
    case 'submit_code':
      return submitCode(change, input);
    case 'refresh':
      if (input.onlyFrom && !input.onlyFrom.includes(credential.statusDetail)) {
        return { refused: 'conflict', message: `Not possible while the credential is ${credential.statusDetail}` };
      }
      if (credential.step) return { refused: 'conflict', message: 'A provider step is still in flight; wait for it to finish' };
      // The stored session is what later syncs reuse (SPEC §4): a refresh of a working connection syncs with it
      // now (its sync timer moved to now) instead of logging in again, which would ask the customer for a new
      // code. A session the provider no longer honours is found by that sync, as by any other.
      if (credential.status === 'CONNECTION_SUCCESS' && credential.session) return change.set({ nextSyncAt: env.now.toISOString() }).done();
      return change.startLogin().done();
    case 'disable':
      return change.disable().done();
    case 'update': {
      // The same details again start a login only where the last one failed (or the credential is disabled):
      // a retried PATCH must not throw away a login in flight, an open challenge or a working session.
      const isLoginDue =
        input.login === 'changed' ||
        (input.login === 'repeated' && credential.status === 'CONNECTION_FAILURE') ||
        (input.isEnabled === true && !credential.isActive);
      const isDisableDue = input.isEnabled === false && credential.statusDetail !== 'DISABLED';
      const isSameDetails =
        (input.username === undefined || input.username === credential.username) &&
        (input.correlationId === undefined || input.correlationId === credential.correlationId);
      // Nothing to do (a retried PATCH, a form saved twice): no commit, so lastModifiedAt keeps its meaning.
      if (isSameDetails && !isLoginDue && !isDisableDue) return { refused: 'unchanged', message: 'Nothing to change' };
      change.set({
        ...(input.username === undefined ? {} : { username: input.username }),
        ...(input.correlationId === undefined ? {} : { correlationId: input.correlationId }),
      });
      // New details and disabling in one request (v1's `enabled: false`) store the details and start no login.
      if (input.isEnabled === false) return isDisableDue ? change.disable().done() : change.done();
      return isLoginDue ? change.startLogin().done() : change.done();
    }
    case 'delete':
      return change.emit('credential.deleted').done({ isDeleted: true });
    case 'challenge_expired_timer':
      if (credential.mfa?.challengeId !== input.challengeId) return stale('the timer belongs to another challenge');
      if (!isDue(credential.mfa.expiresAt, env.now)) return stale('the challenge has not expired yet');
      return change.timeOut().done();
    case 'login_retry_due':
      if (credential.step || credential.nextSyncAt === null || Date.parse(credential.nextSyncAt) !== Number(input.dueAt)) {
        return stale('no login retry is due at this time');
      }
      if (!isDue(credential.nextSyncAt, env.now)) return stale('the login retry is not due yet');
      // The same outage tried again keeps its detail: a provider down for a day is not two status changes an hour.
      return change.startLogin('PROVIDER_WEBSITE_INACCESSIBLE', 'The provider website was unavailable; trying again now').done();
    case 'session_warning': {
      const session = credential.session;
      if (session?.id !== input.sessionId || !session.isMfa || session.warnedAt) return stale('no warning due for this session');
      // Fired late (workers were down): the session has ended, and its expiry says so instead of a warning.
      if (session.expiresAt && isDue(session.expiresAt, env.now)) return stale('the session has already ended');
      return change
        .set({ session: { ...session, warnedAt: env.now.toISOString() } })
        .emit('credential.mfa.session_expiring', { expiresAt: session.expiresAt })
        .done();
    }
    case 'session_expired':
      if (credential.session?.id !== input.sessionId) return stale('the session was replaced');
      if (!isDue(credential.session.expiresAt, env.now)) return stale('the session has not expired yet');
      return change.loseSession('EXPIRED').done();
    case 'session_invalid':
      if (credential.session?.id !== input.sessionId) return stale('the session was replaced');
      // Refused at its end, a session expired: nobody revoked it. A provider may drop one a moment early (a
      // cookie's expiry rounded down to the second), and a sync may reach it just after the end.
      return change.loseSession(isDue(credential.session.expiresAt, env.now) ? 'EXPIRED' : input.lost).done();
    case 'synced': {
      const session = credential.session;
      if (session?.id !== input.sessionId) return stale('the session was replaced');
      const isExtended = input.sessionExpiresAt !== session.expiresAt;
      return change
        .set({
          session: { ...session, expiresAt: input.sessionExpiresAt, warnedAt: isExtended ? null : session.warnedAt },
          lastSyncedAt: env.now.toISOString(),
          nextSyncAt: change.nextSyncAt(),
        })
        .done();
    }
    case 'sync_failed':
      if (credential.session?.id !== input.sessionId) return stale('the session was replaced');
      return change.set({ nextSyncAt: change.nextSyncAt() }).done();
  }
}

type ProviderOutcome = Extract<
  CredentialInput,
  { kind: 'connected' | 'method_required' | 'code_required' | 'code_rejected' | 'invalid_credentials' | 'access_limited' | 'challenge_expired' | 'provider_unavailable' }
>;

/** The inputs that carry a provider's answer to a step. */
export const PROVIDER_OUTCOME_KINDS: ReadonlySet<InputKind> = new Set<ProviderOutcome['kind']>([
  'connected',
  'method_required',
  'code_required',
  'code_rejected',
  'invalid_credentials',
  'access_limited',
  'challenge_expired',
  'provider_unavailable',
]);

function isProviderOutcome(input: CredentialInput): input is ProviderOutcome {
  return PROVIDER_OUTCOME_KINDS.has(input.kind);
}

/** The message of a step the provider answered in a way no connector or rule expects. */
export const UNEXPECTED_PROVIDER_ANSWER = 'The provider answered unexpectedly';

function applyProviderOutcome(change: Change, input: ProviderOutcome): Transition {
  const { before, env } = change;
  const now = env.now.toISOString();
  switch (input.kind) {
    case 'connected':
      return change
        .moveTo('LOGIN_AND_DATA_DISCOVERY_SUCCESS', {
          mfa: null,
          step: null,
          session: { id: env.newId('session'), obtainedAt: now, expiresAt: input.sessionExpiresAt, isMfa: before.mfa !== null, warnedAt: null },
          lastSyncedAt: now,
          nextSyncAt: change.nextSyncAt(),
        })
        .emit('credential.connected')
        .done();
    case 'method_required':
      return change
        .moveTo('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', { step: null, mfa: change.newChallenge(input.methods, input.expiresAt) })
        .emit('credential.mfa.method_required')
        .done();
    case 'code_required': {
      const challenge = before.mfa ?? change.newChallenge(input.methods, input.expiresAt);
      const selected = challenge.availableMethods.find((method) => method.providerMethodId === input.selectedMethodId);
      const mfa: Challenge = {
        ...challenge,
        stage: 'CODE_ENTRY',
        selectedMethodId: selected?.id ?? null,
        codeLength: input.codeLength,
        // A resent code never extends the challenge beyond what we promised, only shortens it if the provider says so.
        expiresAt: earliest(challenge.expiresAt, input.expiresAt),
      };
      if (Date.parse(mfa.expiresAt) <= env.now.getTime()) return change.timeOut(mfa.challengeId).done();
      return change
        .moveTo('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', { step: null, mfa }, codeRequiredMessage(mfa))
        .emit('credential.mfa.code_required', { expiresAt: mfa.expiresAt })
        .done();
    }
    case 'code_rejected': {
      const challenge = before.mfa as Challenge;
      const attemptsRemaining = Math.max(0, challenge.attemptsRemaining - 1);
      if (attemptsRemaining === 0) {
        return change
          .moveTo('MULTI_FACTOR_AUTHENTICATION_CODE_INVALID', { step: null, mfa: null })
          .emit('credential.mfa.code_rejected', { attemptsRemaining })
          .done();
      }
      // A wrong code that comes back after the deadline ends the challenge, as the expiry timer would have; the
      // customer did answer in time, so the integrator hears that the code was wrong before that it timed out.
      if (Date.parse(challenge.expiresAt) <= env.now.getTime()) {
        return change.emit('credential.mfa.code_rejected', { attemptsRemaining }).timeOut().done();
      }
      return change
        .moveTo('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', { step: null, mfa: { ...challenge, attemptsRemaining } }, codeRequiredMessage(challenge))
        .emit('credential.mfa.code_rejected', { attemptsRemaining })
        .done();
    }
    case 'invalid_credentials':
      return change.moveTo('INVALID_CREDENTIALS', { step: null, mfa: null }, input.message).done();
    case 'access_limited':
      return change.moveTo('OTHER_ACCESS_LIMITATION', { step: null, mfa: null }, input.message).done();
    case 'challenge_expired':
      // Before its deadline the provider only ends a challenge that was used or cancelled: typically our code
      // went through but the worker died before committing the session it got back, and the retry finds the
      // challenge gone. Nobody was too slow (SPEC: timed out means no code before mfa.expiresAt), so log in
      // again and let the customer answer a fresh challenge.
      if (before.mfa && !isDue(before.mfa.expiresAt, env.now)) return change.startLogin().done();
      return change.timeOut().done();
    case 'provider_unavailable':
      return providerUnavailable(change, input);
  }
}

function providerUnavailable(change: Change, input: Extract<CredentialInput, { kind: 'provider_unavailable' }>): Transition {
  const { before } = change;
  const step = input.willRetry ? before.step : null;
  if (before.step?.kind === 'login') {
    if (input.willRetry) return change.moveTo('PROVIDER_WEBSITE_INACCESSIBLE', { step }, `${input.message}; retrying`).done();
    // Out of quick retries, a login is not dropped: a provider down for hours is tried again every
    // PROVIDER_OUTAGE_RETRY_SECONDS (nextSyncAt says when) until it answers; a refresh tries at once.
    return change
      .moveTo('PROVIDER_WEBSITE_INACCESSIBLE', { step, nextSyncAt: change.nextLoginRetryAt() }, `${input.message}; trying again at nextSyncAt, or refresh to try now`)
      .done();
  }
  // Past the challenge's deadline an MFA step that cannot reach the provider ends the challenge: its expiry
  // timer came due while the step was in flight and found nothing to expire (SPEC: an MFA stage always has its
  // timer), and the provider's own challenge is most likely gone too. The customer starts again with a refresh.
  if (before.mfa && isDue(before.mfa.expiresAt, change.env.now)) return change.timeOut().done();
  // An MFA step keeps its stage while it retries; once it gives up, the customer may simply try again.
  const detail = before.statusDetail === 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED' && !input.willRetry
    ? 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'
    : before.statusDetail;
  const message = input.willRetry ? `${input.message}; retrying` : `${input.message}; please try again`;
  const moved = change.moveTo(detail, { step }, message);
  // A first choice of method that could not reach the provider sent no code, and the stage stays as it was: no
  // status change to tell of. Asking for the method again does, so a client waiting for code_required hears.
  const isMethodAskedAgain = !input.willRetry && before.step?.kind === 'choose_method' && before.mfa?.stage === 'METHOD_SELECTION';
  return (isMethodAskedAgain ? moved.emit('credential.mfa.method_required') : moved).done();
}

/** The challenge an answer names, if it can be answered now (a method chosen, a code sent); else why not. */
function answerableChallenge(change: Change, challengeId: string): Challenge | Refusal {
  const { before, env } = change;
  const challenge = before.mfa;
  if (before.step) return { refused: 'conflict', message: 'A verification step is already being processed' };
  if (!challenge || challenge.challengeId !== challengeId) {
    return { refused: 'conflict', message: 'challengeId is not the open challenge', param: 'challengeId' };
  }
  // Its expiry timer may not have fired yet; a method chosen now would send a code for a dead challenge.
  if (Date.parse(challenge.expiresAt) <= env.now.getTime()) {
    return { refused: 'conflict', message: 'The challenge has expired; refresh to start a new one' };
  }
  return challenge;
}

function chooseMethod(change: Change, input: Extract<CredentialInput, { kind: 'choose_method' }>): Transition | Refusal {
  const { env } = change;
  const challenge = answerableChallenge(change, input.challengeId);
  if ('refused' in challenge) return challenge;
  if (challenge.stage === 'CODE_ENTRY' && !input.isResubmission) {
    return { refused: 'conflict', message: 'A method was already chosen; send isResubmission: true to get a new code', param: 'isResubmission' };
  }
  const method = challenge.availableMethods.find((candidate) => candidate.id === input.methodId);
  if (!method) return { refused: 'invalid', message: 'methodId is not one of mfa.availableMethods', param: 'methodId' };
  // Switching to the app from another method is a choice; "again" to the app it already names would spend a
  // resend and a provider round trip for a code nobody sends.
  if (input.isResubmission && challenge.stage === 'CODE_ENTRY' && method.type === 'APP' && method.id === challenge.selectedMethodId) {
    return { refused: 'conflict', message: 'An authenticator app code is not sent, so it cannot be sent again; submit the code the app shows now', param: 'isResubmission' };
  }
  // Only a code already sent can be sent again: isResubmission on the first choice of a method sends the first.
  const resends = (challenge.resends ?? 0) + (input.isResubmission && challenge.stage === 'CODE_ENTRY' ? 1 : 0);
  if (resends > MAX_CODE_RESENDS) {
    return { refused: 'conflict', message: `The code was sent again ${MAX_CODE_RESENDS} times; use one of those, or refresh to start over`, param: 'isResubmission' };
  }
  return change
    .set({
      mfa: { ...challenge, selectedMethodId: input.methodId, ...(resends > 0 ? { resends } : {}) },
      step: {
        id: env.newId('step'),
        kind: 'choose_method',
        requestedAt: env.now.toISOString(),
        methodId: input.methodId,
        isResubmission: input.isResubmission,
      },
    })
    .done();
}

function submitCode(change: Change, input: Extract<CredentialInput, { kind: 'submit_code' }>): Transition | Refusal {
  const { env } = change;
  const challenge = answerableChallenge(change, input.challengeId);
  if ('refused' in challenge) return challenge;
  // A code the provider would refuse on its length alone (a digit short, a pasted sentence) costs no attempt.
  if (challenge.codeLength !== null && input.codeLength !== challenge.codeLength) {
    return { refused: 'invalid', message: `code must have ${challenge.codeLength} characters`, param: 'code' };
  }
  return change
    .moveTo('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED', {
      step: { id: env.newId('step'), kind: 'submit_code', requestedAt: env.now.toISOString() },
    })
    .done();
}

/**
 * Timers fire at their time, but the clock of the process that scheduled one may run a little ahead of the
 * one that runs it. A timer for a deadline that has moved (a longer session after a sync) is not due.
 */
const TIMER_CLOCK_TOLERANCE_MS = 1000;

function isDue(deadline: string | null, now: Date): boolean {
  return deadline !== null && Date.parse(deadline) - now.getTime() <= TIMER_CLOCK_TOLERANCE_MS;
}

/**
 * Whether a sync timer for `sessionId` should still reach the provider: what `synced` and `sync_failed`
 * accept, asked before the provider round trip rather than after it.
 */
export function isSyncWanted(credential: CredentialRecord | null, sessionId: string): credential is CredentialRecord {
  return credential?.session?.id === sessionId && TRANSITIONS.synced.from.includes(credential.statusDetail);
}

function stale(message: string): Refusal {
  return { refused: 'stale', message };
}

function earliest(ours: string, theirs: string | null): string {
  return theirs !== null && Date.parse(theirs) < Date.parse(ours) ? new Date(Date.parse(theirs)).toISOString() : ours;
}

function event(type: CredentialEventType, credential: CredentialRecord, extra: Record<string, unknown> = {}): PendingEvent {
  return { type, data: { credential: toView(credential), ...extra } };
}

/**
 * One transition under construction: field changes, at most one move to a new statusDetail, and the events
 * in the order they are emitted. `status_changed` always comes first, ahead of the event that explains it.
 */
class Change {
  private next: CredentialRecord;
  private readonly pending: { type: CredentialEventType; extra: Record<string, unknown> }[] = [];

  constructor(
    readonly before: CredentialRecord,
    readonly env: TransitionEnv,
  ) {
    this.next = { ...before };
  }

  set(fields: Partial<CredentialRecord>): this {
    this.next = { ...this.next, ...fields };
    return this;
  }

  moveTo(detail: StatusDetail, fields: Partial<CredentialRecord> = {}, message?: string): this {
    const { status } = STATUS_DETAILS[detail];
    this.set(fields).set({ status, statusDetail: detail, statusMessage: message ?? DEFAULT_MESSAGES[detail] });
    if (detail !== this.before.statusDetail) {
      this.pending.unshift({
        type: 'credential.status_changed',
        extra: { previous: { status: this.before.status, statusDetail: this.before.statusDetail } },
      });
    }
    return this;
  }

  emit(type: CredentialEventType, extra: Record<string, unknown> = {}): this {
    this.pending.push({ type, extra });
    return this;
  }

  /** No login, challenge, session or sync any more, until an update or refresh logs in again. */
  disable(): this {
    return this.moveTo('DISABLED', { isActive: false, mfa: null, session: null, step: null, nextSyncAt: null }).emit('credential.disabled');
  }

  /** A new login: whatever challenge or session came from the old one is void. */
  startLogin(detail: 'DATA_EXTRACTION_IN_PROGRESS' | 'PROVIDER_WEBSITE_INACCESSIBLE' = 'DATA_EXTRACTION_IN_PROGRESS', message?: string): this {
    const fields = {
      isActive: true,
      mfa: null,
      session: null,
      nextSyncAt: null,
      step: { id: this.env.newId('step'), kind: 'login', requestedAt: this.env.now.toISOString() },
    } as const;
    return this.moveTo(detail, fields, message);
  }

  /**
   * The event names the challenge that ended: the credential's `mfa` is gone by then. By default the open one;
   * a challenge the provider opened and ended in one answer (a code asked for with an expiry already past) is new.
   */
  timeOut(challengeId = this.before.mfa?.challengeId): this {
    return this.moveTo('MULTI_FACTOR_AUTHENTICATION_TIMED_OUT', { mfa: null, step: null }).emit('credential.mfa.timed_out', { challengeId });
  }

  /**
   * The stored session no longer works: an MFA session needs a person; a plain one just needs a new login.
   * `reason`: it reached its end (`EXPIRED`), or the provider stopped honouring it before that (`REVOKED`).
   */
  loseSession(reason: SessionLoss): this {
    if (!this.before.session?.isMfa) return this.startLogin();
    return this.moveTo('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', { session: null, nextSyncAt: null }).emit(
      'credential.mfa.refresh_required',
      { reason },
    );
  }

  newChallenge(methods: OfferedMethod[], providerExpiresAt: string | null): Challenge {
    const { now, config } = this.env;
    const ours = new Date(now.getTime() + config.mfaChallengeTtlSeconds * 1000).toISOString();
    return {
      challengeId: this.env.newId('challenge'),
      stage: 'METHOD_SELECTION',
      availableMethods: methods.map((method) => ({
        id: this.env.newId('method'),
        type: method.type,
        destination: method.destination,
        providerMethodId: method.id,
      })),
      selectedMethodId: null,
      codeLength: null,
      expiresAt: earliest(ours, providerExpiresAt),
      attemptsRemaining: config.mfaMaxAttempts,
    };
  }

  nextSyncAt(): string {
    return this.inSeconds(this.env.config.syncIntervalSeconds);
  }

  nextLoginRetryAt(): string {
    return this.inSeconds(this.env.config.providerOutageRetrySeconds);
  }

  private inSeconds(seconds: number): string {
    return new Date(this.env.now.getTime() + seconds * 1000).toISOString();
  }

  done(options: { isDeleted?: boolean } = {}): Transition {
    const now = this.env.now.toISOString();
    const credential: CredentialRecord = { ...this.next, version: this.before.version + 1, lastModifiedAt: now, lastModifiedBy: this.env.actor };
    return {
      credential,
      events: this.pending.map(({ type, extra }) => event(type, credential, extra)),
      isDeleted: options.isDeleted ?? false,
    };
  }
}
