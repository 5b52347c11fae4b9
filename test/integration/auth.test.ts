import t from 'tap';
import { build, createOrganization } from '../helper.ts';

t.test('client credentials: JSON, form and HTTP Basic all mint a working token', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);

  const form = await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=client_credentials&client_id=${encodeURIComponent(org.clientId)}&client_secret=${encodeURIComponent(org.clientSecret)}`,
  });
  t.equal(form.statusCode, 200);
  t.equal(form.json().token_type, 'Bearer');
  t.equal(form.json().expires_in, 3600);

  const basic = await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    headers: { authorization: `Basic ${Buffer.from(`${org.clientId}:${org.clientSecret}`).toString('base64')}` },
    payload: { grant_type: 'client_credentials' },
  });
  t.equal(basic.statusCode, 200);
  t.not(basic.json().access_token, form.json().access_token, 'each request mints a new token');
});

t.test('a wrong secret gets 401 in the error envelope', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const response = await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    payload: { grant_type: 'client_credentials', client_id: org.clientId, client_secret: `${org.clientSecret}x` },
  });
  t.equal(response.statusCode, 401);
  t.equal(response.json().errors[0].type, 'unauthorized');
  t.equal(response.json().errors[0].details.errorId, 'PB_INVALID_CLIENT');
  t.notOk(response.headers['www-authenticate'], 'no challenge for a client that did not use HTTP authentication');
});

t.test('HTTP Basic: a wrong secret is challenged for Basic; credentials in the body too, or another client_id, are refused', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const basic = (secret: string) => `Basic ${Buffer.from(`${org.clientId}:${secret}`).toString('base64')}`;
  const token = (authorization: string, payload: object) =>
    app.inject({ method: 'POST', url: '/oauth2/token', headers: { authorization }, payload: { grant_type: 'client_credentials', ...payload } });

  const wrong = await token(basic(`${org.clientSecret}x`), {});
  t.equal(wrong.statusCode, 401);
  t.match(wrong.headers['www-authenticate'], /^Basic realm="plugboard"/, 'RFC 6749 §5.2: the scheme the client used');
  t.equal(wrong.json().errors[0].details.errorId, 'PB_INVALID_CLIENT');
  t.match((await token('Basic bm9jb2xvbg==', {})).headers['www-authenticate'], /^Basic /, 'malformed Basic credentials too');

  const both = await token(basic(org.clientSecret), { client_id: org.clientId, client_secret: org.clientSecret });
  t.equal(both.statusCode, 400, 'two ways of authenticating in one request (RFC 6749 §2.3)');
  t.match(both.json(), { errors: [{ type: 'invalidParameter', param: 'client_secret' }] });
  const other = await token(basic(org.clientSecret), { client_id: 'cli_someoneelse' });
  t.equal(other.statusCode, 400, 'a body client_id that names another client');
  t.match(other.json(), { errors: [{ param: 'client_id' }] });
  t.equal((await token(basic(org.clientSecret), { client_id: org.clientId })).statusCode, 200, 'the same client_id in the body, as some libraries send');
});

t.test('a /plug 401 challenges for Bearer: bare without a token, invalid_token for one unknown, revoked or of a revoked key (RFC 6750 §3)', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const challengeOf = async (headers: Record<string, string>) => {
    const response = await app.inject({ method: 'GET', url: '/plug/organization', headers });
    t.equal(response.statusCode, 401);
    return response.headers['www-authenticate'];
  };
  t.equal(await challengeOf({}), 'Bearer', 'no token: no error code (§3.1)');
  t.equal(await challengeOf({ authorization: 'Bearer made-up' }), 'Bearer error="invalid_token"', 'an unknown token');

  const revoked = await createOrganization(app);
  await app.inject({ method: 'POST', url: '/oauth2/revoke', payload: { token: revoked.accessToken } });
  t.equal(await challengeOf(revoked.headers), 'Bearer error="invalid_token"', 'a revoked token');
  const [key] = await app.services.apiKeys.list(org.organizationId);
  await app.services.apiKeys.revoke(org.organizationId, key!.id);
  t.equal(await challengeOf(org.headers), 'Bearer error="invalid_token"', 'a token of a revoked key');
});

t.test('a revoked key stops its tokens from working', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const before = await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  t.equal(before.statusCode, 200);
  t.equal(before.json().id, org.organizationId);
  const [key] = await app.services.apiKeys.list(org.organizationId);
  t.ok(key);
  await app.services.apiKeys.revoke(org.organizationId, key!.id);
  const response = await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  t.equal(response.statusCode, 401);
});

t.test('a revoked token stops working, other tokens of the key go on', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const revoke = await app.inject({ method: 'POST', url: '/oauth2/revoke', payload: { token: org.accessToken } });
  t.equal(revoke.statusCode, 200);
  const response = await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  t.equal(response.statusCode, 401);
  t.equal(response.json().errors[0].details.errorId, 'PB_TOKEN_INVALID');
});

t.test('a malformed Bearer header is a 400 invalid_request; another scheme, like none, is a bare 401 (RFC 6750 §3.1)', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const call = (authorization: string) => app.inject({ method: 'GET', url: '/plug/organization', headers: { authorization } });

  for (const [authorization, why] of [
    ['Bearer', 'no token'],
    ['Bearer    ', 'no token after the spaces'],
    [`Bearer ${org.accessToken} extra`, 'two tokens'],
    [`Bearer ${org.accessToken.slice(0, 8)}$%${org.accessToken.slice(8)}`, 'characters a token never has'],
    [`Bearer=${org.accessToken}`, 'no space after the scheme'],
    [`Bearer "${org.accessToken}"`, 'a quoted token'],
    [`bEARER\t${org.accessToken}`, 'a tab, not a space'],
  ]) {
    const response = await call(authorization!);
    t.equal(response.statusCode, 400, `${why}: 400`);
    t.equal(response.headers['www-authenticate'], 'Bearer error="invalid_request"', `${why}: invalid_request`);
    t.match(response.json(), { errors: [{ type: 'invalidParameter', param: 'Authorization', details: { errorId: 'PB_MALFORMED_AUTHORIZATION' } }] }, `${why}: the envelope`);
    t.notOk('value' in response.json().errors[0].details, `${why}: the header is not echoed`);
    t.notOk(response.headers['x-ratelimit-limit'], `${why}: refused before the rate limit counts it`);
  }

  for (const [authorization, why] of [
    ['Basic eHl6OnNlY3JldA==', 'HTTP Basic'],
    ['Basic xyz', 'HTTP Basic, however garbled: not our scheme to judge'],
    [`Token ${org.accessToken}`, 'another scheme'],
    [org.accessToken, 'a token without its scheme'],
    [`Bearerx ${org.accessToken}`, 'a scheme that only starts like Bearer'],
  ]) {
    const response = await call(authorization!);
    t.equal(response.statusCode, 401, `${why}: 401`);
    t.equal(response.headers['www-authenticate'], 'Bearer', `${why}: the bare challenge, as to a request without credentials`);
    t.equal(response.json().errors[0].details.errorId, 'PB_UNAUTHORIZED');
  }

  // RFC 6750 §2.1: `Bearer 1*SP b64token`, the scheme in any case (RFC 9110 §11.1).
  t.equal((await call(`bearer  ${org.accessToken}`)).statusCode, 200, 'a lower-case scheme and two spaces');
});
