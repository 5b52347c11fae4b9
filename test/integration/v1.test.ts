import t from 'tap';
import { eventsOf, SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { totpCode } from '../dashboard-helper.ts';
import { buildStack, connectTestRedis, dumpKeys, type TestStack } from '../helper.ts';

interface V1Link {
  href: string;
  name?: string;
}

interface V1Credential {
  entityId: string;
  username: string;
  correlationId: string | null;
  providerName: string;
  providerId: string;
  enabled: boolean;
  status: string;
  statusDetail: string;
  mock: boolean;
  _links: { self: V1Link; accounts: V1Link; mfa?: V1Link[] };
}

interface V1Page<T> {
  _embedded: Record<string, T[]>;
  _links: { self: V1Link; next?: V1Link; prev?: V1Link; last: V1Link };
  page: { size: number; totalElements: number; totalPages: number; number: number };
}

interface Response<T> {
  statusCode: number;
  headers: Record<string, unknown>;
  body: T;
}

/** A client that only speaks v1: it logs in with email and password and then follows the links it is given. */
async function v1Client(stack: TestStack, email = stack.org.email, password = stack.org.password) {
  const login = await stack.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: email, password } });
  if (login.statusCode !== 200) throw new Error(`v1 login failed: ${login.statusCode} ${login.body}`);
  const token = login.json().token as string;
  /** `url` may be absolute (a followed link, under PUBLIC_URL) or a path. */
  async function request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object): Promise<Response<T>> {
    const path = url.startsWith(stack.config.publicUrl) ? url.slice(stack.config.publicUrl.length) : url;
    const response = await stack.app.inject({ method, url: path, payload, headers: { authorization: `Bearer ${token}` } });
    return { statusCode: response.statusCode, headers: response.headers, body: (response.body ? response.json() : undefined) as T };
  }
  return { token, request, login: login.json() as Record<string, unknown> };
}

type V1Client = Awaited<ReturnType<typeof v1Client>>;

async function createV1(client: V1Client, password: string, extra: object = {}): Promise<V1Credential> {
  const created = await client.request<V1Credential>('POST', '/v1/utility/credentials', {
    providerId: SANDBOX_PROVIDER,
    username: `user-${Math.random().toString(36).slice(2)}`,
    password,
    ...extra,
  });
  if (created.statusCode !== 201) throw new Error(`v1 create failed: ${created.statusCode} ${JSON.stringify(created.body)}`);
  return created.body;
}

