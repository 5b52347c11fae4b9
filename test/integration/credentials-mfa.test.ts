import t from 'tap';
import type { CredentialView } from '../../src/domain/credential-state.ts';
import { call, createCredential, describe, eventsOf, hasDetail, waitForCredential, type CallResult } from '../credentials-helper.ts';
import { buildStack, dumpKeys, type TestStack } from '../helper.ts';

const WAIT = { prefer: 'wait=5' };
const SUCCESS = 'LOGIN_AND_DATA_DISCOVERY_SUCCESS';

function mfaOf(credential: CredentialView) {
  if (!credential.mfa) throw new Error(`no open challenge: ${JSON.stringify(credential)}`);
  return credential.mfa;
}

async function chooseFirstMethod(stack: TestStack, credential: CredentialView): Promise<CallResult<CredentialView>> {
  const mfa = mfaOf(credential);
  return call<CredentialView>(
    stack,
    'PUT',
    `/plug/credentials/${credential.id}/verificationMethod`,
    { challengeId: mfa.challengeId, methodId: mfa.availableMethods[0]?.id },
    WAIT,
  );
}

async function submitCode(stack: TestStack, credential: CredentialView, code: string, headers: Record<string, string> = WAIT) {
  return call<CredentialView>(stack, 'PUT', `/plug/credentials/${credential.id}/oneTimePasscode`, { challengeId: mfaOf(credential).challengeId, code }, headers);
}

/** Logs a pass_mfa-like credential in through the API: method, then the right code. */
async function connectWithMfa(stack: TestStack, password: string): Promise<CredentialView> {
  const created = await createCredential(stack, password);
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const codeRequired = (await chooseFirstMethod(stack, asked)).body;
  const done = await submitCode(stack, codeRequired, '123456');
  if (done.body.statusDetail !== SUCCESS) throw new Error(`not connected: ${JSON.stringify(done.body)}`);
  return done.body;
}

