import { createHmac } from 'node:crypto';
import t, { type Test } from 'tap';
import type { App } from '../../src/app.ts';
import { SMS_CODE_TTL_MS, SMS_RESEND_INTERVAL_MS } from '../../src/services/two-factor.ts';
import { eventTypesOf, login, manualClock, sessionHeaders, startSmsReceiver, verify } from '../dashboard-helper.ts';
import { sha256Hex } from '../../src/crypto/hashing.ts';
import { build, createOrganization, dumpKeys, type TestOrganization } from '../helper.ts';

const PRIMARY = '+15551230001';
const BACKUP = '+447700900123';

/** An app whose `webhook` SMS gateway posts to a receiver on loopback, on a manual clock. */
async function smsApp(t: Test) {
  const receiver = await startSmsReceiver(t);
  const clock = manualClock();
  const app = await build(t, { now: clock.now, env: { SMS_GATEWAY: 'webhook', SMS_WEBHOOK_URL: receiver.url } });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  return { app, org, clock, receiver, headers };
}

async function enrolledSmsUser(t: Test) {
  const setup = await smsApp(t);
  const { app, org, headers, receiver, clock } = setup;
  const started = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/sms',
    headers,
    payload: { password: org.password, phoneNumber: PRIMARY, backupPhoneNumber: BACKUP },
  });
  if (started.statusCode !== 200) throw new Error(`SMS enrollment failed: ${started.body}`);
  const confirmed = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms/confirm', headers, payload: { code: receiver.lastCode() } });
  if (confirmed.statusCode !== 200) throw new Error(`SMS confirmation failed: ${confirmed.body}`);
  // Past the resend cool-down, so the next login can text a code straight away.
  clock.advance(SMS_RESEND_INTERVAL_MS);
  return { ...setup, recoveryCodes: confirmed.json().recoveryCodes as string[] };
}

async function smsChallenge(app: App, org: TestOrganization) {
  const response = await login(app, org.email, org.password);
  if (response.statusCode !== 200 || !response.json().twoFactorRequired) throw new Error(`expected a challenge: ${response.body}`);
  return response.json().challenge as { id: string; method: string; destination: string; expiresAt: string; isCodeSent?: boolean; nextCodeAt?: string };
}

t.test('SMS enrollment and login end to end through the webhook gateway', async (t) => {
  const { app, org, headers, receiver } = await smsApp(t);

  for (const phoneNumber of ['5551234567', '+0123456789', '+1555', '+1 555 123 4567', '+1555123456789012']) {
    const response = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms', headers, payload: { password: org.password, phoneNumber } });
    t.equal(response.statusCode, 400, `${phoneNumber} is not E.164`);
  }
  t.equal(receiver.messages.length, 0, 'nothing was sent for invalid numbers');

  const started = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/sms',
    headers,
    payload: { password: org.password, phoneNumber: PRIMARY, backupPhoneNumber: BACKUP },
  });
  t.equal(started.statusCode, 200);
  t.equal(started.json().destination, '+1******0001');
  t.match(receiver.messages, [{ to: PRIMARY, body: /Plugboard code is \d{6}/ }]);

  const confirmed = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms/confirm', headers, payload: { code: receiver.lastCode() } });
  t.equal(confirmed.statusCode, 200);
  t.equal(confirmed.json().recoveryCodes.length, 10);
  const view = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers, payload: { password: org.password } });
  t.same(view.json(), { isEnabled: true, method: 'SMS', phoneNumber: '+1******0001', backupPhoneNumber: '+4*******0123', recoveryCodesRemaining: 10 });
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled']);
  const stored = await app.services.ctx.redis.get(app.services.ctx.keys.org(org.organizationId).twoFactor(org.userId).secrets);
  t.notMatch(stored, /5551230001|7700900123/, 'phone numbers are stored sealed');

  // Within the enrollment code's cool-down the login gets its challenge, but no text yet.
  const tooSoon = await login(app, org.email, org.password);
  t.equal(tooSoon.statusCode, 200);
  t.match(tooSoon.json().challenge, { method: 'SMS', isCodeSent: false });
  t.equal(receiver.messages.length, 1);
});

