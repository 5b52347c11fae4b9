import t from 'tap';
import { call, createCredential, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { buildStack, createOrganization } from '../helper.ts';

type Link = { url: string; expiresAt: string };
type Hosted = { providerName: string; statusDetail: string; canRestart: boolean; mfa: null | { challengeId: string; availableMethods: { id: string; destination: string }[] } };

function tokenOf(link: Link): string {
  return new URL(link.url).hash.slice(1);
}

t.test('a connect link opens one credential on the hosted page API for 72 hours, until revoked', async (t) => {
  let now = Date.now();
  const stack = await buildStack(t, { env: { PUBLIC_URL: 'https://plug.example.com' } });
  stack.app.services.ctx.now = () => new Date(now);
  const credential = await createCredential(stack, 'pass_mfa');
  await waitForCredential(stack, credential.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));

  const created = await call<Link>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  t.equal(created.statusCode, 201);
  t.equal(created.headers['cache-control'], 'no-store', 'the link is a bearer token: no cache keeps it');
  t.match(created.body.url, /^https:\/\/plug\.example\.com\/connect#cl1\./, 'PUBLIC_URL + /connect, the token in the fragment');
  t.equal(Date.parse(created.body.expiresAt) - Math.floor(now / 1000) * 1000, 72 * 3600 * 1000, 'valid for 72 hours');
  const hosted = (token: string) => stack.app.inject({ url: '/connect/api/credential', headers: { authorization: `Bearer ${token}` } });

  const view = await hosted(tokenOf(created.body));
  t.equal(view.statusCode, 200);
  const body = view.json() as Hosted;
  t.match(body, { providerName: 'Sandbox Electric', statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', canRestart: false });
  t.notOk(view.body.includes(credential.username) || view.body.includes(credential.id) || view.body.includes(stack.org.organizationId), 'no username or ids beyond the challenge');
  t.ok(body.mfa?.availableMethods.every((method) => method.destination.includes('*')), 'destinations are masked');
  t.equal(view.headers['cache-control'], 'no-store');

  const second = await call<Link>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  t.not(tokenOf(second.body), tokenOf(created.body), 'each call mints a new link');

  // The page acts through the credential service: choosing a method moves the credential for everyone.
  const challengeId = body.mfa?.challengeId;
  const methodId = body.mfa?.availableMethods[0]?.id;
  const chosen = await stack.app.inject({
    method: 'PUT',
    url: '/connect/api/verificationMethod',
    headers: { authorization: `Bearer ${tokenOf(created.body)}` },
    payload: { challengeId, methodId },
  });
  t.equal(chosen.statusCode, 200);
  t.equal((chosen.json() as Hosted).statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED', 'answers once the provider replied');
  t.equal((await call<{ statusDetail: string }>(stack, 'GET', `/plug/credentials/${credential.id}`)).body.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  const restart = await stack.app.inject({ method: 'POST', url: '/connect/api/restart', headers: { authorization: `Bearer ${tokenOf(created.body)}` } });
  t.equal(restart.statusCode, 409, 'nothing to start again while a challenge is open');

  now += 72 * 3600 * 1000 + 1000;
  t.equal((await hosted(tokenOf(created.body))).statusCode, 401, 'expired after 72 hours');
  now = Date.now();

  t.equal((await call(stack, 'DELETE', `/plug/credentials/${credential.id}/connectLink`)).statusCode, 204);
  const revoked = await hosted(tokenOf(second.body));
  t.equal(revoked.statusCode, 401, 'revoked');
  t.match(revoked.json(), { errors: [{ type: 'unauthorized', details: { errorId: 'PB_CONNECT_LINK_INVALID' } }] });

  const third = await call<Link>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  t.equal((await hosted(tokenOf(third.body))).statusCode, 200, 'a link made after revoking works');
  t.equal((await call(stack, 'DELETE', `/plug/credentials/${credential.id}`)).statusCode, 204);
  t.equal((await hosted(tokenOf(third.body))).statusCode, 401, 'deleting the credential ends its links');
});

t.test('a link never reaches another credential, and forged or foreign calls are refused', async (t) => {
  const stack = await buildStack(t);
  const mine = await createCredential(stack, 'pass_mfa');
  const other = await createCredential(stack, 'pass_mfa');
  const link = await call<Link>(stack, 'POST', `/plug/credentials/${mine.id}/connectLink`);
  const [version, kid, payload, signature] = tokenOf(link.body).split('.');

  const retargeted = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { c: string };
  retargeted.c = other.id;
  const forged = [version, kid, Buffer.from(JSON.stringify(retargeted)).toString('base64url'), signature].join('.');
  const hosted = (token: string) => stack.app.inject({ url: '/connect/api/credential', headers: { authorization: `Bearer ${token}` } });
  t.equal((await hosted(forged)).statusCode, 401, 'changing the credential breaks the signature');
  t.equal((await hosted(`${tokenOf(link.body)}x`)).statusCode, 401);
  t.equal((await hosted('cl1.nokey.e30.AAAA')).statusCode, 401, 'an unknown key id');
  t.equal((await stack.app.inject({ url: '/connect/api/credential' })).statusCode, 401, 'no token');
  t.equal((await hosted(stack.org.accessToken)).statusCode, 401, 'an API access token is not a link');
  // The page sends whatever the link's fragment holds: a link mangled on its way is a broken link, not RFC 6750's 400.
  const mangled = await hosted(`${tokenOf(link.body)} %20`);
  t.equal(mangled.statusCode, 401, 'a mangled link');
  t.equal(mangled.json().errors[0].details.errorId, 'PB_CONNECT_LINK_INVALID', 'which the page shows as a link that no longer works');
  t.equal((await stack.app.inject({ url: '/connect/api/credential', headers: { authorization: `Bearer ${tokenOf(link.body)}` } })).statusCode, 200);

  const stranger = await createOrganization(stack.app, 'Stranger');
  const foreign = await stack.app.inject({ method: 'POST', url: `/plug/credentials/${mine.id}/connectLink`, headers: stranger.headers });
  t.equal(foreign.statusCode, 404, "another organization's credential does not exist for them");
  const foreignRevoke = await stack.app.inject({ method: 'DELETE', url: `/plug/credentials/${mine.id}/connectLink`, headers: stranger.headers });
  t.equal(foreignRevoke.statusCode, 404);
  t.equal((await call(stack, 'POST', '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa/connectLink')).statusCode, 404);
  t.equal((await stack.app.inject({ method: 'POST', url: `/plug/credentials/${mine.id}/connectLink` })).statusCode, 401, 'minting needs an access token');
});

t.test('the hosted page takes a code as the API does: full-width digits and spaces from a phone keyboard', async (t) => {
  const stack = await buildStack(t);
  const credential = await createCredential(stack, 'pass_mfa_code');
  const asked = await waitForCredential(stack, credential.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED'));
  const link = await call<Link>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`);
  const submit = (code: string) =>
    stack.app.inject({
      method: 'PUT',
      url: '/connect/api/oneTimePasscode',
      headers: { authorization: `Bearer ${tokenOf(link.body)}` },
      payload: { challengeId: asked.mfa?.challengeId, code },
    });
  const tooShort = await submit('１２３');
  t.match(tooShort.json(), { errors: [{ type: 'invalidParameter', param: 'code' }] }, 'the length is checked after folding');
  const accepted = await submit('１２３ ４５６');
  t.equal(accepted.statusCode, 200);
  t.match(accepted.json(), { status: 'CONNECTION_SUCCESS' }, 'the provider took the folded code');
});

t.test('minting the 51st live link retires the oldest, also among links minted within one second', async (t) => {
  let now = Date.parse('2026-11-28T12:00:00.000Z');
  const stack = await buildStack(t);
  stack.app.services.ctx.now = () => new Date(now);
  const credential = await createCredential(stack, 'pass_mfa');
  const links: Link[] = [];
  for (let index = 0; index < 51; index++) {
    now += 1;
    links.push((await call<Link>(stack, 'POST', `/plug/credentials/${credential.id}/connectLink`)).body);
  }
  const opens = await Promise.all(
    links.map(async (link) => (await stack.app.inject({ url: '/connect/api/credential', headers: { authorization: `Bearer ${tokenOf(link)}` } })).statusCode),
  );
  t.same(
    opens.flatMap((status, index) => (status === 200 ? [] : [index])),
    [0],
    'only the first link stopped working',
  );
});

t.test('the pages are served with a strict Content-Security-Policy', async (t) => {
  const stack = await buildStack(t);
  for (const url of ['/', '/connect', '/assets/app.css', '/assets/lib/mfa-panel.js']) {
    const response = await stack.app.inject({ url });
    t.equal(response.statusCode, 200, url);
    t.match(response.headers['content-security-policy'], /default-src 'none'; script-src 'self'; style-src 'self'/, `${url}: CSP`);
    t.equal(response.headers['x-frame-options'], 'DENY');
    t.equal(response.headers['referrer-policy'], 'no-referrer');
    const revalidated = await stack.app.inject({ url, headers: { 'if-none-match': String(response.headers.etag) } });
    t.equal(revalidated.statusCode, 304, `${url}: ETag revalidation`);
    t.equal(response.headers['cache-control'], 'no-cache', `${url}: its own caching, not the API's no-store`);
  }
  const html = (await stack.app.inject({ url: '/' })).body + (await stack.app.inject({ url: '/connect' })).body;
  t.notMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
  t.notMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
  t.equal((await stack.app.inject({ url: '/assets/../config.ts' })).statusCode, 404, 'only files under src/web/assets');
  t.equal((await stack.app.inject({ url: '/assets/nope.js' })).statusCode, 404);
});
