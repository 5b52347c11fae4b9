import t from 'tap';
import { DASHBOARD_SESSION_TTL_SECONDS } from '../../src/services/dashboard-sessions.ts';
import { challengeFor, enrolledAdmin, enrollApp, login, manualClock, sessionHeaders, totpCode, verify } from '../dashboard-helper.ts';
import { build, createOrganization } from '../helper.ts';

t.test('login without two-factor: a session as Bearer token and as a strict HttpOnly cookie', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);

  const response = await login(app, org.email.toUpperCase(), org.password);
  t.equal(response.statusCode, 200, 'emails are case-insensitive');
  const { session } = response.json();
  t.match(session, { token: /^pbd_[A-Za-z0-9_-]{43}$/, expiresAt: String });
  t.equal(response.headers['cache-control'], 'no-store');
  const cookie = String(response.headers['set-cookie']);
  t.equal(cookie, `plugboard_session=${session.token}; Path=/dashboard; Max-Age=${DASHBOARD_SESSION_TTL_SECONDS}; HttpOnly; SameSite=Strict`);

  const viaBearer = await app.inject({ method: 'GET', url: '/dashboard/me', headers: { authorization: `Bearer ${session.token}` } });
  t.equal(viaBearer.statusCode, 200);
  t.match(viaBearer.json(), { user: { id: org.userId, organizationId: org.organizationId, email: org.email, role: 'admin' }, session: { expiresAt: session.expiresAt } });
  t.notMatch(viaBearer.body, /passwordHash|scrypt/);
  const viaCookie = await app.inject({ method: 'GET', url: '/dashboard/me', headers: { cookie: `theme=dark; plugboard_session=${session.token}` } });
  t.equal(viaCookie.statusCode, 200);

  const origin = new URL(app.services.ctx.config.publicUrl).origin;
  const loggedOut = await app.inject({ method: 'POST', url: '/dashboard/logout', headers: { origin, cookie: `plugboard_session=${session.token}` } });
  t.equal(loggedOut.statusCode, 204);
  t.match(String(loggedOut.headers['set-cookie']), /^plugboard_session=; Path=\/dashboard; Max-Age=0; HttpOnly; SameSite=Strict$/);
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers: { authorization: `Bearer ${session.token}` } })).statusCode, 401);
  t.equal((await app.inject({ method: 'POST', url: '/dashboard/logout' })).statusCode, 204, 'logging out twice is fine');
});

t.test("the dashboard's API answers with the pages' security headers", async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const response = await login(app, org.email, org.password);
  t.match(response.headers, { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'content-security-policy': /default-src 'none'/ });
  t.match((await login(app, org.email, 'wrong-password')).headers, { 'x-content-type-options': 'nosniff' }, 'errors too');
});

t.test('the cookie is Secure when the public URL is https', async (t) => {
  const app = await build(t, { env: { PUBLIC_URL: 'https://plugboard.example.com' } });
  const org = await createOrganization(app);
  t.match(String((await login(app, org.email, org.password)).headers['set-cookie']), /; HttpOnly; SameSite=Strict; Secure$/);
});

t.test('wrong passwords and unknown emails get the same 401', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const wrongPassword = await login(app, org.email, `${org.password}x`);
  const unknownEmail = await login(app, `nobody-${org.email}`, org.password);
  for (const response of [wrongPassword, unknownEmail]) {
    t.equal(response.statusCode, 401);
    t.equal(response.json().errors[0].details.errorId, 'PB_LOGIN_FAILED');
    t.notOk(response.headers['set-cookie']);
  }
  t.equal(wrongPassword.body, unknownEmail.body);
  t.equal((await login(app, org.email, '')).statusCode, 400);
  t.equal((await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password, remember: true } })).statusCode, 400);
});

