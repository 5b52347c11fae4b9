import t from 'tap';
import { build, createOrganization } from '../helper.ts';
import { challengeFor, enrollApp, enrolledAdmin, eventTypesOf, login, manualClock, sessionHeaders, STEP_MS, totpCode, verify } from '../dashboard-helper.ts';

t.test('a recovery code signs in once, turns two-factor off and ends other sessions', async (t) => {
  const { app, org, clock, headers, recoveryCodes } = await enrolledAdmin(t);
  const [firstCode] = recoveryCodes;

  const verified = await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: firstCode!.toUpperCase() });
  t.equal(verified.statusCode, 200, 'case and dashes do not matter');
  t.match(verified.json(), { twoFactorDisabled: true, message: /recovery code.*two-factor authentication is now off/i });
  const newHeaders = { authorization: `Bearer ${verified.json().session.token}` };

  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers })).statusCode, 401, 'the older session has ended');
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers: newHeaders })).statusCode, 200);
  const view = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers: newHeaders, payload: { password: org.password } });
  t.same(view.json(), { isEnabled: false, method: null, phoneNumber: null, backupPhoneNumber: null, recoveryCodesRemaining: 0 });
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled', 'user.two_factor.recovery_code_used', 'user.two_factor.disabled']);
  t.ok((await login(app, org.email, org.password)).json().session, 'the password alone signs in now');

  await enrollApp(app, newHeaders, org, clock.now());
  const reused = await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: firstCode });
  t.equal(reused.statusCode, 401, 'a used recovery code does not work again, nor do codes of earlier settings');
  const other = await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: recoveryCodes[1] });
  t.equal(other.statusCode, 401, 'recovery codes of the earlier settings are gone');
});

t.test('new recovery codes replace the old ones', async (t) => {
  const { app, org, headers, recoveryCodes } = await enrolledAdmin(t);
  const regenerated = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/recovery-codes', headers, payload: { password: org.password } });
  t.equal(regenerated.statusCode, 200);
  const fresh = regenerated.json().recoveryCodes as string[];
  t.equal(fresh.length, 10);
  t.equal((await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: recoveryCodes[0] })).statusCode, 401);
  t.equal((await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: fresh[0] })).statusCode, 200);
});

t.test('viewing and changing settings needs the right password', async (t) => {
  const { app, org, headers } = await enrolledAdmin(t);
  for (const path of ['view', 'disable', 'recovery-codes', 'app']) {
    const response = await app.inject({ method: 'POST', url: `/dashboard/me/two-factor/${path}`, headers, payload: { password: `${org.password}x` } });
    t.equal(response.statusCode, 403, path);
    t.equal(response.json().errors[0].details.errorId, 'PB_PASSWORD_INCORRECT', path);
    t.notMatch(response.body, /recoveryCodes|isEnabled/, `${path} reveals nothing`);
  }
  const sms = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/sms',
    headers,
    payload: { password: 'wrong-password', phoneNumber: '+15551234567' },
  });
  t.equal(sms.statusCode, 403);
  t.ok((await login(app, org.email, org.password)).json().twoFactorRequired, 'still on');

  const disabled = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/disable', headers, payload: { password: org.password } });
  t.same(disabled.json(), { isEnabled: false });
  t.ok((await login(app, org.email, org.password)).json().session, 'off after the right password');
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled', 'user.two_factor.disabled']);
});

t.test("nobody, admins included, can view or change another user's two-factor settings", async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const adminHeaders = await sessionHeaders(app, org.email, org.password);
  const member = { ...org, email: `member-${org.email}`, password: 'member-password-1' };
  const created = await app.inject({
    method: 'POST',
    url: '/dashboard/users',
    headers: adminHeaders,
    payload: { email: member.email, password: member.password, role: 'member' },
  });
  t.equal(created.statusCode, 201);
  const memberId = created.json().id as string;
  const memberHeaders = await sessionHeaders(app, member.email, member.password);
  await enrollApp(app, memberHeaders, member, clock.now());

  const adminView = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers: adminHeaders, payload: { password: org.password } });
  t.equal(adminView.json().isEnabled, false, "the admin sees only their own settings");
  const withUserId = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/disable',
    headers: adminHeaders,
    payload: { password: org.password, userId: memberId },
  });
  t.equal(withUserId.statusCode, 400, 'there is no way to name another user');
  for (const url of [`/dashboard/users/${memberId}/two-factor`, `/dashboard/users/${memberId}/two-factor/view`, `/dashboard/users/${memberId}/two-factor/disable`]) {
    const response = await app.inject({ method: 'POST', url, headers: adminHeaders, payload: { password: org.password } });
    t.equal(response.statusCode, 404, url);
  }
  const listed = await app.inject({ method: 'GET', url: '/dashboard/users', headers: adminHeaders });
  t.notMatch(listed.body, /twoFactor|recovery|APP/i, 'the user list says nothing about two-factor');

  await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/disable', headers: adminHeaders, payload: { password: org.password } });
  t.ok((await login(app, member.email, member.password)).json().twoFactorRequired, "the member's settings are untouched");
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers: memberHeaders })).json().user.id, memberId);
});

