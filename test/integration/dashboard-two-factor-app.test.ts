import * as OTPAuth from 'otpauth';
import t from 'tap';
import { build, createOrganization } from '../helper.ts';
import {
  challengeFor,
  enrolledAdmin,
  eventTypesOf,
  login,
  manualClock,
  serviceChallenge,
  sessionHeaders,
  STEP_MS,
  totpCode,
  verify,
} from '../dashboard-helper.ts';

t.test('app enrollment and login with codes from an independent TOTP implementation', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);

  const started = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app', headers, payload: { password: org.password } });
  t.equal(started.statusCode, 200);
  const { secret, otpauthUri, qrCodeSvg } = started.json();
  const parsed = OTPAuth.URI.parse(otpauthUri);
  t.ok(parsed instanceof OTPAuth.TOTP, 'a TOTP URI');
  t.match(parsed, { issuer: 'Plugboard', label: org.email, algorithm: 'SHA1', digits: 6, period: 30 });
  t.equal(parsed.secret.base32, secret, 'the URI carries the secret shown for typing in');
  t.match(qrCodeSvg, /^<svg[\s\S]*<\/svg>\s*$/);

  const wrong = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app/confirm', headers, payload: { code: '000000' } });
  t.equal(wrong.statusCode, 403, 'a wrong first code does not enable anything');
  t.equal(wrong.json().errors[0].details.errorId, 'PB_ENROLLMENT_CODE_INVALID', 'and is no 401: the session stands');
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers })).statusCode, 200, 'still signed in');
  const confirmed = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/app/confirm',
    headers,
    payload: { code: totpCode(otpauthUri, clock.now()) },
  });
  t.equal(confirmed.statusCode, 200);
  const { recoveryCodes } = confirmed.json();
  t.equal(recoveryCodes.length, 10);
  t.equal(new Set(recoveryCodes).size, 10);
  t.match(recoveryCodes[0], /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
  t.equal(confirmed.headers['cache-control'], 'no-store');

  const view = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers, payload: { password: org.password } });
  t.same(view.json(), { isEnabled: true, method: 'APP', phoneNumber: null, backupPhoneNumber: null, recoveryCodesRemaining: 10 });
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled']);

  const again = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app', headers, payload: { password: org.password } });
  t.equal(again.statusCode, 409, 'no second enrollment while two-factor is on');

  const loginResponse = await login(app, org.email, org.password);
  t.equal(loginResponse.statusCode, 200);
  t.notOk(loginResponse.headers['set-cookie'], 'no session cookie before the second factor');
  const { challenge } = loginResponse.json();
  t.match(loginResponse.json(), { twoFactorRequired: true, challenge: { id: /^chl_/, method: 'APP' } });
  t.notOk('destination' in challenge);

  const sameStepAsEnrollment = await verify(app, { challengeId: challenge.id, code: totpCode(otpauthUri, clock.now()) });
  t.equal(sameStepAsEnrollment.statusCode, 401, 'the code that confirmed enrollment cannot log in');

  clock.advance(STEP_MS);
  const code = totpCode(otpauthUri, clock.now());
  const verified = await verify(app, { challengeId: challenge.id, code });
  t.equal(verified.statusCode, 200);
  t.match(verified.json(), { session: { token: /^pbd_/ }, twoFactorDisabled: false });
  t.match(verified.headers['set-cookie'], /^plugboard_session=pbd_/);
  const me = await app.inject({ method: 'GET', url: '/dashboard/me', headers: { authorization: `Bearer ${verified.json().session.token}` } });
  t.equal(me.statusCode, 200);
  t.equal(me.json().user.email, org.email);

  const replay = await verify(app, { challengeId: await challengeFor(app, org), code });
  t.equal(replay.statusCode, 401, 'the same code is refused the second time, even on a new challenge');
  t.equal(replay.json().errors[0].details.errorId, 'PB_TWO_FACTOR_CODE_INVALID');
});