t.test('sessions need a real, live token', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  // RFC 6750 §3: invalid_token for a bearer token that fails; the bare challenge when none was sent, a cookie being no bearer token.
  const invalidToken = 'Bearer error="invalid_token"';
  const refused: [Record<string, string>, string][] = [
    [{}, 'Bearer'],
    [{ authorization: 'Bearer pbd_made-up' }, invalidToken],
    [{ authorization: org.headers.authorization }, invalidToken],
    [{ cookie: 'plugboard_session=' }, 'Bearer'],
    [{ cookie: 'plugboard_session=pbd_made-up' }, 'Bearer'],
  ];
  for (const [headers, challenge] of refused) {
    const response = await app.inject({ method: 'GET', url: '/dashboard/me', headers });
    t.equal(response.statusCode, 401, JSON.stringify(headers).slice(0, 40));
    t.equal(response.json().errors[0].details.errorId, 'PB_SESSION_INVALID');
    t.equal(response.headers['www-authenticate'], challenge, `${JSON.stringify(headers).slice(0, 40)}: ${challenge}`);
  }
  const headers = await sessionHeaders(app, org.email, org.password);
  t.equal((await app.inject({ method: 'GET', url: '/plug/organization', headers })).statusCode, 401, 'a session is not an API access token');
  clock.advance(DASHBOARD_SESSION_TTL_SECONDS * 1000);
  const expired = await app.inject({ method: 'GET', url: '/dashboard/me', headers });
  t.equal(expired.statusCode, 401, 'sessions expire after 12 hours');
  t.equal(expired.headers['www-authenticate'], invalidToken, 'an expired session token is an invalid_token');
});

t.test('a malformed Bearer header is a 400 even beside a live cookie; another scheme leaves the cookie in charge', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { session } = (await login(app, org.email, org.password)).json();
  const cookie = `plugboard_session=${session.token}`;
  const me = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/dashboard/me', headers });

  const malformed = await me({ authorization: 'Bearer', cookie });
  t.equal(malformed.statusCode, 400, 'its sender meant the header, not whoever the cookie names');
  t.equal(malformed.headers['www-authenticate'], 'Bearer error="invalid_request"');
  t.equal(malformed.json().errors[0].details.errorId, 'PB_MALFORMED_AUTHORIZATION');
  t.equal((await me({ authorization: `Bearer ${session.token} x` })).statusCode, 400);
  // A browser behind an HTTP Basic gate (a staging proxy) sends its Basic credentials to every page.
  t.equal((await me({ authorization: 'Basic dXNlcjpwYXNz', cookie })).statusCode, 200, 'Basic beside the cookie: the cookie');
  const logout = await app.inject({ method: 'POST', url: '/dashboard/logout', headers: { authorization: 'Bearer a b' } });
  t.equal(logout.statusCode, 400, 'logging out reads the header the same way');
});

t.test('org admins manage users; members cannot', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const other = await createOrganization(app, 'Other org');
  const adminHeaders = await sessionHeaders(app, org.email, org.password);

  const created = await app.inject({
    method: 'POST',
    url: '/dashboard/users',
    headers: adminHeaders,
    payload: { email: `member-${org.email}`, password: 'member-password-1' },
  });
  t.equal(created.statusCode, 201);
  t.match(created.json(), { id: /^usr_/, email: `member-${org.email}`, role: 'member' });
  t.notMatch(created.body, /password/i);
  const duplicate = await app.inject({ method: 'POST', url: '/dashboard/users', headers: adminHeaders, payload: { email: `member-${org.email}`, password: 'another-password' } });
  t.equal(duplicate.statusCode, 409);

  const listed = await app.inject({ method: 'GET', url: '/dashboard/users?sort=createdAt,asc', headers: adminHeaders });
  t.equal(listed.statusCode, 200);
  t.same(listed.json().data.map((user: { email: string }) => user.email), [org.email, `member-${org.email}`]);
  t.same(listed.json().page, { number: 0, size: 20, totalElements: 2, totalPages: 1 });

  const memberHeaders = await sessionHeaders(app, `member-${org.email}`, 'member-password-1');
  for (const [method, url] of [['GET', '/dashboard/users'], ['GET', '/dashboard/apiKeys'], ['DELETE', `/dashboard/users/${org.userId}`]] as const) {
    t.equal((await app.inject({ method, url, headers: memberHeaders })).statusCode, 403, `member: ${method} ${url}`);
  }

  t.equal((await app.inject({ method: 'DELETE', url: `/dashboard/users/${other.userId}`, headers: adminHeaders })).statusCode, 404, 'another org’s user');
  t.equal((await app.inject({ method: 'DELETE', url: `/dashboard/users/${org.userId}`, headers: adminHeaders })).statusCode, 409, 'not yourself');
  t.equal((await app.inject({ method: 'DELETE', url: `/dashboard/users/${created.json().id}`, headers: adminHeaders })).statusCode, 204);
  t.equal((await app.inject({ method: 'GET', url: '/dashboard/me', headers: memberHeaders })).statusCode, 401, "the deleted user's sessions end");
  t.equal((await login(app, `member-${org.email}`, 'member-password-1')).statusCode, 401);
});

