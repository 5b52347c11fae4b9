import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from 'otplib';
import t from 'tap';
import { createProviderHttp } from '../../src/connectors/http.ts';
import { createSandboxConnector, expireSession, revokeSession } from '../../src/connectors/sandbox.ts';
import { ProviderUnavailableError, type LoginOutcome, type ProviderConnector } from '../../src/connectors/types.ts';
import { buildSandboxSite, sandboxTotpSecret } from '../../src/sandbox/site.ts';

type Outcome<K extends LoginOutcome['kind']> = Extract<LoginOutcome, { kind: K }>;

function expectOutcome<K extends LoginOutcome['kind']>(outcome: LoginOutcome, kind: K): Outcome<K> {
  if (outcome.kind !== kind) throw new Error(`expected a ${kind} outcome, got ${JSON.stringify(outcome)}`);
  return outcome as Outcome<K>;
}

const newUsername = () => `user-${randomUUID()}`;
const secondsFromNow = (iso: string | null) => (Date.parse(iso ?? 'invalid') - Date.now()) / 1000;

async function startSite(options: Parameters<typeof buildSandboxSite>[0]) {
  const site = buildSandboxSite(options);
  const baseUrl = await site.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => site.close());
  return baseUrl;
}

const baseUrl = await startSite({ shortSessionSeconds: 1 });
const http = createProviderHttp({ responseTimeoutMs: 2_000 });
const connector = createSandboxConnector({ baseUrl, http });

async function connect(password: string, username = newUsername()): Promise<Outcome<'connected'>> {
  const started = await connector.login({ username, password, extraFields: {} });
  if (started.kind === 'connected') return started;
  const loginState = started.kind === 'method_required'
    ? expectOutcome(await connector.chooseMethod({ loginState: started.loginState, methodId: started.methods[0]?.id ?? '' }), 'code_required').loginState
    : expectOutcome(started, 'code_required').loginState;
  return expectOutcome(await connector.submitCode({ loginState, code: '123456' }), 'connected');
}

t.test('pass_good logs in without MFA and discovers two stable accounts', async (t) => {
  const username = newUsername();
  const connected = expectOutcome(await connector.login({ username, password: 'pass_good', extraFields: {} }), 'connected');
  t.same(connected.accounts.map((account) => account.type), ['ELECTRIC', 'GAS']);
  for (const account of connected.accounts) {
    t.match(account, { providerAccountId: /\S/, accountNumber: /^\d{10}$/, name: /\S/, serviceAddress: /Sandbox Lane/ });
  }
  t.ok(Math.abs(secondsFromNow(connected.sessionExpiresAt) - 30 * 24 * 3600) < 60, 'session lives 30 days');
  t.notOk(connected.session.includes('pass_good'), 'the session holds no password');

  const again = expectOutcome(await connector.login({ username, password: 'pass_good', extraFields: {} }), 'connected');
  t.same(again.accounts, connected.accounts, 'same username, same accounts');

  const synced = await connector.sync({ session: connected.session });
  t.equal(synced.kind, 'ok');
  if (synced.kind === 'ok') {
    t.same(synced.accounts, connected.accounts);
    t.equal(synced.sessionExpiresAt, connected.sessionExpiresAt);
  }
});

t.test('pass_bad and unknown passwords are invalid credentials; pass_locked is an access limitation', async (t) => {
  for (const password of ['pass_bad', 'hunter2']) {
    const outcome = await connector.login({ username: newUsername(), password, extraFields: {} });
    t.equal(outcome.kind, 'invalid_credentials', password);
  }
  const locked = await connector.login({ username: newUsername(), password: 'pass_locked', extraFields: {} });
  t.match(locked, { kind: 'access_limited', message: /locked/ });
});