t.test('an SMS login signs in once; the code cannot be reused', async (t) => {
  const { app, org, receiver } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  t.match(challenge, { id: /^chl_/, method: 'SMS', destination: '+1******0001' });
  t.equal(receiver.messages.at(-1)?.to, PRIMARY);
  const code = receiver.lastCode();

  const verified = await verify(app, { challengeId: challenge.id, code });
  t.equal(verified.statusCode, 200);
  t.match(verified.json(), { session: { token: /^pbd_/ }, twoFactorDisabled: false });

  const sameChallenge = await verify(app, { challengeId: challenge.id, code });
  t.equal(sameChallenge.statusCode, 401, 'the challenge is used up');
  t.equal(sameChallenge.json().errors[0].details.errorId, 'PB_LOGIN_CHALLENGE_INVALID');
});

t.test('what is stored of a code sent cannot be tested offline: no plain hash of it is in Redis', async (t) => {
  const { app, org, receiver } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  const code = receiver.lastCode();
  const { redis, keys } = app.services.ctx;
  const dump = await dumpKeys(redis, [`${keys.prefix}:*`]);
  t.ok(dump.includes(challenge.id), 'the dump holds the challenge (sanity check)');
  // What a copy of Redis would be searched for: each of a million candidates, hashed with or beside the id.
  const guesses = [sha256Hex(code), sha256Hex(`${challenge.id}:${code}`), createHmac('sha256', challenge.id).update(code).digest('hex')];
  for (const guess of guesses) t.notOk(dump.includes(guess), `no ${guess.slice(0, 6)}…`);
  t.match(dump, /"smsCodeHash":"test1\.[0-9a-f]{64}"/, 'a digest under the encryption key');
});

t.test('an SMS code is not valid for another challenge', async (t) => {
  const { app, org, receiver, clock } = await enrolledSmsUser(t);
  await smsChallenge(app, org);
  const firstCode = receiver.lastCode();
  clock.advance(SMS_RESEND_INTERVAL_MS);
  const second = await smsChallenge(app, org);
  if (receiver.lastCode() === firstCode) t.pass('the two random codes happen to be equal (one chance in a million)');
  else t.equal((await verify(app, { challengeId: second.id, code: firstCode })).statusCode, 401);
});

t.test('an expired SMS code is refused; a resent one works', async (t) => {
  const { app, org, receiver, clock } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  const code = receiver.lastCode();
  clock.advance(SMS_CODE_TTL_MS + 1000);
  const expired = await verify(app, { challengeId: challenge.id, code });
  t.equal(expired.statusCode, 401);
  t.equal(expired.json().errors[0].details.errorId, 'PB_TWO_FACTOR_CODE_INVALID');

  const resent = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id } });
  t.equal(resent.statusCode, 200);
  t.equal((await verify(app, { challengeId: challenge.id, code: receiver.lastCode() })).statusCode, 200);
});

t.test('resending: to the backup phone, replacing the previous code, within limits', async (t) => {
  const { app, org, receiver, clock } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  const firstCode = receiver.lastCode();

  const tooSoon = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id, useBackupPhone: true } });
  t.equal(tooSoon.statusCode, 429);
  t.equal(tooSoon.json().errors[0].type, 'tooManyRequests');
  t.ok(Number(tooSoon.headers['retry-after']) >= 1);

  clock.advance(SMS_RESEND_INTERVAL_MS);
  const resent = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id, useBackupPhone: true } });
  t.equal(resent.statusCode, 200);
  t.equal(resent.json().challenge.destination, '+4*******0123');
  t.equal(receiver.messages.at(-1)?.to, BACKUP);
  const secondCode = receiver.lastCode();
  if (secondCode !== firstCode) t.equal((await verify(app, { challengeId: challenge.id, code: firstCode })).statusCode, 401, 'the previous code no longer works');
  t.equal((await verify(app, { challengeId: challenge.id, code: secondCode })).statusCode, 200);
});

