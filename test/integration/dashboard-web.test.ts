import t from 'tap';
import { createCredential, SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { buildStack, createOrganization } from '../helper.ts';

type Login = { session: { token: string } };

t.test('the Dashboard reaches /plug data through /dashboard/plug with its session, and state changes need our Origin', async (t) => {
  const stack = await buildStack(t, { env: { PUBLIC_URL: 'https://plug.example.com' } });
  const { app, org } = stack;
  const credential = await createCredential(stack, 'pass_mfa');
  const login = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password } });
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
  const { token } = (login.json() as Login).session;

  const listed = await app.inject({ url: '/dashboard/plug/credentials', headers: { cookie } });
  t.equal(listed.statusCode, 200);
  t.same((listed.json() as { data: { id: string }[] }).data.map((item) => item.id), [credential.id], 'the same credentials as /plug');
  t.equal(listed.headers['cache-control'], 'no-store');
  t.equal((await app.inject({ url: '/dashboard/plug/credentials' })).statusCode, 401, 'no session, no data');
  t.equal((await app.inject({ url: '/dashboard/plug/credentials', headers: org.headers })).statusCode, 401, 'an API access token is not a session');

  const linkUrl = `/dashboard/plug/credentials/${credential.id}/connectLink`;
  const noOrigin = await app.inject({ method: 'POST', url: linkUrl, headers: { cookie } });
  t.equal(noOrigin.statusCode, 403, 'a cookie-borne state change without Origin is refused');
  t.match(noOrigin.json(), { errors: [{ type: 'forbidden', details: { errorId: 'PB_CROSS_ORIGIN_REQUEST' } }] });
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { cookie, origin: 'https://evil.example' } })).statusCode, 403, 'another site is refused');
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { cookie, origin: 'null' } })).statusCode, 403, 'an opaque origin is refused');
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { cookie, origin: 'https://plug.example.com' } })).statusCode, 201, 'PUBLIC_URL is our origin');
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { cookie, origin: 'http://localhost:80' } })).statusCode, 201, 'so is the Host asked for');
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { authorization: `Bearer ${token}` } })).statusCode, 201, 'scripts with a Bearer session need no Origin');
  const bearer = { authorization: `Bearer ${token}` };
  const submitted = await app.inject({
    method: 'POST',
    url: '/dashboard/plug/credentials',
    headers: bearer,
    payload: { providerId: SANDBOX_PROVIDER, username: 'from-the-dashboard', password: 'pass' },
  });
  t.equal(submitted.statusCode, 201);
  const location = String(submitted.headers.location);
  t.equal(location, `/dashboard/plug/credentials/${(submitted.json() as { id: string }).id}`, 'Location is under the path the caller used');
  t.equal((await app.inject({ url: location, headers: bearer })).statusCode, 200, 'and opens with the same session');
  // Loopback (the tests' allowed targets), since the in-process workers deliver this test's events to it.
  const endpoint = await app.inject({ method: 'POST', url: '/dashboard/plug/webhooks/endpoints', headers: bearer, payload: { url: 'http://127.0.0.1:9/plugboard' } });
  t.equal(endpoint.statusCode, 201);
  t.equal(endpoint.headers.location, `/dashboard/plug/webhooks/endpoints/${(endpoint.json() as { id: string }).id}`);
  const logout = await app.inject({ method: 'POST', url: '/dashboard/logout', headers: { cookie, origin: 'https://evil.example' } });
  t.equal(logout.statusCode, 403, 'the check covers every /dashboard route');
  const encoded = `/%64ashboard/plug/credentials/${credential.id}/connectLink`;
  t.equal((await app.inject({ method: 'POST', url: encoded, headers: { cookie } })).statusCode, 403, 'whatever way the path is spelled');
  const spaced = `${cookie.replace('=', ' =')}`;
  t.equal((await app.inject({ method: 'POST', url: linkUrl, headers: { cookie: spaced } })).statusCode, 403, 'and however the cookie is spaced');

  const created = await app.inject({ method: 'POST', url: linkUrl, headers: { cookie, origin: 'https://plug.example.com' } });
  t.match((created.json() as { url: string }).url, /^https:\/\/plug\.example\.com\/connect#/);

  const stranger = await createOrganization(app, 'Stranger');
  const strangerLogin = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: stranger.email, password: stranger.password } });
  const strangerSession = { authorization: `Bearer ${(strangerLogin.json() as Login).session.token}` };
  t.equal((await app.inject({ url: `/dashboard/plug/credentials/${credential.id}`, headers: strangerSession })).statusCode, 404, 'other organizations see nothing');

  await app.services.dashboardUsers.create(org.organizationId, { email: 'member@example.com', password: 'member password 1', role: 'member' });
  const memberLogin = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: 'member@example.com', password: 'member password 1' } });
  const member = { authorization: `Bearer ${(memberLogin.json() as Login).session.token}` };
  t.equal((await app.inject({ url: '/dashboard/plug/credentials', headers: member })).statusCode, 200, 'members see credentials');
  t.equal((await app.inject({ url: '/dashboard/plug/webhooks/endpoints', headers: member })).statusCode, 403, 'webhook endpoints are for admins');
  t.equal((await app.inject({ url: '/dashboard/plug/webhooks/endpoints', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
  const [event] = (await app.inject({ url: '/dashboard/plug/events', headers: member })).json().data as { id: string }[];
  t.ok(event, 'members see the event log');
  const attemptsUrl = `/dashboard/plug/events/${event?.id}/attempts`;
  t.equal((await app.inject({ url: attemptsUrl, headers: member })).statusCode, 403, "but not deliveries: they name endpoints and hold receivers' answers");
  t.equal((await app.inject({ method: 'POST', url: `/dashboard/plug/events/${event?.id}/resend`, headers: member })).statusCode, 403, 'nor resend');
  t.equal((await app.inject({ url: attemptsUrl, headers: { authorization: `Bearer ${token}` } })).statusCode, 200);

  const paths = Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths);
  t.notOk(paths.some((path) => path.startsWith('/dashboard/plug') || path.startsWith('/connect')), 'the OpenAPI document describes /plug once');
  t.ok(paths.includes('/plug/credentials/{id}/connectLink'));
});