t.test('20 concurrent verify calls with one valid code give exactly one session', async (t) => {
  const { app, org, clock, otpauthUri } = await enrolledAdmin(t);
  const challengeId = await challengeFor(app, org);
  const code = totpCode(otpauthUri, clock.now());
  const responses = await Promise.all(Array.from({ length: 20 }, () => verify(app, { challengeId, code })));
  const statuses = responses.map((response) => response.statusCode);
  t.equal(statuses.filter((status) => status === 200).length, 1, 'one session');
  t.equal(statuses.filter((status) => status === 401).length, 19, 'the rest are refused');
});

t.test('one app code sent at once to 20 login challenges opens one session: a code accepted once never is again', async (t) => {
  const { app, org, clock, otpauthUri } = await enrolledAdmin(t);
  const challenges = await Promise.all(Array.from({ length: 20 }, () => serviceChallenge(app, org)));
  const code = totpCode(otpauthUri, clock.now());
  const responses = await Promise.all(challenges.map((challengeId) => verify(app, { challengeId, code })));
  t.equal(responses.filter((response) => response.statusCode === 200).length, 1);
});

t.test('20 concurrent logins with one recovery code give exactly one session', async (t) => {
  const { app, org, recoveryCodes } = await enrolledAdmin(t);
  const challenges = await Promise.all(Array.from({ length: 20 }, () => serviceChallenge(app, org)));
  const responses = await Promise.all(challenges.map((challengeId) => verify(app, { challengeId, recoveryCode: recoveryCodes[0] })));
  t.equal(responses.filter((response) => response.statusCode === 200).length, 1);
});

t.test('five wrong codes end a challenge', async (t) => {
  const { app, org, clock, otpauthUri } = await enrolledAdmin(t);
  const challengeId = await challengeFor(app, org);
  for (let attempt = 1; attempt <= 5; attempt++) {
    const response = await verify(app, { challengeId, code: '000000' });
    t.equal(response.statusCode, 401);
    t.match(response.json().errors[0].message, attempt < 5 ? `${5 - attempt} attempt` : 'has ended');
  }
  const right = await verify(app, { challengeId, code: totpCode(otpauthUri, clock.now()) });
  t.equal(right.statusCode, 401, 'even the right code no longer works on it');
  t.equal(right.json().errors[0].details.errorId, 'PB_LOGIN_CHALLENGE_INVALID');
  const fresh = await verify(app, { challengeId: await challengeFor(app, org), code: totpCode(otpauthUri, clock.now()) });
  t.equal(fresh.statusCode, 200, 'a new challenge works');
});

t.test('five wrong codes end an enrollment, each a 403 that leaves the session alone', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const started = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app', headers, payload: { password: org.password } });
  const confirm = (code: string) => app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app/confirm', headers, payload: { code } });
  for (let attempt = 1; attempt <= 5; attempt++) {
    const response = await confirm('000000');
    t.equal(response.statusCode, 403);
    t.match(response.json().errors[0], { type: 'forbidden', message: attempt < 5 ? `${5 - attempt} attempt` : /has ended, start the enrollment again/ });
  }
  const right = await confirm(totpCode(started.json().otpauthUri, clock.now()));
  t.equal(right.statusCode, 409, 'even the right code: the enrollment is over');
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers })).statusCode, 200, 'still signed in');
});

t.test('100 consecutive failures lock two-factor login until the password is reset', async (t) => {
  const { app, org, clock, otpauthUri, headers } = await enrolledAdmin(t);
  let lastStatus = 0;
  for (let challenge = 0; challenge < 20; challenge++) {
    const challengeId = await serviceChallenge(app, org);
    for (let attempt = 0; attempt < 5; attempt++) lastStatus = (await verify(app, { challengeId, code: '000000' })).statusCode;
  }
  t.equal(lastStatus, 403, 'the 100th failure locks');
  const locked = await login(app, org.email, org.password);
  t.equal(locked.statusCode, 403, 'the right password no longer leads to a challenge');
  t.equal(locked.json().errors[0].details.errorId, 'PB_TWO_FACTOR_LOCKED');
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled', 'user.two_factor.locked'], 'locked once, audited once');

  const newPassword = `${org.password}-new`;
  const changed = await app.inject({ method: 'POST', url: '/dashboard/me/password', headers, payload: { currentPassword: org.password, newPassword } });
  t.equal(changed.statusCode, 204, 'a session opened before the lock can change the password');
  const challenge = await login(app, org.email, newPassword);
  t.equal(challenge.json().twoFactorRequired, true, 'the lock is lifted; two-factor is still on');
  const verified = await verify(app, { challengeId: challenge.json().challenge.id, code: totpCode(otpauthUri, clock.now()) });
  t.equal(verified.statusCode, 200);
});