t.test('org admins manage API keys; the secret is shown once and works', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);

  const controlled = await app.inject({ method: 'POST', url: '/dashboard/apiKeys', headers, payload: { name: 'Billing\nsync' } });
  t.match(controlled, { statusCode: 400 }, 'a name holds no control characters');
  t.match(controlled.json(), { errors: [{ param: 'name' }] });
  const idempotent = { ...headers, 'idempotency-key': 'create-billing-key' };
  const created = await app.inject({ method: 'POST', url: '/dashboard/apiKeys', headers: idempotent, payload: { name: 'Billing sync' } });
  t.equal(created.statusCode, 201);
  const key = created.json();
  const retried = await app.inject({ method: 'POST', url: '/dashboard/apiKeys', headers: idempotent, payload: { name: 'Billing sync' } });
  t.equal(retried.headers['idempotent-replayed'], 'true');
  t.same(retried.json(), key, 'a retry with the same Idempotency-Key gets the same key, not a second one');
  t.match(key, { id: /^key_/, name: 'Billing sync', clientId: /^cli_/, createdBy: org.userId, client_secret: /^pbs_/, lastUsedAt: null });
  const beforeToken = Date.now();
  const token = await app.inject({ method: 'POST', url: '/oauth2/token', payload: { grant_type: 'client_credentials', client_id: key.clientId, client_secret: key.client_secret } });
  t.equal(token.statusCode, 200);

  const listed = await app.inject({ method: 'GET', url: '/dashboard/apiKeys', headers });
  t.equal(listed.json().page.totalElements, 2, 'the default key and the new one');
  const usedAt = Date.parse((listed.json().data as { id: string; lastUsedAt: string }[]).find((entry) => entry.id === key.id)?.lastUsedAt ?? '');
  t.ok(usedAt >= beforeToken - 1000 && usedAt <= Date.now(), 'lastUsedAt: when it last got a token');
  t.notMatch(listed.body, /pbs_|secretHash|client_secret/);

  t.equal((await app.inject({ method: 'DELETE', url: `/dashboard/apiKeys/${key.id}`, headers })).statusCode, 204);
  t.equal((await app.inject({ method: 'DELETE', url: `/dashboard/apiKeys/${key.id}`, headers })).statusCode, 404);
  const accessToken = token.json().access_token as string;
  t.equal((await app.inject({ method: 'GET', url: '/plug/organization', headers: { authorization: `Bearer ${accessToken}` } })).statusCode, 401, 'revoked');
});

t.test('password checks are rate limited per IP address', async (t) => {
  const app = await build(t, { config: { tokenRateLimitPerMinute: 3 } });
  const org = await createOrganization(app);
  const statuses = [];
  for (let attempt = 0; attempt < 4; attempt++) statuses.push((await login(app, org.email, 'wrong-password')).statusCode);
  t.same(statuses, [401, 401, 401, 429]);
});