t.test('malformed codes get 400, never 500, and cost no attempt', async (t) => {
  const { app, org, clock, otpauthUri, headers } = await enrolledAdmin(t);
  const challengeId = await challengeFor(app, org);
  const malformedCodes: unknown[] = ['12345', '1234567', 'abcdef', '12345a', '', ' 123456', '１２３４５６', 'x'.repeat(10 * 1024), 123456, null, ['123456']];
  for (const code of malformedCodes) {
    const label = typeof code === 'string' ? `"${code.slice(0, 12)}" (${code.length} chars)` : JSON.stringify(code);
    const response = await verify(app, { challengeId, code });
    t.equal(response.statusCode, 400, `login: ${label}`);
    t.equal(response.json().errors[0].type, 'invalidParameter');
    for (const path of ['app/confirm', 'sms/confirm']) {
      const confirm = await app.inject({ method: 'POST', url: `/dashboard/me/two-factor/${path}`, headers, payload: { code } });
      t.equal(confirm.statusCode, 400, `${path}: ${label}`);
    }
  }
  for (const recoveryCode of ['', 'short', 'x'.repeat(10 * 1024), 'uuuu-uuuu-uuuu-uuuu', '<script>alert(1)</script>xx', 42]) {
    t.equal((await verify(app, { challengeId, recoveryCode })).statusCode, 400, `recovery code ${String(recoveryCode).slice(0, 12)}`);
  }
  t.equal((await verify(app, { challengeId })).statusCode, 400, 'neither code nor recoveryCode');
  t.equal((await verify(app, { challengeId, code: '123456', recoveryCode: 'abcd-efgh-jkmn-pqrs' })).statusCode, 400, 'both');
  t.equal((await verify(app, { challengeId: 'chl_nope', code: '123456' })).statusCode, 400, 'malformed challenge id');
  t.equal((await verify(app, { challengeId, code: '123456', extra: true })).statusCode, 400, 'unknown field');

  const right = await verify(app, { challengeId, code: totpCode(otpauthUri, clock.now()) });
  t.equal(right.statusCode, 200, 'the challenge survived all of that');
});

t.test('an enrollment started while another was being confirmed cannot be confirmed once two-factor is on', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const { twoFactor, organizations, ctx } = app.services;
  const user = (await organizations.getUser(org.organizationId, org.userId))!;
  const first = await twoFactor.startAppEnrollment(user, org.password);
  const confirm = (otpauthUri: string) =>
    app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app/confirm', headers, payload: { code: totpCode(otpauthUri, clock.now()) } });

  // The second enrollment reads "two-factor is off"; the first is confirmed before that read is acted on.
  const recordKey = ctx.keys.org(org.organizationId).twoFactor(org.userId).record;
  const get = ctx.redis.get.bind(ctx.redis);
  let firstConfirmed: Awaited<ReturnType<typeof confirm>> | undefined;
  t.teardown(() => {
    ctx.redis.get = get;
  });
  ctx.redis.get = (async (key: string) => {
    const value = await get(key);
    if (key === recordKey && !firstConfirmed) firstConfirmed = await confirm(first.otpauthUri);
    return value;
  }) as typeof ctx.redis.get;
  const second = await twoFactor.startAppEnrollment(user, org.password);
  ctx.redis.get = get;
  t.equal(firstConfirmed?.statusCode, 200, 'two-factor went on while the second enrollment started');
  const { recoveryCodes } = firstConfirmed!.json() as { recoveryCodes: string[] };

  clock.advance(STEP_MS);
  const reconfirmed = await confirm(second.otpauthUri);
  t.equal(reconfirmed.statusCode, 409, 'changing the method needs two-factor disabled first');
  t.match(reconfirmed.json(), { errors: [{ type: 'conflict', message: /already on; disable it first/ }] });
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled'], 'enabled once');
  clock.advance(STEP_MS);
  const challengeId = await challengeFor(app, org);
  t.equal((await verify(app, { challengeId, code: totpCode(second.otpauthUri, clock.now()) })).statusCode, 401, "the second enrollment's secret signs nobody in");
  t.equal((await verify(app, { challengeId, code: totpCode(first.otpauthUri, clock.now()) })).statusCode, 200, "the first's still does");
  t.equal((await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: recoveryCodes[0] })).statusCode, 200, 'and so do its recovery codes');
});
