import t from 'tap';
import { parseTimerId, timerChanges, workFor } from '../../src/domain/credential-jobs.ts';
import {
  apply,
  create,
  isRefusal,
  isSyncWanted,
  CUSTOMER_RESTARTABLE,
  MAX_CODE_RESENDS,
  PROVIDER_OUTCOME_KINDS,
  STATUS_DETAIL_NAMES,
  STATUS_DETAILS,
  toView,
  TRANSITIONS,
  type CredentialInput,
  type CredentialRecord,
  type InputKind,
  type LoginChange,
  type StatusDetail,
  type Transition,
  type TransitionEnv,
} from '../../src/domain/credential-state.ts';

const NOW = new Date('2026-11-01T12:00:00.000Z');
const inSeconds = (seconds: number) => new Date(NOW.getTime() + seconds * 1000).toISOString();

function env(overrides: Partial<TransitionEnv> = {}): TransitionEnv {
  let counter = 0;
  return {
    now: NOW,
    config: { mfaChallengeTtlSeconds: 600, mfaMaxAttempts: 3, syncIntervalSeconds: 86400, providerOutageRetrySeconds: 3600 },
    actor: 'key_test',
    newId: (kind) => `${kind}-${++counter}`,
    ...overrides,
  };
}

const METHODS = [
  { id: 'p-sms', type: 'SMS' as const, destination: '***-***-1234' },
  { id: 'p-mail', type: 'EMAIL' as const, destination: 'a***@example.com' },
];

/** A record consistent with `detail`: the ids every representative input below refers to. */
function stateIn(detail: StatusDetail, options: { isStepInFlight?: boolean } = {}): CredentialRecord {
  const base = create({ id: 'crd_1', organizationId: 'org_1', providerId: 'prv_1', username: 'u', correlationId: null }, env()).credential;
  const isMfaStage = detail.startsWith('MULTI_FACTOR_AUTHENTICATION_') && STATUS_DETAILS[detail].status === 'CONNECTION_IN_PROGRESS';
  const hasStep =
    detail === 'DATA_EXTRACTION_IN_PROGRESS' ||
    detail === 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED' ||
    (options.isStepInFlight ?? false);
  const stepKind = detail === 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED' ? 'submit_code' : isMfaStage ? 'choose_method' : 'login';
  return {
    ...base,
    status: STATUS_DETAILS[detail].status,
    statusDetail: detail,
    isActive: detail !== 'DISABLED',
    step: hasStep ? { id: 'step-x', kind: stepKind, requestedAt: NOW.toISOString() } : null,
    mfa: isMfaStage
      ? {
          challengeId: 'mfa-x',
          stage: detail === 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' ? 'METHOD_SELECTION' : 'CODE_ENTRY',
          availableMethods: [{ id: 'mth-x', type: 'SMS', destination: '***-***-1234', providerMethodId: 'p-sms' }],
          selectedMethodId: detail === 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' ? null : 'mth-x',
          codeLength: detail === 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' ? null : 6,
          expiresAt: inSeconds(300),
          attemptsRemaining: 3,
        }
      : null,
    session:
      detail === 'LOGIN_AND_DATA_DISCOVERY_SUCCESS'
        ? { id: 'ses-x', obtainedAt: NOW.toISOString(), expiresAt: inSeconds(3600), isMfa: true, warnedAt: null }
        : null,
    // A login out of quick retries waits for its next attempt; a connected credential for its next sync.
    nextSyncAt: detail === 'LOGIN_AND_DATA_DISCOVERY_SUCCESS' ? inSeconds(86400) : detail === 'PROVIDER_WEBSITE_INACCESSIBLE' && !hasStep ? inSeconds(3600) : null,
  };
}

/** One representative input per kind, matching the ids of `stateIn`. */
const REPRESENTATIVE: Record<InputKind, CredentialInput> = {
  connected: { kind: 'connected', stepId: 'step-x', sessionExpiresAt: inSeconds(3600) },
  method_required: { kind: 'method_required', stepId: 'step-x', methods: METHODS, expiresAt: null },
  code_required: { kind: 'code_required', stepId: 'step-x', methods: METHODS, selectedMethodId: 'p-sms', codeLength: 6, expiresAt: null },
  code_rejected: { kind: 'code_rejected', stepId: 'step-x' },
  invalid_credentials: { kind: 'invalid_credentials', stepId: 'step-x', message: 'wrong password' },
  access_limited: { kind: 'access_limited', stepId: 'step-x', message: 'locked' },
  challenge_expired: { kind: 'challenge_expired', stepId: 'step-x' },
  provider_unavailable: { kind: 'provider_unavailable', stepId: 'step-x', message: 'HTTP 503', willRetry: true },
  choose_method: { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: true },
  submit_code: { kind: 'submit_code', challengeId: 'mfa-x', codeLength: 6 },
  refresh: { kind: 'refresh' },
  disable: { kind: 'disable' },
  update: { kind: 'update', correlationId: 'c-1', login: 'changed' },
  delete: { kind: 'delete' },
  challenge_expired_timer: { kind: 'challenge_expired_timer', challengeId: 'mfa-x' },
  session_warning: { kind: 'session_warning', sessionId: 'ses-x' },
  login_retry_due: { kind: 'login_retry_due', dueAt: String(Date.parse(inSeconds(3600))) },
  session_expired: { kind: 'session_expired', sessionId: 'ses-x' },
  synced: { kind: 'synced', sessionId: 'ses-x', sessionExpiresAt: inSeconds(7200) },
  sync_failed: { kind: 'sync_failed', sessionId: 'ses-x' },
  session_invalid: { kind: 'session_invalid', sessionId: 'ses-x', lost: 'REVOKED' },
};