t.test('changing your own password: the current one is asked for, other sessions end, this one stays', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const other = await sessionHeaders(app, org.email, org.password);
  const change = (payload: object) => app.inject({ method: 'POST', url: '/dashboard/me/password', headers, payload });

  const wrong = await change({ currentPassword: 'not-the-password', newPassword: 'a-new-password' });
  t.match(wrong, { statusCode: 403 });
  t.match(wrong.json(), { errors: [{ param: 'currentPassword', details: { errorId: 'PB_PASSWORD_INCORRECT' } }] });
  t.match((await change({ currentPassword: org.password, newPassword: 'short' })).json(), { errors: [{ param: 'newPassword', type: 'invalidParameter' }] });
  t.equal((await change({ currentPassword: org.password })).statusCode, 400);

  t.equal((await change({ currentPassword: org.password, newPassword: 'a-new-password' })).statusCode, 204);
  t.equal((await app.inject({ url: '/dashboard/me', headers })).statusCode, 200, 'this session stays');
  t.equal((await app.inject({ url: '/dashboard/me', headers: other })).statusCode, 401, 'the other one has ended');
  t.equal((await login(app, org.email, org.password)).statusCode, 401, 'the old password no longer signs in');
  t.ok((await login(app, org.email, 'a-new-password')).json().session, 'the new one does');
});

t.test("admins set another user's password: that user's sessions end; not their own, not another organization's", async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const admin = await sessionHeaders(app, org.email, org.password);
  const created = await app.inject({ method: 'POST', url: '/dashboard/users', headers: admin, payload: { email: 'member@example.com', password: 'member-password' } });
  const member = created.json() as { id: string };
  const memberHeaders = await sessionHeaders(app, 'member@example.com', 'member-password');
  const reset = (headers: { authorization: string }, userId: string, password = 'reset-password') =>
    app.inject({ method: 'POST', url: `/dashboard/users/${userId}/password`, headers, payload: { password } });

  t.equal((await reset(memberHeaders, org.userId)).statusCode, 403, 'members cannot');
  t.equal((await reset(admin, org.userId)).statusCode, 409, 'not your own: that needs your current password');
  t.equal((await reset(admin, member.id, 'short')).statusCode, 400);
  t.equal((await reset(admin, member.id)).statusCode, 204);
  t.equal((await app.inject({ url: '/dashboard/me', headers: memberHeaders })).statusCode, 401, "the member's session has ended");
  t.ok((await login(app, 'member@example.com', 'reset-password')).json().session);

  const otherOrg = await createOrganization(app);
  const otherAdmin = await sessionHeaders(app, otherOrg.email, otherOrg.password);
  t.equal((await reset(otherAdmin, member.id)).statusCode, 404, "another organization's user is not found");
  t.ok((await login(app, 'member@example.com', 'reset-password')).json().session, 'and keeps their password');
});

t.test('turning two-factor on ends your other sessions, opened with the password alone', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const other = await sessionHeaders(app, org.email, org.password);
  await enrollApp(app, headers, org, new Date());
  t.equal((await app.inject({ url: '/dashboard/me', headers })).statusCode, 200, 'the session that turned it on stays');
  t.equal((await app.inject({ url: '/dashboard/me', headers: other })).statusCode, 401, 'the other has ended');
  const disable = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/disable', headers: other, payload: { password: org.password } });
  t.equal(disable.statusCode, 401, 'so it cannot turn two-factor off with the password');
});