/** Polls the v1 credential until `predicate` holds. */
async function waitV1(client: V1Client, credential: V1Credential, predicate: (c: V1Credential) => boolean, timeoutMs = 5000): Promise<V1Credential> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Credential | undefined;
  while (Date.now() < deadline) {
    last = (await client.request<V1Credential>('GET', credential._links.self.href)).body;
    if (predicate(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`v1 credential did not reach the expected state; last: ${JSON.stringify(last)}`);
}

const statusIs = (pair: string) => (credential: V1Credential) => `${credential.status}/${credential.statusDetail}` === pair;
const settled = (credential: V1Credential) => credential.status !== 'PENDING';

/** Every item of a collection, walking `_links.next` from the first page; also returns the pages seen. */
async function walk<T>(client: V1Client, rel: string, firstUrl: string) {
  const items: T[] = [];
  const pages: V1Page<T>[] = [];
  let url: string | undefined = firstUrl;
  while (url) {
    const response: Response<V1Page<T>> = await client.request<V1Page<T>>('GET', url);
    if (response.statusCode !== 200) throw new Error(`page failed: ${response.statusCode} ${JSON.stringify(response.body)}`);
    pages.push(response.body);
    items.push(...(response.body._embedded[rel] ?? []));
    url = response.body._links.next?.href;
  }
  return { items, pages };
}

t.test('a v1-only client: login, pass_mfa, three pages, MFA through the current API, then OK and accounts', async (t) => {
  const stack = await buildStack(t);
  const client = await v1Client(stack);
  t.match(client.login, { status: 200, type: 'Bearer', token: /\S{20,}/, expires: /^\d{4}-\d\d-\d\dT/ });

  const mfa = await createV1(client, 'pass_mfa', { correlationId: 'mfa-customer', username2: 'account-7', password2: 'second-secret-pw', interactive: true });
  t.match(mfa, {
    entityId: /^crd_/,
    providerId: SANDBOX_PROVIDER,
    providerName: 'Sandbox Electric',
    correlationId: 'mfa-customer',
    enabled: true,
    mock: true,
    status: 'PENDING',
    statusDetail: 'UNDER_REVIEW',
    _links: { self: { href: `${stack.config.publicUrl}/v1/utility/credentials/${mfa.entityId}` } },
  });
  for (const password of ['pass_good', 'pass_good', 'pass_bad', 'pass_bad']) await createV1(client, password);

  const { items, pages } = await walk<V1Credential>(client, 'credentials', '/v1/utility/credentials?size=2');
  t.equal(pages.length, 3, 'five credentials in pages of two');
  t.same(pages.map((page) => page.page), [
    { size: 2, totalElements: 5, totalPages: 3, number: 0 },
    { size: 2, totalElements: 5, totalPages: 3, number: 1 },
    { size: 2, totalElements: 5, totalPages: 3, number: 2 },
  ]);
  t.equal(new Set(items.map((item) => item.entityId)).size, 5, 'every credential once');
  t.notOk(pages[0]?._links.prev, 'no prev on the first page');
  t.notOk(pages[2]?._links.next, 'no next on the last page');
  t.equal(pages[2]?._links.prev?.href, pages[1]?._links.self.href);
  t.equal(pages[0]?._links.last.href, `${stack.config.publicUrl}/v1/utility/credentials?page=2&size=2`);

  const mfaRequired = await waitV1(client, mfa, statusIs('ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE'));
  const current = `${stack.config.publicUrl}/plug/credentials/${mfa.entityId}`;
  t.same(
    mfaRequired._links.mfa?.map(({ name, href }) => ({ name, href })),
    [
      { name: 'credential', href: current },
      { name: 'connectLink', href: `${current}/connectLink` },
      { name: 'verificationMethod', href: `${current}/verificationMethod` },
      { name: 'refresh', href: `${current}/refresh` },
    ],
    'links to the current API calls that fit the method-selection stage',
  );

  // The integrator resolves the MFA with the current API (its API key), following the v1 links.
  const api = async (method: 'GET' | 'PUT', href: string, payload?: object) => {
    const response = await stack.app.inject({
      method,
      url: href.slice(stack.config.publicUrl.length),
      payload,
      headers: { ...stack.org.headers, prefer: 'wait=5' },
    });
    return response.json();
  };
  const links = Object.fromEntries((mfaRequired._links.mfa ?? []).map((link) => [link.name, link.href]));
  const challenge = (await api('GET', links.credential as string)).mfa;
  const codeRequired = await api('PUT', links.verificationMethod as string, { challengeId: challenge.challengeId, methodId: challenge.availableMethods[0].id });
  t.equal(codeRequired.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');
  const inCodeEntry = (await client.request<V1Credential>('GET', mfa._links.self.href)).body;
  t.match(inCodeEntry, { status: 'ACTION_REQUIRED', statusDetail: 'MULTI_FACTOR_AUTH_FAILURE' });
  t.same(
    inCodeEntry._links.mfa?.map((link) => link.name),
    ['credential', 'connectLink', 'verificationMethod', 'oneTimePasscode', 'refresh'],
    'code entry adds oneTimePasscode',
  );
  const connected = await api('PUT', `${current}/oneTimePasscode`, { challengeId: challenge.challengeId, code: '123456' });
  t.equal(connected.statusDetail, 'LOGIN_AND_DATA_DISCOVERY_SUCCESS');

  const ok = (await client.request<V1Credential>('GET', mfa._links.self.href)).body;
  t.match(ok, { status: 'OK', statusDetail: 'NO_ACTION_REQUIRED', enabled: true });
  t.notOk(ok._links.mfa, 'no MFA links once connected');
  const accounts = await client.request<V1Page<{ entityId: string; credentialId: string; providerName: string; _links: { self: V1Link } }>>(
    'GET',
    ok._links.accounts.href,
  );
  t.equal(accounts.statusCode, 200);
  t.equal(accounts.body._embedded.accounts?.length, 2, 'pass_mfa discovers two accounts');
  t.match(accounts.body._embedded.accounts?.[0], { entityId: /^acc_/, credentialId: mfa.entityId, providerName: 'Sandbox Electric' });
  const account = await client.request<{ entityId: string }>('GET', accounts.body._embedded.accounts?.[0]?._links.self.href as string);
  t.equal(account.body.entityId, accounts.body._embedded.accounts?.[0]?.entityId);
  const allAccounts = await walk<{ credentialId: string }>(client, 'accounts', '/v1/utility/accounts?size=3');
  t.equal(allAccounts.items.filter((item) => item.credentialId === mfa.entityId).length, 2, 'and among all accounts');

  // The same credential, as an ordinary one in the current API; password2 is sealed like the password.
  const inCurrentApi = await stack.app.inject({ method: 'GET', url: `/plug/credentials/${mfa.entityId}`, headers: stack.org.headers });
  t.match(inCurrentApi.json(), { id: mfa.entityId, correlationId: 'mfa-customer', status: 'CONNECTION_SUCCESS' });
  const secretsKey = stack.app.services.ctx.keys.org(stack.org.organizationId).credentialSecrets(mfa.entityId);
  t.equal(await stack.app.services.ctx.secrets.read(secretsKey, 'additional.password2'), 'second-secret-pw');
  t.equal(await stack.app.services.ctx.secrets.read(secretsKey, 'additional.username2'), 'account-7');
  const redis = connectTestRedis();
  t.teardown(() => redis.disconnect());
  const everything = await dumpKeys(redis, [`${stack.config.keyPrefix}:*`]);
  t.notOk(everything.includes('second-secret-pw'), 'password2 is nowhere in Redis in clear');
});

t.test('search: the SPEC examples return exactly the matching credentials, across both APIs', async (t) => {
  const stack = await buildStack(t);
  const client = await v1Client(stack);
  const abcOk = await createV1(client, 'pass_good', { correlationId: 'abc-1' });
  const abcBad = await createV1(client, 'pass_bad', { correlationId: 'abc-2' });
  const gasOk = await createV1(client, 'pass_good', { correlationId: 'x-abc', providerId: 'prv_sandboxgasxxxxxxxxxxxxxxxx' });
  // Created through the current API: an ordinary credential v1 lists too.
  const created = await stack.app.inject({
    method: 'POST',
    url: '/plug/credentials',
    headers: stack.org.headers,
    payload: { providerId: SANDBOX_PROVIDER, username: 'plain', password: 'pass_good' },
  });
  t.equal(created.statusCode, 201);
  const plain = (await client.request<V1Credential>('GET', `/v1/utility/credentials/${created.json().id as string}`)).body;
  for (const credential of [abcOk, abcBad, gasOk, plain]) await waitV1(client, credential, settled);

  const search = async (expression: string) => {
    const response = await client.request<V1Page<V1Credential>>('GET', `/v1/utility/credentials?search=${encodeURIComponent(expression)}`);
    t.equal(response.statusCode, 200, expression);
    return (response.body._embedded.credentials ?? []).map((credential) => credential.entityId).sort();
  };
  const ids = (...credentials: V1Credential[]) => credentials.map((credential) => credential.entityId).sort();

  t.same(await search('correlationId==abc*;status==OK'), ids(abcOk));
  t.same(await search('providerName==Sandbox*,status!=OK'), ids(abcOk, abcBad, gasOk, plain), 'every provider is a sandbox one');
  t.same(await search('providerName=="Sandbox Gas",status!=OK'), ids(abcBad, gasOk));
  t.same(await search('status==ACTION_REQUIRED'), ids(abcBad));
  t.same(await search('username==plain'), ids(plain));

  const paged = await client.request<V1Page<V1Credential>>('GET', `/v1/utility/credentials?size=1&search=${encodeURIComponent('correlationId==*abc*')}`);
  t.equal(paged.body.page.totalElements, 3);
  t.equal(paged.body._links.next?.href, `${stack.config.publicUrl}/v1/utility/credentials?search=correlationId%3D%3D*abc*&page=1&size=1`, 'next keeps the search');

  for (const malformed of ['status=in=(OK)', 'status==', 'entityId==x', '(status==OK)', 'status==CONNECTION_SUCCESS']) {
    const response = await client.request<{ status: number; message: string }>('GET', `/v1/utility/credentials?search=${encodeURIComponent(malformed)}`);
    t.equal(response.statusCode, 400, malformed);
    t.same(Object.keys(response.body).sort(), ['message', 'status'], 'the v1 error shape');
    t.match(response.body, { status: 400, message: /^search is not valid at character \d+: / });
  }
});

t.test('v1 errors are { status, message } for auth, validation, malformed JSON, unknown routes and ids', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const client = await v1Client(stack);
  const v1Shape = (response: { statusCode: number; json(): unknown }, status: number, message: RegExp) => {
    t.equal(response.statusCode, status);
    t.same(Object.keys(response.json() as object).sort(), ['message', 'status']);
    t.match(response.json(), { status, message });
  };
  const inject = stack.app.inject.bind(stack.app);
  const auth = { authorization: `Bearer ${client.token}` };

  v1Shape(await inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email, password: 'wrong-password' } }), 401, /email or password/);
  v1Shape(await inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email } }), 400, /password/);
  const withoutToken = await inject({ method: 'GET', url: '/v1/utility/credentials' });
  v1Shape(withoutToken, 401, /POST \/v1\/auth\/login/);
  t.equal(withoutToken.headers['www-authenticate'], 'Bearer');
  const badToken = await inject({ method: 'GET', url: '/v1/utility/credentials', headers: { authorization: 'Bearer nonsense' } });
  v1Shape(badToken, 401, /./);
  t.equal(badToken.headers['www-authenticate'], 'Bearer error="invalid_token"', 'RFC 6750 §3');
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/credentials', headers: stack.org.headers }), 401, /./);
  const malformed = await inject({ method: 'GET', url: '/v1/utility/credentials', headers: { authorization: `Bearer ${client.token} ${client.token}` } });
  v1Shape(malformed, 400, /Authorization header is malformed/);
  t.equal(malformed.headers['www-authenticate'], 'Bearer error="invalid_request"', 'RFC 6750 §3.1, in v1 too');
  const basic = await inject({ method: 'GET', url: '/v1/utility/credentials', headers: { authorization: 'Basic xyz' } });
  v1Shape(basic, 401, /POST \/v1\/auth\/login/);
  t.equal(basic.headers['www-authenticate'], 'Bearer', 'another scheme is no token');
  v1Shape(
    await inject({ method: 'POST', url: '/v1/utility/credentials', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"providerId":' }),
    400,
    /not valid JSON/,
  );
  v1Shape(
    await inject({ method: 'POST', url: '/v1/utility/credentials', headers: auth, payload: { providerId: SANDBOX_PROVIDER, username: 'u', password: 'p', nickname: 'x' } }),
    400,
    /unknown field "nickname"/,
  );
  v1Shape(
    await inject({ method: 'POST', url: '/v1/utility/credentials', headers: auth, payload: { providerId: 'prv_aaaaaaaaaaaaaaaaaaaaaaaaaa', username: 'u', password: 'p' } }),
    400,
    /Unknown providerId/,
  );
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa', headers: auth }), 404, /Credential not found/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/credentials/not-an-id', headers: auth }), 400, /id/);
  // Refused by Fastify before any route is chosen, and still in v1's shape.
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/credentials/%ZZ', headers: auth }), 400, /./);
  v1Shape(await inject({ method: 'GET', url: `/v1/utility/credentials/${'a'.repeat(101)}`, headers: auth }), 400, /./);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/providers/prv_aaaaaaaaaaaaaaaaaaaaaaaaaa', headers: auth }), 404, /Provider not found/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/nothing-here', headers: auth }), 404, /No route GET \/v1\/utility\/nothing-here/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/credentials?size=1000', headers: auth }), 400, /size/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/accounts?page=1e20', headers: auth }), 400, /page must be <= 1000000000/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/providers?size=Infinity', headers: auth }), 400, /size must be a number in decimal digits/);
  v1Shape(await inject({ method: 'GET', url: '/v1/utility/providers?size=1e309', headers: auth }), 400, /size must be a finite number/);

  // The current API keeps its own envelope.
  const current = await inject({ method: 'GET', url: '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa', headers: stack.org.headers });
  t.match(current.json(), { errors: [{ type: 'notFound' }] });
});