t.test('pass_mfa: choose a method, a wrong code keeps the challenge open, 123456 connects', async (t) => {
  const username = newUsername();
  const asked = expectOutcome(await connector.login({ username, password: 'pass_mfa', extraFields: {} }), 'method_required');
  t.same(asked.methods.map((method) => method.type), ['SMS', 'CALL', 'EMAIL']);
  const [sms, call, email] = asked.methods;
  t.match(sms?.destination, /^\*\*\*-\*\*\*-\d{4}$/);
  t.equal(call?.destination, sms?.destination, 'SMS and CALL reach the same phone');
  t.equal(email?.destination, `${username[0]}***@example.com`);
  t.ok(Math.abs(secondsFromNow(asked.expiresAt) - 600) < 5, 'challenge lasts 10 minutes');

  // A different connector instance stands in for another worker picking up the next step.
  const otherWorker = createSandboxConnector({ baseUrl, http: createProviderHttp() });
  const codeSent = expectOutcome(await otherWorker.chooseMethod({ loginState: asked.loginState, methodId: email?.id ?? '' }), 'code_required');
  t.equal(codeSent.selectedMethodId, email?.id);
  t.equal(codeSent.codeLength, 6);
  t.same(codeSent.methods, asked.methods, 'method ids are stable within the challenge');

  const resent = expectOutcome(await connector.resendCode({ loginState: codeSent.loginState, methodId: sms?.id ?? '' }), 'code_required');
  t.equal(resent.selectedMethodId, sms?.id);

  const rejected = expectOutcome(await connector.submitCode({ loginState: resent.loginState, code: '654321' }), 'code_rejected');
  const connected = expectOutcome(await connector.submitCode({ loginState: rejected.loginState, code: '123456' }), 'connected');
  t.equal(connected.accounts.length, 2);
  t.equal((await connector.sync({ session: connected.session })).kind, 'ok');

  const reused = await connector.submitCode({ loginState: rejected.loginState, code: '123456' });
  t.equal(reused.kind, 'challenge_expired', 'a challenge is used up by the login it completes');
});

t.test('login states and sessions are saved compactly; those saved in the earlier, fuller form still work', async (t) => {
  const asked = expectOutcome(await connector.login({ username: newUsername(), password: 'pass_mfa', extraFields: {} }), 'method_required');
  const saved = JSON.parse(asked.loginState) as { version: number; cookies: Record<string, unknown>[] };
  t.equal(saved.version, 2);
  t.same(saved.cookies.map((cookie) => Object.keys(cookie).filter((key) => key === 'creation' || key === 'lastAccessed')), [[]], 'one cookie, without its timestamps');
  t.ok(asked.loginState.length < 250, `${asked.loginState.length} bytes`);

  // As version 1 saved it: tough-cookie's whole serialization of the jar.
  const jar = {
    version: 'tough-cookie@6.1.0',
    storeType: 'MemoryCookieStore',
    rejectPublicSuffixes: true,
    cookies: saved.cookies.map((cookie) => ({ ...cookie, creation: new Date().toISOString(), lastAccessed: new Date().toISOString() })),
  };
  const earlier = JSON.stringify({ version: 1, jar });
  const sent = expectOutcome(await connector.chooseMethod({ loginState: earlier, methodId: asked.methods[0]?.id ?? '' }), 'code_required');
  const connected = expectOutcome(await connector.submitCode({ loginState: sent.loginState, code: '123456' }), 'connected');
  const earlierSession = JSON.stringify({ version: 1, jar: { ...jar, cookies: (JSON.parse(connected.session) as typeof saved).cookies } });
  t.equal((await connector.sync({ session: earlierSession })).kind, 'ok');
  t.equal(await expireSession(baseUrl, earlierSession, http), true, 'the control endpoints read it too');
  t.same(await connector.sync({ session: connected.session }), { kind: 'session_invalid' });
  await t.rejects(connector.sync({ session: JSON.stringify({ version: 3, cookies: [] }) }), { name: 'TypeError', message: /unknown format/ });
});

t.test('pass_mfa: a code before any method is chosen is a protocol error, not a wrong code', async (t) => {
  const asked = expectOutcome(await connector.login({ username: newUsername(), password: 'pass_mfa', extraFields: {} }), 'method_required');
  await t.rejects(connector.submitCode({ loginState: asked.loginState, code: '123456' }), { name: 'ProviderProtocolError' });
});

t.test('pass_mfa_code sends an SMS code straight away', async (t) => {
  const sent = expectOutcome(await connector.login({ username: newUsername(), password: 'pass_mfa_code', extraFields: {} }), 'code_required');
  t.equal(sent.methods.length, 1);
  t.match(sent.methods[0], { type: 'SMS', destination: /^\*\*\*-\*\*\*-\d{4}$/ });
  t.equal(sent.selectedMethodId, sent.methods[0]?.id);
  expectOutcome(await connector.submitCode({ loginState: sent.loginState, code: '123456' }), 'connected');
});