t.test('ending a user’s sessions from another process while new ones are being created misses none', async (t) => {
  const app = await build(t);
  // Another API process on the same Redis, over its own connections: no ordering between the two.
  const other = await build(t, { config: { keyPrefix: app.services.ctx.config.keyPrefix } });
  const org = await createOrganization(app);
  const user = await app.services.organizations.getUser(org.organizationId, org.userId);
  if (!user) throw new Error('the organization has its admin');
  const tokens: string[] = [];
  const endedKey = app.services.ctx.keys.org(org.organizationId).userSessionsEnded(org.userId);
  for (let round = 0; round < 20; round++) {
    // Logins checked just now: only the end that runs beside them may stop them.
    const checked = { user, sessionsEndedBefore: (await app.services.ctx.redis.get(endedKey)) ?? '0' };
    const starting = Array.from({ length: 10 }, () => app.services.dashboardSessions.startSession(checked).then((grant) => tokens.push(grant.token), () => {}));
    // The end starts a little later each round, to fall between a start's writes in some of them.
    for (let turn = 0; turn < round % 5; turn++) await new Promise(setImmediate);
    await Promise.all([other.services.dashboardSessions.endAllForUser(user), ...starting]);
  }
  t.ok(tokens.length > 0, 'sessions were handed out');
  // A session the concurrent ends missed is still listed, so this one ends it.
  await other.services.dashboardSessions.endAllForUser(user);
  const alive = [];
  for (const token of tokens) alive.push(await app.services.dashboardSessions.authenticate(token).then(() => token, () => null));
  t.same(alive.filter(Boolean), [], 'no session outlives ending them all');
});

t.test('a session whose listing an end of all sessions took away before it was written is refused, and not left behind', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { dashboardSessions, organizations, ctx } = app.services;
  const user = await organizations.getUser(org.organizationId, org.userId);
  if (!user) throw new Error('the organization has its admin');
  // The whole end runs between the session's listing and its key's write: what another process can do.
  const { redis } = ctx;
  const write = redis.set.bind(redis) as (...args: unknown[]) => Promise<unknown>;
  let sessionKey = '';
  t.teardown(() => {
    redis.set = write as typeof redis.set;
  });
  redis.set = (async (...args: unknown[]) => {
    if (String(args[0]).startsWith(ctx.keys.dashboardSession('')) && sessionKey === '') {
      sessionKey = String(args[0]);
      await dashboardSessions.endAllForUser(user);
    }
    return write(...args);
  }) as typeof redis.set;
  await t.rejects(dashboardSessions.startSession({ user, sessionsEndedBefore: '0' }), { code: 'PB_SESSION_INVALID' }, 'the login is told to start again');
  t.not(sessionKey, '', 'the end ran in between');
  t.equal(await redis.exists(sessionKey), 0, 'the session it wrote is deleted');
});

t.test('a login whose password was checked before the user’s sessions were ended gets no session after it', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { dashboardSessions } = app.services;
  const checked = await dashboardSessions.checkPassword(org.email, org.password, 'ip:192.0.2.1');
  if (!checked) throw new Error('the password is right');
  // Between the check and the session: the password is reset (or two-factor turned on) elsewhere.
  await dashboardSessions.resetPassword(checked.user, 'a brand new password');
  await t.rejects(dashboardSessions.startSession(checked), { code: 'PB_SESSION_INVALID' }, 'the old check no longer counts');
  const again = await dashboardSessions.checkPassword(org.email, 'a brand new password', 'ip:192.0.2.1');
  t.ok(again, 'a login with the new password');
  t.match(await dashboardSessions.startSession(again!), { token: /^pbd_/ }, 'gets its session');
});

t.test('a two-factor login whose password was checked before the user’s sessions were ended gets no session after it', async (t) => {
  for (const proof of ['code', 'recoveryCode'] as const) {
    t.test(`answered with a ${proof}`, async (t) => {
      const { app, org, clock, otpauthUri, recoveryCodes } = await enrolledAdmin(t);
      const { twoFactor, dashboardSessions } = app.services;
      const challengeId = await challengeFor(app, org);
      // Once the code is checked, before the session: the password is reset elsewhere (another API process).
      const checkCode = twoFactor.verifyLogin.bind(twoFactor);
      t.teardown(() => {
        twoFactor.verifyLogin = checkCode;
      });
      twoFactor.verifyLogin = async (...args) => {
        const verified = await checkCode(...args);
        await dashboardSessions.resetPassword({ id: org.userId, organizationId: org.organizationId }, 'reset by an admin');
        return verified;
      };
      const answer = proof === 'code' ? { code: totpCode(otpauthUri, clock.now()) } : { recoveryCode: recoveryCodes[0] };
      const response = await verify(app, { challengeId, ...answer });
      t.equal(response.statusCode, 401);
      t.equal(response.json().errors[0].details.errorId, 'PB_SESSION_INVALID', 'told to log in again');
      t.equal(await app.services.ctx.redis.zcard(app.services.ctx.keys.org(org.organizationId).userSessions(org.userId)), 0, 'no session listed');
    });
  }
});