t.test('pass_mfa: method, code, a wrong code, the right code, in the event log in order', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const mfa = mfaOf(asked);
  t.match(asked, { status: 'CONNECTION_IN_PROGRESS', isCustomerActionRequired: true });
  t.match(mfa, { challengeId: /^mfa_/, stage: 'METHOD_SELECTION', selectedMethodId: null, attemptsRemaining: 3 });
  t.same(mfa.availableMethods.map((method) => method.type), ['SMS', 'CALL', 'EMAIL']);
  t.match(mfa.availableMethods[0], { id: /^mth_/, destination: /^\*\*\*-\*\*\*-\d{4}$/ });

  t.equal((await submitCode(stack, asked, '123456')).statusCode, 409, 'no code before a method is chosen');
  const stale = await call(stack, 'PUT', `/plug/credentials/${asked.id}/verificationMethod`, {
    challengeId: 'mfa_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    methodId: mfa.availableMethods[0]?.id,
  });
  t.match(stale, { statusCode: 409, body: { errors: [{ type: 'conflict', param: 'challengeId' }] } });
  const unknownMethod = await call(stack, 'PUT', `/plug/credentials/${asked.id}/verificationMethod`, {
    challengeId: mfa.challengeId,
    methodId: 'mth_aaaaaaaaaaaaaaaaaaaaaaaaaa',
  });
  t.match(unknownMethod, { statusCode: 400, body: { errors: [{ param: 'methodId' }] } });

  const chosen = await chooseFirstMethod(stack, asked);
  t.equal(chosen.statusCode, 202);
  t.equal(chosen.headers['preference-applied'], 'wait=5');
  t.match(chosen.body, { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', mfa: { challengeId: mfa.challengeId, stage: 'CODE_ENTRY', codeLength: 6 } });
  t.equal(chosen.body.mfa?.selectedMethodId, mfa.availableMethods[0]?.id);

  const wrong = await submitCode(stack, chosen.body, '000000');
  t.match(wrong, { statusCode: 202, body: { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', mfa: { attemptsRemaining: 2 } } });
  const right = await submitCode(stack, wrong.body, '123456');
  t.match(right.body, { status: 'CONNECTION_SUCCESS', statusDetail: SUCCESS, mfa: null, isAccessible: true });
  t.ok(right.body.mfaSession?.obtainedAt && right.body.mfaSession.expiresAt, 'the provider session is recorded (not its content)');
  t.equal((await submitCode(stack, wrong.body, '123456')).statusCode, 409, 'the challenge is over');

  const events = await eventsOf(stack, created.id);
  t.same(describe(events), [
    'created',
    '→ MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
    'mfa.method_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'mfa.code_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'mfa.code_rejected',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
    `→ ${SUCCESS}`,
    'connected',
  ]);
  const byType = (type: string) => events.find((event) => event.type === type);
  t.equal(byType('credential.mfa.code_required')?.data.expiresAt, chosen.body.mfa?.expiresAt);
  t.equal(byType('credential.mfa.code_rejected')?.data.attemptsRemaining, 2);
  t.same(byType('credential.status_changed')?.data.previous, { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' });
});

t.test('the last wrong code fails the credential', async (t) => {
  const stack = await buildStack(t, { env: { MFA_MAX_ATTEMPTS: '2' } });
  const created = await createCredential(stack, 'pass_mfa_code');
  let credential = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  t.equal(credential.mfa?.attemptsRemaining, 2);
  credential = (await submitCode(stack, credential, '111111')).body;
  t.equal(credential.mfa?.attemptsRemaining, 1);
  credential = (await submitCode(stack, credential, '222222')).body;
  t.match(credential, { status: 'CONNECTION_FAILURE', statusDetail: 'MULTI_FACTOR_AUTHENTICATION_CODE_INVALID', mfa: null });
});

t.test('20 concurrent right codes: one is accepted, 19 get 409, one credential.connected', async (t) => {
  const stack = await buildStack(t);
  const created = await createCredential(stack, 'pass_mfa_code');
  const credential = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  const answers = await Promise.all(Array.from({ length: 20 }, () => submitCode(stack, credential, '123456', {})));
  const statuses = answers.map((answer) => answer.statusCode).sort();
  t.same(statuses, [202, ...Array<number>(19).fill(409)]);
  await waitForCredential(stack, created.id, hasDetail(SUCCESS));
  const types = (await eventsOf(stack, created.id)).map((event) => event.type);
  t.equal(types.filter((type) => type === 'credential.connected').length, 1);
  t.equal(types.filter((type) => type === 'credential.status_changed').length, 3, 'CODE_REQUIRED, SUBMITTED, SUCCESS: once each');
});

t.test('an unanswered challenge times out within 1 s of expiresAt; refresh starts a new one', async (t) => {
  const stack = await buildStack(t, { env: { MFA_CHALLENGE_TTL_SECONDS: '2' } });
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const expiresAt = Date.parse(mfaOf(asked).expiresAt);
  t.ok(expiresAt - Date.parse(asked.lastModifiedAt) <= 2000, 'MFA_CHALLENGE_TTL_SECONDS caps the provider’s 10 minutes');

  const timedOut = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'), 5000);
  t.match(timedOut, { status: 'CONNECTION_FAILURE', mfa: null, isCustomerActionRequired: true });
  const event = (await eventsOf(stack, created.id)).find((e) => e.type === 'credential.mfa.timed_out');
  const lateness = Date.parse(event?.timestamp ?? '') - expiresAt;
  t.ok(lateness >= 0 && lateness <= 1000, `timed_out ${lateness} ms after expiresAt`);
  t.equal((await chooseFirstMethod(stack, asked)).statusCode, 409, 'the old challenge is gone');

  const refreshed = await call<CredentialView>(stack, 'POST', `/plug/credentials/${created.id}/refresh`, undefined, WAIT);
  t.equal(refreshed.statusCode, 202);
  t.match(refreshed.body, { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' });
  t.not(refreshed.body.mfa?.challengeId, mfaOf(asked).challengeId, 'a new challenge');
  const again = await call(stack, 'POST', `/plug/credentials/${created.id}/refresh`);
  t.equal(again.statusCode, 202, 'refresh also abandons an open challenge');
});

t.test('pass_mfa_short: session_expiring, then refresh_required when the session ends', async (t) => {
  const stack = await buildStack(t, { env: { SANDBOX_SHORT_SESSION_SECONDS: '3', SESSION_WARNING_SECONDS: '2' } });
  const connected = await connectWithMfa(stack, 'pass_mfa_short');
  const sessionEnd = Date.parse(connected.mfaSession?.expiresAt ?? '');
  t.ok(sessionEnd - Date.now() <= 3000, 'the short session');
  const ended = await waitForCredential(stack, connected.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 6000);
  t.match(ended, { status: 'CONNECTION_FAILURE', mfaSession: null, isAccessible: false });
  const events = await eventsOf(stack, connected.id);
  t.same(describe(events).slice(-3), ['mfa.session_expiring', '→ MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'mfa.refresh_required']);
  const warning = events.find((event) => event.type === 'credential.mfa.session_expiring');
  t.equal(warning?.data.expiresAt, connected.mfaSession?.expiresAt);
  t.ok(Date.parse(warning?.timestamp ?? '') <= sessionEnd - 1000, 'the warning comes ahead of the end');
  const ending = events.find((event) => event.type === 'credential.mfa.refresh_required');
  t.ok(Math.abs(Date.parse(ending?.timestamp ?? '') - sessionEnd) <= 1000, 'the end comes on time');
});

t.test('sandbox helpers: expireSession ends the session now, revokeSession is found by the next sync', async (t) => {
  const stack = await buildStack(t, { env: { SYNC_INTERVAL_SECONDS: '1' } });
  const expiring = await connectWithMfa(stack, 'pass_mfa');
  const expired = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${expiring.id}/expireSession`);
  t.match(expired, { statusCode: 200, body: { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED' } });
  t.equal((await call(stack, 'POST', `/plug/sandbox/credentials/${expiring.id}/expireSession`)).statusCode, 409, 'no session left');

  const revoking = await connectWithMfa(stack, 'pass_mfa');
  const accountsBefore = await call<{ data: { id: string }[] }>(stack, 'GET', `/plug/credentials/${revoking.id}/accounts`);
  const synced = await waitForCredential(stack, revoking.id, (c) => c.lastSyncedAt !== revoking.lastSyncedAt, 4000);
  t.equal(synced.statusDetail, SUCCESS, 'a sync with a live session changes nothing but the sync times');
  const accountsAfter = await call<{ data: { id: string }[] }>(stack, 'GET', `/plug/credentials/${revoking.id}/accounts`);
  t.same(accountsAfter.body.data.map((a) => a.id), accountsBefore.body.data.map((a) => a.id), 'account ids are stable across syncs');

  const revoked = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${revoking.id}/revokeSession`);
  t.match(revoked, { statusCode: 200, body: { statusDetail: SUCCESS } }, 'nothing shows until the next sync');
  await waitForCredential(stack, revoking.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 4000);
  t.same(describe(await eventsOf(stack, revoking.id)).slice(-2), ['→ MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'mfa.refresh_required']);

  const plain = await createCredential(stack, 'pass_good');
  await waitForCredential(stack, plain.id, hasDetail(SUCCESS));
  await call(stack, 'POST', `/plug/sandbox/credentials/${plain.id}/revokeSession`);
  const deadline = Date.now() + 4000;
  let connections = 1;
  while (connections < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    connections = (await eventsOf(stack, plain.id)).filter((event) => event.type === 'credential.connected').length;
  }
  t.equal(connections, 2, 'a session without MFA is replaced by logging in again, no customer needed');
  t.notOk(describe(await eventsOf(stack, plain.id)).includes('mfa.refresh_required'));
});

t.test('Redis holds no provider password, code or session in clear text', async (t) => {
  const stack = await buildStack(t);
  const wrongCode = 'wrong-code-5d2e9';
  const created = await createCredential(stack, 'pass_mfa_code');
  const codeRequired = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  const rejected = await submitCode(stack, codeRequired, wrongCode);
  const pending = await submitCode(stack, rejected.body, '123456', {});
  t.equal(pending.statusCode, 202);
  await waitForCredential(stack, created.id, hasDetail(SUCCESS));
  const inFlight = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, inFlight.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));

  const { redis, keys, secrets } = stack.app.services.ctx;
  const sessionJar = await secrets.read(keys.org(stack.org.organizationId).credentialSecrets(created.id), 'session');
  const loginJar = await secrets.read(keys.org(stack.org.organizationId).credentialSecrets(inFlight.id), 'loginState');
  const cookieValues = [sessionJar, loginJar].flatMap((jar) => [...(jar ?? '').matchAll(/"value":"([^"]{16,})"/g)].map((match) => match[1] ?? ''));
  t.equal(cookieValues.length, 2, 'the sealed session and login state hold the provider cookies');

  const dump = await dumpKeys(redis, [`${keys.prefix}:*`, `${keys.queuePrefix}*`]);
  t.ok(dump.includes(created.id), 'the dump holds the data (sanity check)');
  t.notMatch(dump, /unhandled type/);
  t.notOk(dump.includes('pass_mfa'), 'no provider password');
  t.notOk(dump.includes(wrongCode), 'no submitted code');
  t.notOk(dump.includes('"123456"'), 'not the right code either');
  for (const cookie of cookieValues) t.notOk(dump.includes(cookie), 'no provider cookie');
});