function expectTransition(result: ReturnType<typeof apply>): Transition {
  if (isRefusal(result)) throw new Error(`refused: ${result.refused} ${result.message}`);
  return result;
}

t.test('every allowed transition lands where the table says and emits only what it lists', async (t) => {
  for (const [kind, rule] of Object.entries(TRANSITIONS) as [InputKind, (typeof TRANSITIONS)[InputKind]][]) {
    for (const from of rule.from) {
      // Provider outcomes answer a step in flight; client calls and timers find none.
      const before = stateIn(from, { isStepInFlight: PROVIDER_OUTCOME_KINDS.has(kind) });
      if (kind === 'refresh' && before.step) continue;
      // Expiry and retry timers act only once their time has come.
      const isTimed = kind === 'challenge_expired_timer' || kind === 'session_expired' || kind === 'login_retry_due';
      const when = isTimed ? env({ now: new Date(Date.parse(inSeconds(3600))) }) : env();
      const result = apply(before, REPRESENTATIVE[kind], when);
      t.notOk(isRefusal(result), `${kind} from ${from} is allowed`);
      if (isRefusal(result)) continue;
      const { credential, events } = result;
      t.ok(rule.to.includes(credential.statusDetail), `${kind} from ${from} → ${credential.statusDetail} is in the table`);
      t.equal(credential.status, STATUS_DETAILS[credential.statusDetail].status, 'status follows statusDetail');
      t.equal(credential.version, before.version + 1, 'the version moves on');
      for (const e of events) t.ok(rule.emits.includes(e.type), `${kind} from ${from} may emit ${e.type}`);
      const statusChanged = events.filter((e) => e.type === 'credential.status_changed');
      if (credential.statusDetail !== before.statusDetail && !result.isDeleted) {
        t.equal(statusChanged.length, 1, `${kind} from ${from} announces the status change`);
        t.same(statusChanged[0]?.data.previous, { status: before.status, statusDetail: before.statusDetail });
        t.equal(events[0]?.type, 'credential.status_changed', 'status_changed comes first');
      } else {
        t.equal(statusChanged.length, 0, `${kind} from ${from} changes no status, so announces none`);
      }
      for (const e of events) t.same(e.data.credential, toView(credential), 'events carry the new state');
    }
  }
});

t.test('inputs from states outside the table are refused, except an answer to the step in flight, which ends it', async (t) => {
  for (const [kind, rule] of Object.entries(TRANSITIONS) as [InputKind, (typeof TRANSITIONS)[InputKind]][]) {
    for (const from of STATUS_DETAIL_NAMES.filter((detail) => !rule.from.includes(detail))) {
      const result = apply(stateIn(from, { isStepInFlight: true }), REPRESENTATIVE[kind], env());
      if (PROVIDER_OUTCOME_KINDS.has(kind) && TRANSITIONS.provider_unavailable.from.includes(from)) {
        const ended = expectTransition(result);
        t.equal(ended.credential.step, null, `${kind} from ${from} ends the step`);
        t.ok(TRANSITIONS.provider_unavailable.to.includes(ended.credential.statusDetail), `${kind} from ${from} lands where an unexpected answer does`);
        t.match(ended.credential.statusMessage, /^The provider answered unexpectedly/);
        continue;
      }
      t.ok(isRefusal(result), `${kind} from ${from} is refused`);
      if (!isRefusal(result)) continue;
      const expected = kind === 'disable' ? 'unchanged' : ['choose_method', 'submit_code', 'refresh', 'update', 'delete'].includes(kind) ? 'conflict' : 'stale';
      t.equal(result.refused, expected, `${kind} from ${from} is refused as ${expected}`);
    }
  }
});

t.test('isCustomerActionRequired is derived from SPEC §4 table', async (t) => {
  const actionRequired = STATUS_DETAIL_NAMES.filter((detail) => toView(stateIn(detail)).isCustomerActionRequired);
  t.same(actionRequired.sort(), [
    'INVALID_CREDENTIALS',
    'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID',
    'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
    'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED',
    'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT',
    'OTHER_ACCESS_LIMITATION',
  ]);
});