t.test('v1 login is limited per IP address like every password check, in v1 shape', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false, env: { TOKEN_RATE_LIMIT_PER_MINUTE: '3' } });
  const statuses = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    statuses.push((await stack.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email, password: 'wrong-password' } })).statusCode);
  }
  t.same(statuses, [401, 401, 401, 429]);
  const limited = await stack.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email, password: stack.org.password } });
  t.equal(limited.statusCode, 429, 'the right password too, until the minute is over');
  t.same(Object.keys(limited.json() as object).sort(), ['message', 'status']);
  t.ok(limited.headers['retry-after']);
});

t.test('credentials of another organization are not found through v1', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const client = await v1Client(stack);
  const mine = await createV1(client, 'pass_good');
  const other = await stack.app.services.organizations.createOrganization({ name: 'Other', email: 'other-v1@example.com', password: 'other-password' });
  const otherClient = await v1Client(stack, 'other-v1@example.com', 'other-password');
  t.ok(other.organizationId);
  t.equal((await otherClient.request('GET', `/v1/utility/credentials/${mine.entityId}`)).statusCode, 404);
  t.equal((await otherClient.request('DELETE', `/v1/utility/credentials/${mine.entityId}`)).statusCode, 404);
  t.equal((await otherClient.request<V1Page<V1Credential>>('GET', '/v1/utility/credentials')).body.page.totalElements, 0);
});

