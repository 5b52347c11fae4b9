// The sandbox site's own contract, for what the connector tests cannot see: its cookies, its refusals of
// malformed requests, and the per-username fixtures integrators are told about.
import { generate } from 'otplib';
import t from 'tap';
import { buildSandboxSite, sandboxTotpSecret } from '../../src/sandbox/site.ts';

const site = buildSandboxSite({ shortSessionSeconds: 1 });
const baseUrl = await site.listen({ port: 0, host: '127.0.0.1' });
t.teardown(() => site.close());

async function post(path: string, body: unknown, cookie?: string) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, cookies: response.headers.getSetCookie(), body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/** The `name=value` part of the Set-Cookie for `name`. */
function cookieNamed(setCookies: string[], name: string): string {
  const found = setCookies.find((cookie) => cookie.startsWith(`${name}=`));
  if (!found) throw new Error(`no ${name} cookie in ${JSON.stringify(setCookies)}`);
  return found.split(';')[0] ?? '';
}

t.test('the sandbox TOTP secret is the Base32 of SHA-1("plugboard-sandbox:" + username)', async (t) => {
  t.equal(sandboxTotpSecret('alice'), '2YK7M3F6QTGJT3SPYWRFANNFXNDORG5H', 'documented derivation, pinned');
  t.not(sandboxTotpSecret('bob'), sandboxTotpSecret('alice'));
  t.match(await generate({ secret: sandboxTotpSecret('alice') }), /^\d{6}$/, 'usable by otplib as is');
});

t.test('login cookies are HttpOnly and expire with what they stand for', async (t) => {
  const loggedIn = await post('/login', { username: 'carol', password: 'pass_good' });
  const session = loggedIn.cookies.find((cookie) => cookie.startsWith('sbx_session='));
  t.match(session, /HttpOnly/);
  const expiresAt = (loggedIn.body?.session as { expiresAt: string }).expiresAt;
  t.equal(Date.parse(/Expires=([^;]+)/.exec(session ?? '')?.[1] ?? ''), Math.floor(Date.parse(expiresAt) / 1000) * 1000);

  const challenged = await post('/login', { username: 'carol', password: 'pass_mfa' });
  t.match(challenged.cookies.find((cookie) => cookie.startsWith('sbx_login=')), /HttpOnly/);
});

t.test('a finished login clears the pre-login cookie', async (t) => {
  const challenged = await post('/login', { username: 'dave', password: 'pass_mfa_code' });
  const done = await post('/mfa/code', { code: '123456' }, cookieNamed(challenged.cookies, 'sbx_login'));
  t.equal(done.status, 200);
  t.match(done.cookies.find((cookie) => cookie.startsWith('sbx_login=')), /^sbx_login=;.*Expires=Thu, 01 Jan 1970/);
});

t.test('MFA steps out of order or without a challenge are refused plainly', async (t) => {
  const challenged = await post('/login', { username: 'erin', password: 'pass_mfa' });
  const loginCookie = cookieNamed(challenged.cookies, 'sbx_login');
  t.match(await post('/mfa/code', { code: '123456' }, loginCookie), { status: 409, body: { error: 'METHOD_NOT_SELECTED' } });
  t.match(await post('/mfa/method', { methodId: 'not-offered' }, loginCookie), { status: 400, body: { error: 'UNKNOWN_METHOD' } });
  t.match(await post('/mfa/code', { code: '123456' }), { status: 410, body: { error: 'CHALLENGE_EXPIRED' } });
  t.match(await post('/mfa/code', { code: '123456' }, 'sbx_login=forged'), { status: 410 });
});

t.test('malformed requests get 400s, unknown pages 404, unknown sessions 404', async (t) => {
  t.match(await post('/login', { username: 'frank' }), { status: 400, body: { error: 'BAD_REQUEST' } });
  t.match(await post('/login', 'not an object'), { status: 400 });
  t.match(await post('/nowhere', {}), { status: 404, body: { error: 'NOT_FOUND' } });
  t.match(await post('/_sandbox/sessions/expire', { sessionToken: 'nope' }), { status: 404, body: { error: 'UNKNOWN_SESSION' } });
  const accounts = await fetch(`${baseUrl}/accounts`);
  t.equal(accounts.status, 401, 'no session, no accounts');
});