t.test('create starts a login and emits credential.created only', async (t) => {
  const { credential, events } = create({ id: 'crd_1', organizationId: 'org_1', providerId: 'prv_1', username: 'u', correlationId: 'c' }, env());
  t.match(credential, { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS', version: 1, createdBy: 'key_test' });
  t.equal(credential.step?.kind, 'login');
  t.same(events.map((e) => e.type), ['credential.created']);
});

t.test('the pass_mfa path: method, code, a wrong code, the right code', async (t) => {
  const e = env();
  let credential = stateIn('DATA_EXTRACTION_IN_PROGRESS');
  const types: string[] = [];
  const step = (input: CredentialInput) => {
    const result = expectTransition(apply(credential, input, e));
    credential = result.credential;
    types.push(...result.events.map((event) => event.type));
    return result;
  };

  step({ kind: 'method_required', stepId: 'step-x', methods: METHODS, expiresAt: inSeconds(900) });
  t.equal(credential.mfa?.expiresAt, inSeconds(600), 'our TTL caps a longer provider expiry');
  t.equal(credential.mfa?.stage, 'METHOD_SELECTION');
  const challengeId = credential.mfa?.challengeId ?? '';
  const emailMethod = credential.mfa?.availableMethods[1];
  t.match(emailMethod, { id: /^method-/, type: 'EMAIL', providerMethodId: 'p-mail' });

  step({ kind: 'choose_method', challengeId, methodId: emailMethod?.id ?? '', isResubmission: false });
  t.equal(credential.step?.kind, 'choose_method');
  t.equal(credential.step?.methodId, emailMethod?.id);
  step({ kind: 'code_required', stepId: credential.step?.id ?? '', methods: METHODS, selectedMethodId: 'p-mail', codeLength: 6, expiresAt: inSeconds(300) });
  t.match(credential.mfa, { challengeId, stage: 'CODE_ENTRY', selectedMethodId: emailMethod?.id, codeLength: 6, expiresAt: inSeconds(300) });
  t.equal(credential.step, null);

  step({ kind: 'submit_code', challengeId, codeLength: 6 });
  t.equal(credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  const rejected = step({ kind: 'code_rejected', stepId: credential.step?.id ?? '' });
  t.equal(rejected.events.at(-1)?.data.attemptsRemaining, 2);
  t.equal(credential.mfa?.attemptsRemaining, 2);

  step({ kind: 'submit_code', challengeId, codeLength: 6 });
  step({ kind: 'connected', stepId: credential.step?.id ?? '', sessionExpiresAt: inSeconds(3600) });
  t.match(toView(credential), { status: 'CONNECTION_SUCCESS', mfa: null, mfaSession: { obtainedAt: NOW.toISOString(), expiresAt: inSeconds(3600) } });
  t.same(types, [
    'credential.status_changed',
    'credential.mfa.method_required',
    'credential.status_changed',
    'credential.mfa.code_required',
    'credential.status_changed',
    'credential.status_changed',
    'credential.mfa.code_rejected',
    'credential.status_changed',
    'credential.status_changed',
    'credential.connected',
  ]);
});

t.test('the last wrong code fails the credential', async (t) => {
  let credential = { ...stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED') };
  for (const remaining of [2, 1, 0]) {
    credential = expectTransition(apply(credential, { kind: 'submit_code', challengeId: 'mfa-x', codeLength: 6 }, env())).credential;
    const result = expectTransition(apply(credential, { kind: 'code_rejected', stepId: credential.step?.id ?? '' }, env()));
    credential = result.credential;
    t.equal(result.events.find((e) => e.type === 'credential.mfa.code_rejected')?.data.attemptsRemaining, remaining);
  }
  t.equal(credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID');
  t.equal(credential.mfa, null);
});

t.test('client calls that do not fit are conflicts or invalid', async (t) => {
  const codeRequired = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  t.match(apply(codeRequired, { kind: 'submit_code', challengeId: 'mfa-old', codeLength: 6 }, env()), { refused: 'conflict', param: 'challengeId' });
  t.match(apply(codeRequired, { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: false }, env()), {
    refused: 'conflict',
    param: 'isResubmission',
  });
  const methodRequired = stateIn('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED');
  t.match(apply(methodRequired, { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-nope', isResubmission: false }, env()), {
    refused: 'invalid',
    param: 'methodId',
  });
  t.match(apply(methodRequired, { kind: 'submit_code', challengeId: 'mfa-x', codeLength: 6 }, env()), { refused: 'conflict' }, 'no code before a method');
  const choosing = stateIn('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', { isStepInFlight: true });
  t.match(apply(choosing, { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: false }, env()), {
    refused: 'conflict',
  }, 'single flight');
  t.match(apply(choosing, { kind: 'refresh' }, env()), { refused: 'conflict' }, 'no refresh while a step is in flight');
  const expired = env({ now: new Date(NOW.getTime() + 301_000) });
  t.match(apply(codeRequired, { kind: 'submit_code', challengeId: 'mfa-x', codeLength: 6 }, expired), { refused: 'conflict' }, 'no code after expiresAt');
  t.match(
    apply(methodRequired, { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: false }, expired),
    { refused: 'conflict', message: /expired/ },
    'no method after expiresAt either: its step would send a code for a dead challenge',
  );
  t.match(apply(codeRequired, { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: true }, expired), { refused: 'conflict' }, 'nor a resend');
});

t.test('stale provider outcomes and timers change nothing', async (t) => {
  const submitted = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  t.match(apply(submitted, { kind: 'connected', stepId: 'step-old', sessionExpiresAt: null }, env()), { refused: 'stale' });
  t.match(apply(submitted, { kind: 'challenge_expired_timer', challengeId: 'mfa-x' }, env()), { refused: 'stale' }, 'the code in flight decides');
  const codeRequired = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  t.match(apply(codeRequired, { kind: 'challenge_expired_timer', challengeId: 'mfa-old' }, env()), { refused: 'stale' });
  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  t.match(apply(connected, { kind: 'session_expired', sessionId: 'ses-old' }, env()), { refused: 'stale' });
  t.match(apply(connected, { kind: 'session_expired', sessionId: 'ses-x' }, env()), { refused: 'stale' }, 'a session extended by a sync is not due');
  t.match(apply(codeRequired, { kind: 'challenge_expired_timer', challengeId: 'mfa-x' }, env()), { refused: 'stale' }, 'not before expiresAt');
  const warned = expectTransition(apply(connected, { kind: 'session_warning', sessionId: 'ses-x' }, env())).credential;
  t.match(apply(warned, { kind: 'session_warning', sessionId: 'ses-x' }, env()), { refused: 'stale' }, 'one warning per session');
  const afterTheEnd = env({ now: new Date(NOW.getTime() + 3_601_000) });
  t.match(apply(connected, { kind: 'session_warning', sessionId: 'ses-x' }, afterTheEnd), { refused: 'stale' }, 'no warning fired after the session ended');
});

t.test('an authenticator-app code is asked for, not said to be sent, also after a wrong one', async (t) => {
  const appMethods = [{ id: 'p-app', type: 'APP' as const, destination: null }];
  const loggingIn = stateIn('DATA_EXTRACTION_IN_PROGRESS');
  const asked = expectTransition(apply(loggingIn, { kind: 'code_required', stepId: 'step-x', methods: appMethods, selectedMethodId: 'p-app', codeLength: 6, expiresAt: null }, env()));
  t.match(asked.credential.statusMessage, /authenticator app shows/);
  t.notMatch(asked.credential.statusMessage, /sent/);
  const submitted = { ...asked.credential, statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED' as const, step: { id: 'step-y', kind: 'submit_code' as const, requestedAt: NOW.toISOString() } };
  const wrong = expectTransition(apply(submitted, { kind: 'code_rejected', stepId: 'step-y' }, env()));
  t.match(wrong.credential.statusMessage, /authenticator app shows/);
  const sms = expectTransition(apply(stateIn('DATA_EXTRACTION_IN_PROGRESS'), REPRESENTATIVE.code_required, env()));
  t.match(sms.credential.statusMessage, /^The provider sent a verification code/, 'a texted code is sent');
});

t.test('an authenticator-app code cannot be "sent again"; switching to the app from a texted code can be asked for', async (t) => {
  const methods = [...METHODS, { id: 'p-app', type: 'APP' as const, destination: null }];
  const codeRequired = (selectedMethodId: string) =>
    expectTransition(apply(stateIn('DATA_EXTRACTION_IN_PROGRESS'), { kind: 'code_required', stepId: 'step-x', methods, selectedMethodId, codeLength: 6, expiresAt: null }, env())).credential;
  const onApp = codeRequired('p-app');
  const app = onApp.mfa?.availableMethods.find((method) => method.type === 'APP');
  const again = { kind: 'choose_method' as const, challengeId: onApp.mfa?.challengeId ?? '', methodId: app?.id ?? '', isResubmission: true };
  t.match(apply(onApp, again, env()), { refused: 'conflict', param: 'isResubmission', message: /authenticator app/ });
  const onSms = codeRequired('p-sms');
  const appOfSms = onSms.mfa?.availableMethods.find((method) => method.type === 'APP');
  const toApp = expectTransition(apply(onSms, { kind: 'choose_method', challengeId: onSms.mfa?.challengeId ?? '', methodId: appOfSms?.id ?? '', isResubmission: true }, env()));
  t.equal(toApp.credential.step?.kind, 'choose_method', 'the provider is asked to switch');
});

t.test('a wrong code or a resent code coming back after the deadline times the challenge out', async (t) => {
  const late = env({ now: new Date(NOW.getTime() + 301_000) });
  const submitted = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  const rejected = expectTransition(apply(submitted, { kind: 'code_rejected', stepId: 'step-x' }, late));
  t.equal(rejected.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT');
  t.same(
    rejected.events.map((e) => e.type),
    ['credential.status_changed', 'credential.mfa.code_rejected', 'credential.mfa.timed_out'],
    'the customer answered in time: the code was wrong, then the challenge ended',
  );
  t.match(rejected.events[1]?.data, { attemptsRemaining: 2 }, 'the wrong code counts');
  const resending = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', { isStepInFlight: true });
  const resent = expectTransition(apply(resending, REPRESENTATIVE.code_required, late));
  t.equal(resent.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT');
  t.equal(resent.events.find((e) => e.type === 'credential.mfa.timed_out')?.data.challengeId, 'mfa-x', 'the event names the challenge');

  // A login the provider answers with a code already past its expiry opens and ends a challenge at once.
  const loggingIn = stateIn('DATA_EXTRACTION_IN_PROGRESS');
  const pastDue = { ...REPRESENTATIVE.code_required, expiresAt: new Date(NOW.getTime() - 1000).toISOString() };
  const endedAtOnce = expectTransition(apply(loggingIn, pastDue, env()));
  t.equal(endedAtOnce.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT');
  t.match(endedAtOnce.events.find((e) => e.type === 'credential.mfa.timed_out')?.data, { challengeId: /./ }, 'it names that challenge too (a required field)');
});

t.test('a challenge the provider ends: timed out after the deadline, a new login before it', async (t) => {
  const submitted = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  const late = expectTransition(apply(submitted, REPRESENTATIVE.challenge_expired, env({ now: new Date(NOW.getTime() + 301_000) })));
  t.equal(late.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT');
  t.same(late.events.map((e) => e.type), ['credential.status_changed', 'credential.mfa.timed_out']);

  // The code was used by an attempt whose answer was lost: the customer was in time, so no timed_out.
  const early = expectTransition(apply(submitted, REPRESENTATIVE.challenge_expired, env()));
  t.equal(early.credential.statusDetail, 'DATA_EXTRACTION_IN_PROGRESS');
  t.match(early.credential, { mfa: null, step: { kind: 'login' } });
  t.not(early.credential.step?.id, submitted.step?.id, 'a new step, so the old one is stale');
  t.same(early.events.map((e) => e.type), ['credential.status_changed']);
});

t.test('a sync that extends a warned session warns again before the new end; one that keeps the end does not', async (t) => {
  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const warned = { ...connected, session: { ...connected.session!, warnedAt: NOW.toISOString() } };
  const extended = expectTransition(apply(warned, { kind: 'synced', sessionId: 'ses-x', sessionExpiresAt: inSeconds(7 * 86400) }, env()));
  t.equal(extended.credential.session?.warnedAt, null);
  const kept = expectTransition(apply(warned, { kind: 'synced', sessionId: 'ses-x', sessionExpiresAt: warned.session.expiresAt }, env()));
  t.equal(kept.credential.session?.warnedAt, NOW.toISOString());
});

t.test('a lost session: MFA sessions need a person, plain ones log in again', async (t) => {
  const mfa = expectTransition(apply(stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS'), REPRESENTATIVE.session_invalid, env()));
  t.equal(mfa.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED');
  t.same(mfa.events.map((e) => e.type), ['credential.status_changed', 'credential.mfa.refresh_required']);
  const plainState = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const plain = expectTransition(
    apply({ ...plainState, session: { ...(plainState.session as NonNullable<CredentialRecord['session']>), isMfa: false } }, REPRESENTATIVE.session_invalid, env()),
  );
  t.equal(plain.credential.statusDetail, 'DATA_EXTRACTION_IN_PROGRESS');
  t.equal(plain.credential.step?.kind, 'login');
  t.same(plain.events.map((e) => e.type), ['credential.status_changed']);
});

t.test('a session the provider refuses at its end expired; before that, it was revoked', async (t) => {
  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const end = Date.parse(connected.session?.expiresAt ?? '');
  t.ok(Number.isFinite(end), 'the session has an end');
  const refusedWithin = (msBeforeEnd: number) => {
    const now = new Date(end - msBeforeEnd);
    const result = expectTransition(apply(connected, REPRESENTATIVE.session_invalid, env({ now })));
    return result.events.find((e) => e.type === 'credential.mfa.refresh_required')?.data.reason;
  };
  t.equal(refusedWithin(500), 'EXPIRED', 'half a second before its end');
  t.equal(refusedWithin(-2_000), 'EXPIRED', 'after its end');
  t.equal(refusedWithin(60_000), 'REVOKED', 'a minute before its end');
});

t.test('provider outages: a login shows INACCESSIBLE while it retries; an MFA step keeps its stage', async (t) => {
  const retrying = expectTransition(apply(stateIn('DATA_EXTRACTION_IN_PROGRESS'), REPRESENTATIVE.provider_unavailable, env()));
  t.equal(retrying.credential.statusDetail, 'PROVIDER_WEBSITE_INACCESSIBLE');
  t.equal(retrying.credential.step?.id, 'step-x', 'the same step retries');
  const again = expectTransition(apply(retrying.credential, REPRESENTATIVE.provider_unavailable, env()));
  t.same(again.events, [], 'a second failure announces nothing new');
  const gaveUp = expectTransition(apply(retrying.credential, { ...REPRESENTATIVE.provider_unavailable, willRetry: false } as CredentialInput, env()));
  t.equal(gaveUp.credential.step, null, 'after the last retry a refresh is possible');
  t.equal(gaveUp.credential.statusDetail, 'PROVIDER_WEBSITE_INACCESSIBLE');
  t.equal(gaveUp.credential.nextSyncAt, inSeconds(3600), 'and another login is due in PROVIDER_OUTAGE_RETRY_SECONDS');
  t.same(
    workFor(gaveUp.credential, { sessionWarningSeconds: 600 }).timers.map((timer) => timer.id),
    [`login_retry:crd_1:${Date.parse(inSeconds(3600))}`],
  );
  const dueAt = String(Date.parse(inSeconds(3600)));
  t.match(apply(gaveUp.credential, { kind: 'login_retry_due', dueAt }, env()), { refused: 'stale' }, 'not before its time');
  t.match(apply(gaveUp.credential, { kind: 'login_retry_due', dueAt: String(Number(dueAt) - 1) }, env({ now: new Date(Number(dueAt)) })), { refused: 'stale' }, 'a moved retry');
  const retried = expectTransition(apply(gaveUp.credential, { kind: 'login_retry_due', dueAt }, env({ now: new Date(Number(dueAt)) })));
  t.equal(retried.credential.statusDetail, 'PROVIDER_WEBSITE_INACCESSIBLE', 'the same outage, tried again');
  t.same(retried.events, [], 'announces nothing new');
  t.equal(retried.credential.step?.kind, 'login');
  t.equal(retried.credential.nextSyncAt, null);
  const refreshed = expectTransition(apply(gaveUp.credential, REPRESENTATIVE.refresh, env()));
  t.same(workFor(refreshed.credential, { sessionWarningSeconds: 600 }).timers, [], 'a refresh replaces the pending retry');
  const submitted = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  const codeRetry = expectTransition(apply(submitted, REPRESENTATIVE.provider_unavailable, env()));
  t.equal(codeRetry.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  const codeGaveUp = expectTransition(apply(submitted, { ...REPRESENTATIVE.provider_unavailable, willRetry: false } as CredentialInput, env()));
  t.equal(codeGaveUp.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  t.equal(codeGaveUp.credential.mfa?.attemptsRemaining, 3, 'an unchecked code costs no attempt');
  const gaveUpAs = (detail: StatusDetail, willRetry = false) =>
    expectTransition(apply(stateIn(detail, { isStepInFlight: true }), { ...REPRESENTATIVE.provider_unavailable, willRetry } as CredentialInput, env()));
  const choiceGaveUp = gaveUpAs('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED');
  t.equal(choiceGaveUp.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED');
  t.same(choiceGaveUp.events.map((e) => e.type), ['credential.mfa.method_required'], 'a method choice that sent nothing asks for the method again');
  t.same(gaveUpAs('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', true).events, [], 'not while it retries');
  t.same(gaveUpAs('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED').events, [], 'a resend that failed leaves the code already sent to be used');
  // Past the deadline, retrying or not, the challenge ends: its expiry timer found the step in flight and is gone.
  const afterDeadline = env({ now: new Date(Date.parse(inSeconds(301))) });
  for (const willRetry of [true, false]) {
    const late = expectTransition(apply(submitted, { ...REPRESENTATIVE.provider_unavailable, willRetry } as CredentialInput, afterDeadline));
    t.equal(late.credential.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT', `past the deadline (willRetry ${willRetry})`);
    t.equal(late.credential.step, null);
    t.same(late.events.map((e) => e.type), ['credential.status_changed', 'credential.mfa.timed_out']);
  }
});

t.test('a refresh limited to some states is refused from the others, in the same apply that would commit it', async (t) => {
  const onlyFrom = ['MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'] as const;
  const fromTimedOut = expectTransition(apply(stateIn('MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'), { kind: 'refresh', onlyFrom }, env()));
  t.equal(fromTimedOut.credential.statusDetail, 'DATA_EXTRACTION_IN_PROGRESS');
  // A disable that landed first: the restart must not undo it (unlimited, a refresh from DISABLED is allowed).
  t.match(apply(stateIn('DISABLED'), { kind: 'refresh', onlyFrom }, env()), { refused: 'conflict', message: /DISABLED/ });
  t.notOk(isRefusal(apply(stateIn('DISABLED'), REPRESENTATIVE.refresh, env())));
});

t.test('a refresh of a connection with a provider session syncs it now; without one, or from any other state, it logs in', async (t) => {
  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const synced = expectTransition(apply(connected, REPRESENTATIVE.refresh, env()));
  t.match(synced.credential, { statusDetail: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS', step: null, session: connected.session, nextSyncAt: NOW.toISOString() });
  t.same(synced.events, [], 'nothing to tell: the connection stands');
  t.same(
    workFor(synced.credential, { sessionWarningSeconds: 600 }).timers.find((timer) => timer.kind === 'sync')?.runAt,
    NOW.toISOString(),
    'its sync timer is due now',
  );
  const sessionless = expectTransition(apply({ ...connected, session: null }, REPRESENTATIVE.refresh, env()));
  t.match(sessionless.credential, { statusDetail: 'DATA_EXTRACTION_IN_PROGRESS', step: { kind: 'login' } });
  const failed = expectTransition(apply(stateIn('INVALID_CREDENTIALS'), REPRESENTATIVE.refresh, env()));
  t.match(failed.credential, { statusDetail: 'DATA_EXTRACTION_IN_PROGRESS', step: { kind: 'login' } });
});

t.test('a sync goes to the provider only for the stored session of a working connection, as `synced` would accept', async (t) => {
  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  t.ok(isSyncWanted(connected, 'ses-x'));
  t.notOk(isSyncWanted(connected, 'ses-older'), 'a replaced session');
  t.notOk(isSyncWanted(null, 'ses-x'), 'a deleted credential');
  t.notOk(isSyncWanted({ ...stateIn('DISABLED'), session: connected.session }, 'ses-x'), 'a disabled one keeps no sync going');
  for (const detail of STATUS_DETAIL_NAMES) {
    const record = { ...stateIn(detail), session: connected.session };
    const accepted = !isRefusal(apply(record, { kind: 'synced', sessionId: 'ses-x', sessionExpiresAt: inSeconds(3600) }, env()));
    t.equal(isSyncWanted(record, 'ses-x'), accepted, detail);
  }
});

t.test('the hosted page restarts only failures its visitor can fix, and each of them does restart', async (t) => {
  for (const detail of STATUS_DETAIL_NAMES) {
    const restarted = apply(stateIn(detail), { kind: 'refresh', onlyFrom: CUSTOMER_RESTARTABLE }, env());
    t.equal(!isRefusal(restarted), CUSTOMER_RESTARTABLE.includes(detail), detail);
  }
  t.notOk(CUSTOMER_RESTARTABLE.includes('INVALID_CREDENTIALS'), 'a wrong password is for the integrator to fix');
});

t.test('an update: changed login details log in from anywhere, repeated ones only from a failure; disabling wins', async (t) => {
  const update = (login: LoginChange): CredentialInput => ({ kind: 'update', login });
  for (const detail of STATUS_DETAIL_NAMES) {
    const credential = stateIn(detail);
    const loggingIn = (input: CredentialInput) => {
      const result = apply(credential, input, env());
      return !isRefusal(result) && result.credential.step?.kind === 'login' && result.credential.step.id !== credential.step?.id;
    };
    t.ok(loggingIn(update('changed')), `changed from ${detail}`);
    t.equal(loggingIn(update('repeated')), STATUS_DETAILS[detail].status === 'CONNECTION_FAILURE', `repeated from ${detail}`);
    t.notOk(loggingIn(update('untouched')), `untouched from ${detail}`);
    t.equal(loggingIn({ kind: 'update', login: 'untouched', isEnabled: true }), !credential.isActive, `enabled from ${detail}`);
    const disabling = apply(credential, { kind: 'update', login: 'changed', isEnabled: false }, env());
    const disabled = isRefusal(disabling) ? credential : disabling.credential;
    t.match(disabled, { statusDetail: 'DISABLED', step: null }, `changed and disabled from ${detail}: disabled, no login`);
    const unchanged = (input: CredentialInput) => isRefusal(apply(credential, input, env())) && (apply(credential, input, env()) as { refused: string }).refused === 'unchanged';
    const sameDetails = { kind: 'update', username: credential.username, correlationId: credential.correlationId } as const;
    t.equal(unchanged({ ...sameDetails, login: 'repeated' }), STATUS_DETAILS[detail].status !== 'CONNECTION_FAILURE', `the same details from ${detail}: nothing to commit unless a login is due`);
    t.equal(unchanged({ kind: 'update', login: 'untouched', isEnabled: false }), detail === 'DISABLED', `disabling from ${detail}`);
    t.notOk(unchanged({ ...sameDetails, login: 'untouched', correlationId: 'another' }), `a new correlationId from ${detail} is a change`);
  }
});

t.test('a challenge\'s code is sent again at most MAX_CODE_RESENDS times', async (t) => {
  const resend = { kind: 'choose_method', challengeId: 'mfa-x', methodId: 'mth-x', isResubmission: true } as const;
  const firstChoice = expectTransition(apply(stateIn('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'), { ...resend, methodId: 'mth-x' }, env())).credential;
  t.equal(firstChoice.mfa?.resends, undefined, 'isResubmission on the first choice sends the first code: not a resend');
  let credential = stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  for (let sent = 1; sent <= MAX_CODE_RESENDS; sent += 1) {
    credential = expectTransition(apply(credential, resend, env())).credential;
    t.equal(credential.mfa?.resends, sent);
    const stepId = credential.step?.id ?? '';
    const outcome = { kind: 'code_required', stepId, methods: METHODS, selectedMethodId: 'p-sms', codeLength: 6, expiresAt: null } as const;
    credential = expectTransition(apply(credential, outcome, env())).credential;
    t.equal(credential.mfa?.resends, sent, 'the provider\'s answer keeps the count');
  }
  t.match(apply(credential, resend, env()), { refused: 'conflict', param: 'isResubmission', message: /sent again 5 times/ });
  t.match(expectTransition(apply(credential, { kind: 'submit_code', challengeId: 'mfa-x', codeLength: 6 }, env())).credential, { step: { kind: 'submit_code' } }, 'a code can still be sent');
  t.notOk('resends' in (toView(credential).mfa ?? {}), 'the count is not shown');
});

t.test('workFor: the step and timers each state calls for, with deterministic ids', async (t) => {
  const config = { sessionWarningSeconds: 600 };
  const kinds = (credential: CredentialRecord) => {
    const work = workFor(credential, config);
    return [...(work.step ? ['step'] : []), ...work.timers.map((timer) => timer.kind)];
  };
  t.same(kinds(stateIn('DATA_EXTRACTION_IN_PROGRESS')), ['step']);
  t.same(kinds(stateIn('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED')), ['challenge_expiry']);
  t.same(kinds(stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED')), ['step', 'challenge_expiry']);
  t.same(kinds(stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS')), ['session_warning', 'session_expiry', 'sync']);
  t.same(kinds(stateIn('MULTI_FACTOR_AUTHENTICATION_TIMED_OUT')), []);
  t.same(workFor(stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'), config), workFor(stateIn('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'), config));
  t.notOk(workFor(stateIn('DATA_EXTRACTION_IN_PROGRESS'), config).step?.jobId.includes(':'), 'BullMQ ids have no colon');
  for (const timer of workFor(stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS'), config).timers) {
    t.same(parseTimerId(timer.id), { kind: timer.kind, credentialId: timer.credentialId, ref: timer.ref }, 'a timer id names what it fires');
  }
  t.equal(parseTimerId('challenge_expiry:crd_1'), null, 'an id with a part missing names nothing');
  t.equal(parseTimerId('reminder:crd_1:mfa_1'), null, 'an unknown kind names nothing');
  t.equal(parseTimerId('sync:crd_1:ses:extra'), null, 'an id with a part too many names nothing');

  const connected = stateIn('LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const warning = workFor(connected, config).timers.find((timer) => timer.kind === 'session_warning');
  t.equal(warning?.runAt, inSeconds(3000), 'warning sessionWarningSeconds ahead of the expiry');
  const short = workFor(connected, { sessionWarningSeconds: 86400 }).timers.find((timer) => timer.kind === 'session_warning');
  t.equal(short?.runAt, NOW.toISOString(), 'clamped to when the session was obtained');
  t.same(
    workFor(connected, { sessionWarningSeconds: 0 }).timers.map((timer) => timer.kind),
    ['session_expiry', 'sync'],
    'SESSION_WARNING_SECONDS=0: no warning (it would come with the end)',
  );

  const timersOf = (credential: CredentialRecord) => workFor(credential, config).timers;
  const expired = expectTransition(apply(connected, REPRESENTATIVE.session_invalid, env())).credential;
  t.same(timerChanges(timersOf(connected), timersOf(expired)), { added: [], removed: timersOf(connected) }, 'every timer of the lost session goes');
  t.same(timerChanges(timersOf(connected), timersOf(connected)), { added: [], removed: [] }, 'an unchanged state changes no timer');
  const synced = { ...connected, nextSyncAt: inSeconds(7200) };
  const moved = timerChanges(timersOf(connected), timersOf(synced));
  t.same(moved.removed, [], 'a moved timer keeps its id');
  t.same(moved.added.map((timer) => [timer.kind, timer.runAt]), [['sync', inSeconds(7200)]], 'and is written again with its new time');
});