t.test('a login within the text limits still gets its challenge, with the code held back', async (t) => {
  const { app, org, receiver, clock, recoveryCodes } = await enrolledSmsUser(t);
  const first = await smsChallenge(app, org);
  t.equal(first.isCodeSent, true);
  t.equal(receiver.messages.length, 2, 'enrollment and the first login');

  clock.advance(1_000);
  const again = await smsChallenge(app, org);
  t.equal(again.isCodeSent, false, 'a code went out a second ago');
  t.equal(Date.parse(again.nextCodeAt ?? ''), clock.now().getTime() + SMS_RESEND_INTERVAL_MS - 1_000);
  t.equal(again.destination, '+1******0001');
  t.equal(receiver.messages.length, 2, 'no text for the second login');
  t.equal((await verify(app, { challengeId: again.id, code: receiver.lastCode() })).statusCode, 401, "the first login's code is not this one's");
  t.equal((await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: again.id } })).statusCode, 429, 'until nextCodeAt');

  clock.advance(SMS_RESEND_INTERVAL_MS);
  const sent = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: again.id } });
  t.equal(sent.statusCode, 200);
  t.equal(sent.json().challenge.isCodeSent, true);
  t.equal((await verify(app, { challengeId: again.id, code: receiver.lastCode() })).statusCode, 200);

  // The hourly budget spent: a login still gets a challenge a recovery code can answer.
  const spending = await smsChallenge(app, org);
  t.equal(spending.isCodeSent, false, 'the resend went out a moment ago');
  for (let text = 4; text <= 10; text++) {
    clock.advance(SMS_RESEND_INTERVAL_MS);
    t.equal((await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: spending.id } })).statusCode, 200);
  }
  t.equal(receiver.messages.length, 10);
  clock.advance(SMS_RESEND_INTERVAL_MS);
  const spent = await smsChallenge(app, org);
  t.equal(spent.isCodeSent, false);
  t.ok(Date.parse(spent.nextCodeAt ?? '') > clock.now().getTime() + SMS_RESEND_INTERVAL_MS, 'later than a cool-down: when the hour has room');
  t.equal((await verify(app, { challengeId: spent.id, recoveryCode: recoveryCodes[0] })).statusCode, 200);
});

t.test('at most 10 text messages an hour per user', async (t) => {
  const { app, org, receiver, clock } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  t.equal(receiver.messages.length, 2, 'enrollment and login');
  for (let resend = 3; resend <= 10; resend++) {
    clock.advance(SMS_RESEND_INTERVAL_MS);
    t.equal((await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id } })).statusCode, 200);
  }
  clock.advance(SMS_RESEND_INTERVAL_MS);
  const eleventh = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id } });
  t.equal(eleventh.statusCode, 429);
  t.match(eleventh.json().errors[0].message, 'per hour');
  t.equal(receiver.messages.length, 10);
});

t.test('a budget spent within the cool-down: the wait given is the hour\'s, not the cool-down\'s', async (t) => {
  const { app, org, receiver, clock } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  for (let resend = 3; resend <= 10; resend++) {
    clock.advance(SMS_RESEND_INTERVAL_MS);
    await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: challenge.id } });
  }
  t.equal(receiver.messages.length, 10);
  const atOnce = await smsChallenge(app, org);
  t.equal(atOnce.isCodeSent, false);
  t.ok(Date.parse(atOnce.nextCodeAt ?? '') > clock.now().getTime() + SMS_RESEND_INTERVAL_MS, 'nextCodeAt: when the hour has room');
  const resend = await app.inject({ method: 'POST', url: '/dashboard/login/sms', payload: { challengeId: atOnce.id } });
  t.match(resend, { statusCode: 429 });
  t.ok(Number(resend.headers['retry-after']) > SMS_RESEND_INTERVAL_MS / 1000, 'Retry-After too');
});