t.test('PATCH: enabled false disables, enabled true logs in again; DELETE removes', async (t) => {
  const stack = await buildStack(t);
  const client = await v1Client(stack);
  const credential = await waitV1(client, await createV1(client, 'pass_good'), statusIs('OK/NO_ACTION_REQUIRED'));

  const renamed = await client.request<V1Credential>('PATCH', credential._links.self.href, { correlationId: 'renamed' });
  t.match(renamed, { statusCode: 200, body: { correlationId: 'renamed', status: 'OK' } });
  const disabled = await client.request<V1Credential>('PATCH', credential._links.self.href, { enabled: false });
  t.match(disabled.body, { status: 'NON_FUNCTIONAL', statusDetail: 'DISABLED', enabled: false });
  const enabled = await client.request<V1Credential>('PATCH', credential._links.self.href, { enabled: true });
  t.match(enabled.body, { status: 'PENDING', statusDetail: 'UNDER_REVIEW', enabled: true });
  await waitV1(client, credential, statusIs('OK/NO_ACTION_REQUIRED'));
  const badPassword = await client.request<V1Credential>('PATCH', credential._links.self.href, { password: 'pass_bad', password3: 'third' });
  t.equal(badPassword.body.statusDetail, 'UNDER_REVIEW', 'a new password means a new login');
  await waitV1(client, credential, statusIs('ACTION_REQUIRED/LOGIN_FAILURE'));
  const secretsKey = stack.app.services.ctx.keys.org(stack.org.organizationId).credentialSecrets(credential.entityId);
  t.equal(await stack.app.services.ctx.secrets.read(secretsKey, 'additional.password3'), 'third');
  t.equal((await client.request('PATCH', credential._links.self.href, {})).statusCode, 400, 'an empty change is refused');

  const eventCount = (await eventsOf(stack, credential.entityId)).length;
  const newAndDisabled = await client.request<V1Credential>('PATCH', credential._links.self.href, { password: 'pass_good', enabled: false });
  t.match(newAndDisabled.body, { statusDetail: 'DISABLED', enabled: false });
  t.same(
    (await eventsOf(stack, credential.entityId)).slice(eventCount).map((event) => [event.type, event.data.credential.statusDetail]),
    [
      ['credential.status_changed', 'DISABLED'],
      ['credential.disabled', 'DISABLED'],
    ],
    'a new password and disabling in one request: one change, no login started in between',
  );
  t.equal((await client.request('PATCH', credential._links.self.href, { enabled: false })).statusCode, 200, 'disabling a disabled credential is no conflict');
  await client.request('PATCH', credential._links.self.href, { enabled: true });
  await waitV1(client, credential, statusIs('OK/NO_ACTION_REQUIRED'));

  t.equal((await client.request('DELETE', credential._links.self.href)).statusCode, 204);
  t.equal((await client.request('GET', credential._links.self.href)).statusCode, 404);
});