t.test('guesses sent at once cannot outrun the limits: five checks per challenge, none past the lock', async (t) => {
  const { app, org, clock, otpauthUri } = await enrolledAdmin(t);
  const { redis, keys } = app.services.ctx;
  const failures = keys.org(org.organizationId).twoFactor(org.userId).consecutiveFailures;
  const errorIdsOf = (responses: { json(): { errors: { details: { errorId: string } }[] } }[]) => responses.map((response) => response.json().errors[0]!.details.errorId);

  const challengeId = await serviceChallenge(app, org);
  const burst = errorIdsOf(await Promise.all(Array.from({ length: 30 }, () => verify(app, { challengeId, code: '000000' }))));
  t.equal(burst.filter((id) => id === 'PB_TWO_FACTOR_CODE_INVALID').length, 5, 'five codes checked');
  t.equal(burst.filter((id) => id === 'PB_LOGIN_CHALLENGE_INVALID').length, 25, 'the others refused unchecked');
  t.equal(await redis.get(failures), '5', 'and only the checked ones counted');

  const openedBefore = await serviceChallenge(app, org);
  const challenges = await Promise.all(Array.from({ length: 10 }, () => serviceChallenge(app, org)));
  await redis.set(failures, '99');
  const atTheLock = await Promise.all(challenges.flatMap((id) => Array.from({ length: 5 }, () => verify(app, { challengeId: id, code: '000000' }))));
  t.same(new Set(errorIdsOf(atTheLock)), new Set(['PB_TWO_FACTOR_LOCKED']));
  t.equal(await redis.get(failures), '100', 'one more code was checked, none after it');
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled', 'user.two_factor.locked'], 'locked once, audited once');
  const right = await verify(app, { challengeId: openedBefore, code: totpCode(otpauthUri, clock.now()) });
  t.equal(right.statusCode, 403, 'the right code on a challenge opened before the lock does not pass it either');
});

t.test('a success resets the consecutive failure count', async (t) => {
  const { app, org, clock, otpauthUri } = await enrolledAdmin(t);
  // 99 failures, as the 100-failure test above produces them one by one.
  await app.services.ctx.redis.set(app.services.ctx.keys.org(org.organizationId).twoFactor(org.userId).consecutiveFailures, '99');
  t.equal((await verify(app, { challengeId: await challengeFor(app, org), code: totpCode(otpauthUri, clock.now()) })).statusCode, 200);
  const challengeId = await challengeFor(app, org);
  for (let attempt = 0; attempt < 5; attempt++) t.equal((await verify(app, { challengeId, code: '000000' })).statusCode, 401, 'not locked');
});

t.test('a password change voids the login challenges opened with the old password', async (t) => {
  const { app, org, clock, otpauthUri, headers } = await enrolledAdmin(t);
  const opened = await challengeFor(app, org);
  const changed = await app.inject({ method: 'POST', url: '/dashboard/me/password', headers, payload: { currentPassword: org.password, newPassword: 'a-new-password' } });
  t.equal(changed.statusCode, 204);
  const stale = await verify(app, { challengeId: opened, code: totpCode(otpauthUri, clock.now()) });
  t.match(stale, { statusCode: 401 });
  t.equal(stale.json().errors[0].details.errorId, 'PB_LOGIN_CHALLENGE_INVALID', 'even the right code: its guesses end with the old password');
  const fresh = await login(app, org.email, 'a-new-password');
  t.equal((await verify(app, { challengeId: fresh.json().challenge.id, code: totpCode(otpauthUri, clock.now()) })).statusCode, 200);
});