t.test('asking for an enrollment code again too soon is refused and leaves the code already sent working', async (t) => {
  const { app, org, headers, receiver } = await smsApp(t);
  const start = () =>
    app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms', headers, payload: { password: org.password, phoneNumber: PRIMARY } });
  t.equal((await start()).statusCode, 200);
  const sent = receiver.lastCode();
  t.equal((await start()).statusCode, 429);
  t.equal(receiver.messages.length, 1);
  const confirmed = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms/confirm', headers, payload: { code: sent } });
  t.equal(confirmed.statusCode, 200, 'the code sent first still confirms');
});

t.test('20 concurrent verify calls with one SMS code give exactly one session', async (t) => {
  const { app, org, receiver } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  const code = receiver.lastCode();
  const responses = await Promise.all(Array.from({ length: 20 }, () => verify(app, { challengeId: challenge.id, code })));
  t.equal(responses.filter((response) => response.statusCode === 200).length, 1);
});

t.test('a recovery code works for SMS users too and turns SMS two-factor off', async (t) => {
  const { app, org, recoveryCodes } = await enrolledSmsUser(t);
  const challenge = await smsChallenge(app, org);
  const verified = await verify(app, { challengeId: challenge.id, recoveryCode: recoveryCodes[3] });
  t.equal(verified.statusCode, 200);
  t.equal(verified.json().twoFactorDisabled, true);
  t.same(await eventTypesOf(app, org.organizationId), ['user.two_factor.enabled', 'user.two_factor.recovery_code_used', 'user.two_factor.disabled']);
});

t.test('an SMS gateway failure is a 503 without details', async (t) => {
  const app = await build(t, { env: { SMS_GATEWAY: 'webhook', SMS_WEBHOOK_URL: 'http://127.0.0.1:9/unreachable' } });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const response = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms', headers, payload: { password: org.password, phoneNumber: PRIMARY } });
  t.equal(response.statusCode, 503);
  t.match(response.json(), { errors: [{ type: 'serviceUnavailable', details: { errorId: 'PB_UNAVAILABLE' } }] });
  t.notMatch(response.body, /127\.0\.0\.1|5551230001|\d{6}/);
});

t.test('an organization has an hourly text budget of its own, whatever its number of users', async (t) => {
  const receiver = await startSmsReceiver(t);
  const app = await build(t, { env: { SMS_GATEWAY: 'webhook', SMS_WEBHOOK_URL: receiver.url, SMS_MAX_PER_HOUR_PER_ORGANIZATION: '2' } });
  const org = await createOrganization(app);
  const admin = await sessionHeaders(app, org.email, org.password);
  const enrollBy = async (headers: Record<string, string>, password: string, phoneNumber: string) =>
    app.inject({ method: 'POST', url: '/dashboard/me/two-factor/sms', headers, payload: { password, phoneNumber } });
  const users = [];
  for (const n of [1, 2]) {
    const email = `user${n}@example.com`;
    t.equal((await app.inject({ method: 'POST', url: '/dashboard/users', headers: admin, payload: { email, password: 'long enough', role: 'member' } })).statusCode, 201);
    users.push(await sessionHeaders(app, email, 'long enough'));
  }
  t.equal((await enrollBy(admin, org.password, '+15551230011')).statusCode, 200);
  t.equal((await enrollBy(users[0]!, 'long enough', '+15551230012')).statusCode, 200);
  const third = await enrollBy(users[1]!, 'long enough', '+15551230013');
  t.equal(third.statusCode, 429, "a user of their own hour's budget, but the organization's is spent");
  t.match(third.json().errors[0].message, /organization's text messages for this hour/);
  t.ok(Number(third.headers['retry-after']) > 60, 'wait for the hour');
  t.equal(receiver.messages.length, 2);
  const other = await createOrganization(app);
  t.equal((await enrollBy(await sessionHeaders(app, other.email, other.password), other.password, '+15551230014')).statusCode, 200, 'another organization has its own');
});
