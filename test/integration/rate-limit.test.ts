import t from 'tap';
import { sessionHeaders } from '../dashboard-helper.ts';
import { build, createOrganization, keysMatching, testConfig, type TestOrganization } from '../helper.ts';

t.test('authenticated routes are limited per client, with Retry-After and the envelope', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_PER_MINUTE: '3' } });
  const first = await createOrganization(app);

  for (let i = 0; i < 3; i += 1) {
    const ok = await app.inject({ method: 'GET', url: '/plug/organization', headers: first.headers });
    t.equal(ok.statusCode, 200);
    t.equal(ok.headers['x-ratelimit-limit'], '3');
  }
  const limited = await app.inject({ method: 'GET', url: '/plug/organization', headers: first.headers });
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().errors[0].type, 'tooManyRequests');
  t.equal(limited.json().errors[0].details.errorId, 'PB_TOO_MANY_REQUESTS');
  const retryAfter = Number(limited.headers['retry-after']);
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After is a number of seconds (${retryAfter})`);
  const [counter] = await keysMatching(app.services.ctx.redis, `${app.services.ctx.keys.rateLimit}client:*`);
  const msLeft = await app.services.ctx.redis.pttl(counter ?? 'missing');
  t.ok(msLeft > 0 && retryAfter * 1000 >= msLeft, `a client waiting Retry-After is not early (${retryAfter} s, window ends in ${msLeft} ms)`);

  // Same IP (inject), other client: counted apart, so the limit is per client and not per address.
  const other = await createOrganization(app);
  const otherResponse = await app.inject({ method: 'GET', url: '/plug/organization', headers: other.headers });
  t.equal(otherResponse.statusCode, 200);

  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200, 'health checks are never limited');
  t.notOk(health.headers['x-ratelimit-limit']);
});

t.test('dashboard and v1 users are counted per user, not per address', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_PER_MINUTE: '3' } });
  const v1Token = async (org: TestOrganization) => {
    const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } });
    return { authorization: `Bearer ${login.json().token as string}` };
  };
  const surfaces = [
    { name: 'v1', url: '/v1/utility/providers', headersOf: v1Token },
    { name: 'dashboard', url: '/dashboard/me', headersOf: (org: TestOrganization) => sessionHeaders(app, org.email, org.password) },
  ];
  for (const { name, url, headersOf } of surfaces) {
    // Same address (inject), two users of two organizations.
    const [first, second] = [await headersOf(await createOrganization(app)), await headersOf(await createOrganization(app))];
    for (let i = 0; i < 3; i += 1) t.equal((await app.inject({ method: 'GET', url, headers: first })).statusCode, 200, `${name}: within the limit`);
    t.equal((await app.inject({ method: 'GET', url, headers: first })).statusCode, 429, `${name}: the first user is limited`);
    t.equal((await app.inject({ method: 'GET', url, headers: second })).statusCode, 200, `${name}: the second is not`);
  }
});

t.test('POST /oauth2/token is limited per IP address', async (t) => {
  const app = await build(t, { env: { TOKEN_RATE_LIMIT_PER_MINUTE: '2' } });
  const org = await createOrganization(app); // uses one token request
  const request = (remoteAddress: string) =>
    app.inject({
      method: 'POST',
      url: '/oauth2/token',
      remoteAddress,
      payload: { grant_type: 'client_credentials', client_id: org.clientId, client_secret: 'wrong-secret' },
    });

  t.equal((await request('127.0.0.1')).statusCode, 401);
  const limited = await request('127.0.0.1');
  t.equal(limited.statusCode, 429);
  t.ok(Number(limited.headers['retry-after']) >= 1);
  t.equal((await request('10.1.2.3')).statusCode, 401, 'another address has its own budget');
});

t.test('behind a load balancer named in TRUST_PROXY, X-Forwarded-For names the client; from anywhere else it is ignored', async (t) => {
  const app = await build(t, { env: { TOKEN_RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: '10.0.0.0/8, ' } });
  const request = (remoteAddress: string, forwardedFor: string) =>
    app.inject({ method: 'POST', url: '/oauth2/token', remoteAddress, headers: { 'x-forwarded-for': forwardedFor }, payload: { grant_type: 'client_credentials' } });

  t.equal((await request('10.0.0.5', '203.0.113.1')).statusCode, 401);
  t.equal((await request('10.0.0.5', '203.0.113.1')).statusCode, 429, 'one client through the balancer is limited');
  t.equal((await request('10.0.0.5', '203.0.113.2')).statusCode, 401, 'another client through the same balancer is not');
  t.equal((await request('192.0.2.9', '203.0.113.3')).statusCode, 401);
  t.equal((await request('192.0.2.9', '203.0.113.4')).statusCode, 429, 'a client not behind the balancer cannot pick its address');
  t.throws(() => testConfig({ TRUST_PROXY: 'the load balancer' }), /TRUST_PROXY/);
});

t.test('the counters live in Redis under the key prefix, so every API process shares them', async (t) => {
  const app = await build(t, { env: { TOKEN_RATE_LIMIT_PER_MINUTE: '5' } });
  await app.inject({ method: 'POST', url: '/oauth2/token', payload: { grant_type: 'client_credentials' } });
  const { redis, keys } = app.services.ctx;
  const counters = await keysMatching(redis, `${keys.rateLimit}*`);
  t.equal(counters.length, 1);
  t.equal(await redis.get(counters[0]!), '1');
});