t.test('HAL by name: a client that asks for application/hal+json gets it, and may send its bodies as such', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const { token } = await v1Client(stack);
  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, headers: Record<string, string> = {}, payload?: object) =>
    stack.app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(payload ? { payload } : {}) });
  const hal = { accept: 'application/hal+json' };

  t.match((await call('GET', '/v1/utility/credentials')).headers['content-type'], /^application\/json/, 'plain JSON unless asked');
  t.match((await call('GET', '/v1/utility/credentials', hal)).headers['content-type'], /^application\/hal\+json; charset=utf-8$/);
  t.match((await call('GET', '/v1/utility/credentials', { accept: 'application/hal+json, application/json;q=0.5' })).headers['content-type'], /^application\/hal\+json/);
  const missing = await call('GET', '/v1/utility/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa', hal);
  t.equal(missing.statusCode, 404);
  t.match(missing.headers['content-type'], /^application\/json/, 'an error is no HAL resource');

  const created = await call('POST', '/v1/utility/credentials', { ...hal, 'content-type': 'application/hal+json' }, { providerId: SANDBOX_PROVIDER, username: 'hal', password: 'pass_good', interactive: true });
  t.equal(created.statusCode, 201, created.body);
  t.match(created.headers['content-type'], /^application\/hal\+json/);
  const { entityId } = created.json() as V1Credential;

  // Sending back what it was given, `interactive` included, is no error.
  const patched = await call('PATCH', `/v1/utility/credentials/${entityId}`, { 'content-type': 'application/hal+json' }, { correlationId: 'again', interactive: true });
  t.equal(patched.statusCode, 200, patched.body);
  t.equal((patched.json() as V1Credential).correlationId, 'again');
  const onlyInteractive = await call('PATCH', `/v1/utility/credentials/${entityId}`, {}, { interactive: false });
  t.equal(onlyInteractive.statusCode, 200, onlyInteractive.body);
  t.same(onlyInteractive.json(), patched.json(), 'a body of only `interactive` changes nothing, lastModified included');
  t.equal((await call('PATCH', `/v1/utility/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa`, {}, { interactive: true })).statusCode, 404, 'still only on a credential of the caller');

  const document = (await stack.app.inject({ method: 'GET', url: '/docs/json' })).json();
  t.ok(document.paths['/v1/utility/credentials'].get.responses['200'].content['application/hal+json'], 'the OpenAPI document lists both');
});