t.test('a recovery-code login still gets its session: the end of sessions it makes itself does not void it', async (t) => {
  const { app, org, recoveryCodes, headers } = await enrolledAdmin(t);
  const response = await verify(app, { challengeId: await challengeFor(app, org), recoveryCode: recoveryCodes[0] });
  t.equal(response.statusCode, 200, response.body);
  t.equal((await app.inject({ url: '/dashboard/me', headers: { authorization: `Bearer ${response.json().session.token}` } })).statusCode, 200, 'its session works');
  t.equal((await app.inject({ url: '/dashboard/me', headers })).statusCode, 401, 'the session from before has ended');
});

t.test('the sessions-ended mark, expired with the sessions it guards, never comes back to a value a login saw', async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const { dashboardSessions, organizations, ctx } = app.services;
  const user = await organizations.getUser(org.organizationId, org.userId);
  if (!user) throw new Error('the organization has its admin');
  await dashboardSessions.endAllForUser(user);
  const checked = await dashboardSessions.checkPassword(org.email, org.password, 'ip:192.0.2.1');
  if (!checked) throw new Error('the password is right');
  // 12 hours without another end: the mark expires, and then the password is reset.
  await ctx.redis.del(ctx.keys.org(org.organizationId).userSessionsEnded(org.userId));
  clock.advance(DASHBOARD_SESSION_TTL_SECONDS * 1000);
  await dashboardSessions.endAllForUser(user);
  await t.rejects(dashboardSessions.startSession(checked), { code: 'PB_SESSION_INVALID' }, 'the login checked before the reset gets no session');
});

t.test('logging out unlists the session from the user’s session list', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { dashboardSessions, ctx } = app.services;
  const result = await dashboardSessions.login(org.email, org.password, 'ip:192.0.2.1');
  if (!('session' in result)) throw new Error('no two-factor here');
  const listed = ctx.keys.org(org.organizationId).userSessions(org.userId);
  t.equal(await ctx.redis.zcard(listed), 1);
  await dashboardSessions.logout(result.session.token);
  t.equal(await ctx.redis.zcard(listed), 0);
});

t.test('deletes of one user, or one API key, at once: one 204, the others the 404 a delete after it gets', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const user = await app.inject({ method: 'POST', url: '/dashboard/users', headers, payload: { email: `member-${org.email}`, password: 'member-password-1' } });
  const key = await app.inject({ method: 'POST', url: '/dashboard/apiKeys', headers, payload: { name: 'Billing sync' } });
  const deletes = 30;
  for (const url of [`/dashboard/users/${user.json().id as string}`, `/dashboard/apiKeys/${key.json().id as string}`]) {
    const answers = await Promise.all(Array.from({ length: deletes }, () => app.inject({ method: 'DELETE', url, headers })));
    const statuses = answers.map((answer) => answer.statusCode);
    t.equal(statuses.filter((status) => status === 204).length, 1, `${url}: one deletes it (${statuses.join(' ')})`);
    t.equal(statuses.filter((status) => status === 404).length, deletes - 1, `${url}: the others find it gone`);
    const after = await app.inject({ method: 'DELETE', url, headers });
    t.same(answers.find((answer) => answer.statusCode === 404)?.json(), after.json(), `${url}: the same 404 as a delete after them all`);
  }
});