t.test('pass_mfa_app accepts the TOTP of the sandbox secret, and 123456', async (t) => {
  const username = newUsername();
  const asked = expectOutcome(await connector.login({ username, password: 'pass_mfa_app', extraFields: {} }), 'code_required');
  t.same(asked.methods.map(({ type, destination }) => ({ type, destination })), [{ type: 'APP', destination: null }]);

  const someoneElsesCode = await generate({ secret: sandboxTotpSecret(newUsername()) });
  const ownCode = await generate({ secret: sandboxTotpSecret(username) });
  if (someoneElsesCode !== ownCode) {
    expectOutcome(await connector.submitCode({ loginState: asked.loginState, code: someoneElsesCode }), 'code_rejected');
  }
  expectOutcome(await connector.submitCode({ loginState: asked.loginState, code: ownCode }), 'connected');

  const again = expectOutcome(await connector.login({ username, password: 'pass_mfa_app', extraFields: {} }), 'code_required');
  expectOutcome(await connector.submitCode({ loginState: again.loginState, code: '123456' }), 'connected');
});

t.test('pass_flaky answers 503 to the first two logins of a username, then connects, and starts over', async (t) => {
  const username = newUsername();
  for (const round of ['first', 'next']) {
    for (let attempt = 1; attempt <= 2; attempt++) {
      await t.rejects(connector.login({ username, password: 'pass_flaky', extraFields: {} }), ProviderUnavailableError, `${round} login, attempt ${attempt}`);
    }
    expectOutcome(await connector.login({ username, password: 'pass_flaky', extraFields: {} }), 'connected');
  }
});

t.test('pass_down: the website is unavailable, and the error tells no secrets', async (t) => {
  const error = await connector.login({ username: newUsername(), password: 'pass_down', extraFields: {} }).catch((caught: unknown) => caught);
  t.type(error, ProviderUnavailableError);
  t.match(String(error), /HTTP 503/);
  t.notMatch(String(error), /pass_down/);
});

t.test('the control endpoints end a session: sync then finds it invalid', async (t) => {
  for (const [name, control] of [['expireSession', expireSession], ['revokeSession', revokeSession]] as const) {
    const { session } = await connect('pass_good');
    t.equal(await control(baseUrl, session, http), true, `${name} finds the session`);
    t.same(await connector.sync({ session }), { kind: 'session_invalid' }, name);
  }
  const { session } = await connect('pass_good');
  await revokeSession(baseUrl, session, http);
  t.equal(await revokeSession(baseUrl, session, http), false, 'a revoked session is unknown to the site');
});

t.test('time-outs: the pass_mfa_short session and an unanswered challenge both end', async (t) => {
  const impatientSiteUrl = await startSite({ shortSessionSeconds: 60, challengeSeconds: 1 });
  const impatient = createSandboxConnector({ baseUrl: impatientSiteUrl, http });

  const short = await connect('pass_mfa_short');
  t.ok(Math.abs(secondsFromNow(short.sessionExpiresAt) - 1) < 0.5, 'the short session lives shortSessionSeconds');
  const waiting = expectOutcome(await impatient.login({ username: newUsername(), password: 'pass_mfa_code', extraFields: {} }), 'code_required');
  t.ok(secondsFromNow(waiting.expiresAt) <= 1, 'the challenge says when it ends');

  await sleep(1_100);
  t.same(await connector.sync({ session: short.session }), { kind: 'session_invalid' }, 'the short session expired');
  t.same(await impatient.submitCode({ loginState: waiting.loginState, code: '123456' }), { kind: 'challenge_expired' });
});

t.test('a website that never answers is unavailable once the response timeout passes', async (t) => {
  const openSockets = new Set<Socket>();
  const silent = createServer((socket) => {
    openSockets.add(socket);
    socket.on('close', () => openSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of openSockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const address = silent.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');

  const hanging: ProviderConnector = createSandboxConnector({
    baseUrl: `http://127.0.0.1:${address.port}`,
    http: createProviderHttp({ responseTimeoutMs: 300 }),
  });
  const startedAt = Date.now();
  const error = await hanging.login({ username: newUsername(), password: 'pass_good', extraFields: {} }).catch((caught: unknown) => caught);
  t.type(error, ProviderUnavailableError);
  t.match(String(error), /ETIMEDOUT/);
  t.ok(Date.now() - startedAt < 1_500, 'gave up soon after the timeout');
  t.notMatch(String(error), /pass_good/);
});

t.test('a website that refuses connections is unavailable', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const address = closed.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const refused = createSandboxConnector({ baseUrl: `http://127.0.0.1:${address.port}`, http });
  await t.rejects(refused.sync({ session: (await connect('pass_good')).session }), { name: 'ProviderUnavailableError', message: /ECONNREFUSED/ });
});