t.test('providers in v1 shape', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const client = await v1Client(stack);
  const { items } = await walk<{ entityId: string; providerName: string; country: string; _links: { self: V1Link } }>(
    client,
    'providers',
    '/v1/utility/providers?size=2',
  );
  t.same(
    items.map(({ entityId, providerName, country }) => ({ entityId, providerName, country })),
    [
      { entityId: 'prv_sandboxelectricxxxxxxxxxxx', providerName: 'Sandbox Electric', country: 'US' },
      { entityId: 'prv_sandboxenergyukxxxxxxxxxxx', providerName: 'Sandbox Energy UK', country: 'GB' },
      { entityId: 'prv_sandboxgasxxxxxxxxxxxxxxxx', providerName: 'Sandbox Gas', country: 'US' },
    ],
  );
  const one = await client.request<{ entityId: string }>('GET', items[2]?._links.self.href as string);
  t.match(one, { statusCode: 200, body: { entityId: 'prv_sandboxgasxxxxxxxxxxxxxxxx' } });
});

t.test('users with two-factor get 403 pointing at API keys, at login and with an older token', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const client = await v1Client(stack);
  t.equal((await client.request('GET', '/v1/utility/credentials')).statusCode, 200);

  const headers = { authorization: `Bearer ${client.token}` };
  const started = await stack.app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app', headers, payload: { password: stack.org.password } });
  t.equal(started.statusCode, 200);
  const confirmed = await stack.app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/app/confirm',
    headers,
    payload: { code: totpCode(started.json().otpauthUri, new Date()) },
  });
  t.equal(confirmed.statusCode, 200);

  const login = await stack.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email, password: stack.org.password } });
  t.equal(login.statusCode, 403);
  t.match(login.json(), { status: 403, message: /two-factor.*API key.*POST \/oauth2\/token/s });
  const wrongPassword = await stack.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: stack.org.email, password: 'not-it-at-all' } });
  t.equal(wrongPassword.statusCode, 401, 'the password is checked first, so 403 reveals nothing to a guesser');
  const older = await stack.app.inject({ method: 'GET', url: '/v1/utility/credentials', headers });
  t.match({ statusCode: older.statusCode, body: older.json() }, { statusCode: 403, body: { status: 403 } });
  t.notOk(older.headers['www-authenticate'], 'a 403 challenges for nothing: the token is good');
});

t.test('OpenAPI: v1 routes under the v1 tag, deprecated, with named V1 schemas', async (t) => {
  const stack = await buildStack(t, { isWorkerInProcess: false });
  const document = stack.app.swagger() as unknown as {
    paths: Record<string, Record<string, { tags: string[]; deprecated?: boolean }>>;
    components: { schemas: Record<string, unknown> };
  };
  const v1Operations = Object.entries(document.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([, operations]) => Object.values(operations));
  t.equal(v1Operations.length, 11);
  for (const operation of v1Operations) t.match(operation, { tags: ['v1'], deprecated: true });
  for (const name of ['V1Credential', 'V1CredentialPage', 'V1Account', 'V1Provider', 'V1Error', 'V1Login', 'V1Link']) {
    t.ok(document.components.schemas[name], `components.schemas.${name}`);
  }
});
