/**
 * The malformed-request battery: every one gets a 4xx in the SPEC envelope, never a 5xx. Most go through
 * `inject`; the ones Node's HTTP parser sees first (huge headers, raw bytes) go over a real socket.
 */
import { connect } from 'node:net';
import t from 'tap';
import { Type } from 'typebox';
import type { App } from '../../src/app.ts';
import { API_VERSIONS } from '../../src/plugins/api-version.ts';
import { build, capturingLogger, createOrganization } from '../helper.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';

const SECRET_LOOKING = 'password=hunter2 at redis://admin:s3cret@10.0.0.5:6379';

/** A strict body schema like the real routes use, and a handler that fails the way a bug would. */
function testRoutes(app: App) {
  const Body = Type.Object({ name: Type.String({ maxLength: 50 }), count: Type.Optional(Type.Integer()) }, { additionalProperties: false });
  app.post('/plug/test-strict', { preHandler: app.requireAccessToken, schema: { body: Body } }, async () => ({ ok: true }));
  app.get('/test-bug', async () => {
    throw new Error(SECRET_LOOKING);
  });
}

interface Case {
  name: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer;
  authorized?: boolean;
  status: number;
}

const twoMiB = Buffer.alloc(2 * 1024 * 1024, 'a');
const json = { 'content-type': 'application/json' };

const CASES: Case[] = [
  { name: 'bad JSON', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name": ', status: 400 },
  { name: 'JSON that is not an object', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '"just a string"', status: 400 },
  { name: 'empty JSON body', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '', status: 400 },
  { name: 'wrong type', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name": 42}', status: 400 },
  { name: 'wrong type (number as string)', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name": "a", "count": "3"}', status: 400 },
  { name: 'unknown field', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name": "a", "admin": true}', status: 400 },
  { name: 'missing field', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{}', status: 400 },
  { name: 'too long a string', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: JSON.stringify({ name: 'x'.repeat(51) }), status: 400 },
  { name: 'bytes that are not UTF-8', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: Buffer.from('{"name":"caf\xe9"}', 'latin1'), status: 400 },
  { name: 'a charset other than UTF-8', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'application/json; charset=iso-8859-1' }, payload: '{"name":"a"}', status: 415 },
  { name: 'charset="UTF-8", quoted', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'application/json; charset="UTF-8"' }, payload: '{"name":"café"}', status: 200 },
  { name: 'prototype pollution attempt', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name":"a","__proto__":{"admin":true}}', status: 400 },
  { name: 'null byte in a JSON string', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name":"a\\u0000b","extra":1}', status: 400 },
  { name: 'deeply nested JSON', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: `${'['.repeat(5000)}${']'.repeat(5000)}`, status: 400 },
  { name: '2 MiB JSON body', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: twoMiB, status: 413 },
  { name: '2 MiB token request', method: 'POST', url: '/oauth2/token', headers: json, payload: twoMiB, status: 413 },
  { name: '2 MiB form token request', method: 'POST', url: '/oauth2/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: twoMiB, status: 413 },
  { name: 'text/plain body', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'text/plain' }, payload: 'name=a', status: 415 },
  { name: 'multipart body', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\na\r\n--x--\r\n', status: 415 },
  { name: 'XML body', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'application/xml' }, payload: '<name>a</name>', status: 415 },
  { name: 'XML token request', method: 'POST', url: '/oauth2/token', headers: { 'content-type': 'text/xml' }, payload: '<grant_type>client_credentials</grant_type>', status: 415 },
  { name: 'form body on a JSON-only route', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=a', status: 415 },
  { name: 'body without content type', method: 'POST', url: '/plug/test-strict', authorized: true, headers: { 'content-type': '' }, payload: 'name=a', status: 415 },
  { name: 'token request with wrong grant type', method: 'POST', url: '/oauth2/token', headers: json, payload: '{"grant_type":"password"}', status: 400 },
  { name: 'token request with an array grant type', method: 'POST', url: '/oauth2/token', headers: json, payload: '{"grant_type":["client_credentials"]}', status: 400 },
  { name: 'token request with junk Basic credentials', method: 'POST', url: '/oauth2/token', headers: { ...json, authorization: 'Basic !!!not-base64' }, payload: '{"grant_type":"client_credentials"}', status: 401 },
  { name: 'token request with Basic lacking a colon', method: 'POST', url: '/oauth2/token', headers: { ...json, authorization: `Basic ${Buffer.from('justanid').toString('base64')}` }, payload: '{"grant_type":"client_credentials"}', status: 401 },
  { name: 'token request with bad percent-encoding in Basic', method: 'POST', url: '/oauth2/token', headers: { ...json, authorization: `Basic ${Buffer.from('id%ZZ:secret').toString('base64')}` }, payload: '{"grant_type":"client_credentials"}', status: 401 },
  { name: 'unknown route', url: '/nope', status: 404 },
  { name: 'unknown route under /plug', url: '/plug/nope', authorized: true, status: 404 },
  { name: 'unknown method', method: 'DELETE', url: '/oauth2/token', status: 404 },
  // The token routes allow fields of any shape (OAuth clients send extra ones): a walk of the body must not overflow.
  ...['/oauth2/token', '/oauth2/revoke'].map((url) => ({
    name: `${url} with a field nested 10,000 deep`,
    method: 'POST' as const,
    url,
    headers: json,
    payload: `{"grant_type":"client_credentials","token":"x","x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
    status: 400,
  })),
  { name: '/plug without Authorization', url: '/plug/organization', status: 401 },
  { name: '/plug with junk Authorization', url: '/plug/organization', headers: { authorization: 'junk' }, status: 401 },
  { name: '/plug with an empty Bearer (malformed: RFC 6750 §3.1)', url: '/plug/organization', headers: { authorization: 'Bearer ' }, status: 400 },
  { name: '/plug with an unknown token', url: '/plug/organization', headers: { authorization: 'Bearer abcdefghijklmnopqrstuvwxyz' }, status: 401 },
  { name: '/plug with Basic credentials', url: '/plug/organization', headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, status: 401 },
  { name: '/plug with a 10 kB token', url: '/plug/organization', headers: { authorization: `Bearer ${'a'.repeat(10_000)}` }, status: 401 },
  { name: 'unknown Plug-Version', url: '/plug/organization', authorized: true, headers: { 'plug-version': '1999-01-01' }, status: 400 },
  { name: 'junk Plug-Version', url: '/healthz', headers: { 'plug-version': 'latest; DROP TABLE' }, status: 400 },
  { name: 'junk Arcadia-Version', url: '/plug/organization', authorized: true, headers: { 'arcadia-version': '2024' }, status: 400 },
  { name: 'invalid percent-encoding in the path', url: '/plug/organization/%E0%A4%A', authorized: true, status: 400 },
  { name: 'invalid percent-encoding in an unknown path', url: '/nope/%ZZ', status: 400 },
  { name: 'invalid percent-encoding in the query', url: '/plug/organization?x=%ZZ', authorized: true, status: 200 },
  { name: 'encoded null byte in the path', url: '/plug/organization%00', authorized: true, status: 404 },
  { name: 'a lone surrogate in a JSON string', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name":"a\\ud800"}', status: 400 },
  { name: 'a lone low surrogate in a JSON string', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name":"\\udc00x"}', status: 400 },
  {
    name: 'a lone surrogate in a webhook endpoint (Redis scripts could not read it back)',
    method: 'POST',
    url: '/plug/webhooks/endpoints',
    authorized: true,
    headers: json,
    payload: '{"url":"https://hooks.example.com/a","description":"\\ud800"}',
    status: 400,
  },
  { name: 'a number too large to be finite', method: 'POST', url: '/plug/test-strict', authorized: true, headers: json, payload: '{"name":"a","count":1e309}', status: 400 },
  { name: 'a field sent to an action that takes no body', method: 'POST', url: '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa/disable', authorized: true, headers: json, payload: '{"force":true}', status: 400 },
  { name: 'a scalar sent to an action that takes no body', method: 'POST', url: '/plug/events/evt_aaaaaaaaaaaaaaaaaaaaaaaaaa/resend', authorized: true, headers: json, payload: '"now"', status: 400 },
  { name: 'an array sent to an action that takes no body', method: 'POST', url: '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa/disable', authorized: true, headers: json, payload: '[]', status: 400 },
  { name: 'a body sent to an unknown route', method: 'POST', url: '/plug/nope', authorized: true, headers: json, payload: '{"a":1}', status: 404 },
  { name: 'an empty object sent to an action is no body at all', method: 'POST', url: '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa/disable', authorized: true, headers: json, payload: '{}', status: 404 },
  { name: 'page=Infinity', url: '/plug/credentials?page=Infinity', authorized: true, status: 400 },
  { name: 'size=Infinity', url: '/plug/accounts?size=Infinity', authorized: true, status: 400 },
  { name: 'size=-Infinity', url: '/plug/webhooks/endpoints?size=-Infinity', authorized: true, status: 400 },
  { name: 'page in hexadecimal', url: '/plug/credentials?page=0x10', authorized: true, status: 400 },
  { name: 'blank page', url: '/plug/credentials?page=%20', authorized: true, status: 400 },
  { name: 'page beyond any list', url: '/plug/credentials?page=1e20', authorized: true, status: 400 },
  {
    name: 'a NUL in a credential username',
    method: 'POST',
    url: '/plug/credentials',
    authorized: true,
    headers: json,
    payload: JSON.stringify({ providerId: 'prv_sandboxelectricxxxxxxxxxxx', username: 'a\u0000b', password: 'pass_good' }),
    status: 400,
  },
  {
    name: 'an ESC in a correlationId',
    method: 'POST',
    url: '/plug/credentials',
    authorized: true,
    headers: json,
    payload: JSON.stringify({ providerId: 'prv_sandboxelectricxxxxxxxxxxx', username: 'ab', password: 'pass_good', correlationId: 'c\u001b[31m' }),
    status: 400,
  },
  {
    name: 'a BEL in a webhook description',
    method: 'POST',
    url: '/plug/webhooks/endpoints',
    authorized: true,
    headers: json,
    payload: JSON.stringify({ url: 'https://hooks.example.com/a', description: 'ding\u0007' }),
    status: 400,
  },
  {
    name: 'a webhook URL on port 0',
    method: 'POST',
    url: '/plug/webhooks/endpoints',
    authorized: true,
    headers: json,
    payload: JSON.stringify({ url: 'https://hooks.example.com:0/a' }),
    status: 400,
  },
  { name: 'event log limit=Infinity', url: '/plug/events?limit=Infinity', authorized: true, status: 400 },
  { name: 'bad Idempotency-Key is ignored where not supported', url: '/plug/organization', authorized: true, headers: { 'idempotency-key': ' ' }, status: 200 },
];

t.test('every malformed request gets a 4xx in the envelope', async (t) => {
  const app = await build(t, { routes: testRoutes });
  const org = await createOrganization(app);
  for (const c of CASES) {
    const response = await app.inject({
      method: c.method ?? 'GET',
      url: c.url,
      headers: { ...(c.authorized ? org.headers : {}), ...c.headers },
      ...(c.payload !== undefined ? { payload: c.payload } : {}),
    });
    t.equal(response.statusCode, c.status, `${c.name}: ${response.statusCode} ${response.body.slice(0, 200)}`);
    if (response.statusCode >= 400) {
      const body = response.json();
      t.ok(Array.isArray(body.errors) && body.errors.length === 1, `${c.name}: envelope`);
      t.type(body.errors[0].type, 'string', `${c.name}: type`);
      t.type(body.errors[0].details?.errorId, 'string', `${c.name}: errorId`);
    }
  }
});

t.test('an error raised before routing carries the request id, no-store and the version like any other answer', async (t) => {
  const app = await build(t);
  for (const url of ['/nope/%ZZ', '/v1/nope/%ZZ', '/plug/credentials/%ZZ']) {
    const response = await app.inject({ url });
    t.equal(response.statusCode, 400, url);
    t.match(response.headers, { 'x-request-id': /.+/, 'cache-control': 'no-store', 'plug-version': API_VERSIONS[0] }, url);
  }
});

t.test("a caller's X-Request-Id is kept when it looks like an id, replaced otherwise", async (t) => {
  const app = await build(t);
  const echoed = async (id: string) => (await app.inject({ url: '/healthz', headers: { 'x-request-id': id } })).headers['x-request-id'];
  t.equal(await echoed('trace-4bf92f3577b34da6.a3ce929d0e0e4736:01'), 'trace-4bf92f3577b34da6.a3ce929d0e0e4736:01');
  for (const junk of ['x'.repeat(5000), 'a b', 'id"}\n{"level":60,"msg":"forged']) {
    const id = await echoed(junk);
    t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-/, `${junk.slice(0, 12)}… gets a new id`);
  }
});

t.test('valid JSON with prototype-poisoning keys is refused as such, not called invalid JSON', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const post = (payload: string) => app.inject({ method: 'POST', url: '/plug/credentials', headers: { ...org.headers, 'content-type': 'application/json' }, payload });
  for (const payload of ['{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"isAdmin":true}}}']) {
    const response = await post(payload);
    t.equal(response.statusCode, 400, payload);
    t.match(response.json(), { errors: [{ type: 'invalidParameter', message: /may not use the keys "__proto__"/, details: { errorId: 'PB_INVALID_PARAMETER' } }] }, payload);
  }
  t.match((await post('{"__proto__":')).json(), { errors: [{ message: 'The request body is not valid JSON', details: { errorId: 'PB_MALFORMED_JSON' } }] }, 'broken JSON is still that');
});

t.test('an unknown version is named by the header it came in', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  for (const header of ['Plug-Version', 'Arcadia-Version']) {
    const response = await app.inject({ url: '/plug/organization', headers: { ...org.headers, [header]: '1999-01-01' } });
    t.match(response.json(), { errors: [{ param: header, message: new RegExp(`^Unknown ${header}`) }] }, header);
  }
  const both = await app.inject({ url: '/plug/organization', headers: { ...org.headers, 'Plug-Version': '2026-11-01', 'Arcadia-Version': '1999-01-01' } });
  t.match(both.json(), { errors: [{ param: 'Arcadia-Version' }] }, 'a valid Plug-Version does not hide a bad Arcadia-Version');
  const agreeing = await app.inject({ url: '/plug/organization', headers: { ...org.headers, 'Plug-Version': '2026-11-01', 'Arcadia-Version': ' 2026-11-01' } });
  t.equal(agreeing.statusCode, 200, 'both naming the same version');
});

t.test('an unknown query parameter of a v2 list is a 400 naming it (a misspelt filter would list everything); v1 ignores them', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const misspelt = await app.inject({ url: '/plug/credentials?corelationId=cust-1', headers: org.headers });
  t.equal(misspelt.statusCode, 400);
  t.match(misspelt.json(), { errors: [{ type: 'invalidParameter', message: 'unknown query parameter "corelationId"', param: 'corelationId' }] });
  for (const url of ['/plug/events?after_id=x', '/plug/accounts?credential=x', '/plug/providers?q=x', '/plug/webhooks/endpoints?limit=5']) {
    t.equal((await app.inject({ url, headers: org.headers })).statusCode, 400, url);
  }
  const v1 = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } });
  const legacy = await app.inject({ url: '/v1/utility/providers?cacheBuster=1', headers: { authorization: `Bearer ${v1.json().token as string}` } });
  t.equal(legacy.statusCode, 200, 'v1 clients keep working as before');
});

t.test('a value outside a list is answered with the list', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const events = await app.inject({ url: '/plug/events?type=nope', headers: org.headers });
  t.match(events.json(), { errors: [{ param: 'type', message: /^type must be one of: credential\.created, .*webhook\.test/ }] });
  const credentials = await app.inject({ url: '/plug/credentials?status=NOPE', headers: org.headers });
  t.match(credentials.json(), { errors: [{ param: 'status', message: 'status must be one of: CONNECTION_IN_PROGRESS, CONNECTION_SUCCESS, CONNECTION_FAILURE' }] });
  const admin = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password } });
  const headers = { authorization: `Bearer ${admin.json().session.token as string}` };
  const user = await app.inject({ method: 'POST', url: '/dashboard/users', headers, payload: { email: 'x@example.com', password: 'long enough', role: 'owner' } });
  t.match(user.json(), { errors: [{ param: 'role', message: 'role must be one of: admin, member' }] }, 'a union of literals too');
});

t.test('a 5xx body never carries internals', async (t) => {
  const app = await build(t, { routes: testRoutes });
  const response = await app.inject({ method: 'GET', url: '/test-bug' });
  t.equal(response.statusCode, 500);
  t.same(response.json(), { errors: [{ type: 'internalServerError', message: 'Something went wrong on our side', details: { errorId: 'PB_INTERNAL' } }] });
  t.notMatch(response.body, /hunter2|s3cret|10\.0\.0\.5|Error:|at /);
});

/** Sends raw bytes and returns the raw answer, for what Node's HTTP parser rejects before Fastify. */
async function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    socket.end(bytes);
  });
}

t.test('requests Node rejects before routing get the envelope too', async (t) => {
  const app = await build(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };

  const cases: { name: string; bytes: string; status: number; type?: string; isV1?: boolean }[] = [
    { name: 'huge headers', bytes: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(64 * 1024)}\r\n\r\n`, status: 431, type: 'headersTooLarge' },
    { name: 'not HTTP at all', bytes: 'HELLO THERE\r\n\r\n', status: 400 },
    { name: 'huge headers on v1', bytes: `GET /v1/utility/credentials HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(64 * 1024)}\r\n\r\n`, status: 431, isV1: true },
    { name: 'bad header bytes on v1', bytes: 'GET /v1/utility/credentials HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', status: 400, isV1: true },
    { name: 'null byte in the request line', bytes: 'GET /healthz\u0000 HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
    { name: 'null byte in a header value', bytes: 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', status: 400 },
    { name: 'HTTP/1.1 without Host', bytes: 'GET /healthz HTTP/1.1\r\n\r\n', status: 400 },
    { name: 'conflicting Content-Length', bytes: 'POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', status: 400 },
  ];
  for (const c of cases) {
    const answer = await rawRequest(port, c.bytes);
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    t.match(head, new RegExp(`^HTTP/1.1 ${c.status} `), `${c.name}: ${head.split('\r\n')[0]}`);
    t.match(head, /content-type: application\/json/i, `${c.name}: JSON`);
    t.match(head, new RegExp(`\r\nPlug-Version: ${API_VERSIONS[0]}\r\n`, 'i'), `${c.name}: the version, as every answer`);
    t.match(head, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/i, `${c.name}: a request id, as every answer`);
    t.match(head, /\r\nCache-Control: no-store\r\n/i, `${c.name}: no-store, as every answer`);
    if (c.isV1) {
      t.match(JSON.parse(body), { status: c.status, message: /./ }, `${c.name}: v1's shape`);
      continue;
    }
    t.ok(JSON.parse(body).errors?.[0]?.details?.errorId, `${c.name}: envelope`);
    t.equal(JSON.parse(body).errors?.[0]?.type, c.type ?? 'invalidParameter', `${c.name}: its type`);
  }
});

/** Sends `bytes` on a new connection without ending it, and resolves with all that came back once the server closed it. */
function stalledRequest(port: number, bytes: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('close', () => resolve(received));
    socket.on('error', (error) => (received ? resolve(received) : reject(error)));
    socket.write(bytes);
  });
}

t.test('a request whose body stalls gets a 408 in the envelope once REQUEST_TIMEOUT_MS is up, and its socket is closed', async (t) => {
  const { lines, logger } = capturingLogger();
  const app = await build(t, { env: { REQUEST_TIMEOUT_MS: '1000' }, logger });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const started = Date.now();
  // Promises 100 bytes and sends 6, without closing its side.
  const stalled = (path: string) => stalledRequest(port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`);
  const [head = '', body = ''] = (await stalled('/oauth2/token?client_secret=stalled-secret')).split('\r\n\r\n');
  t.match(head, /^HTTP\/1.1 408 /);
  const requestId = /\r\nX-Request-Id: ([0-9a-f-]{36})\r\n/i.exec(head)?.[1];
  const logged = lines.map((line) => JSON.parse(line) as { reqId?: string; msg?: string; url?: string });
  t.ok(logged.some((line) => line.msg === 'incoming request' && line.reqId === requestId), "the answer's id is the one the request was logged under");
  t.match(logged.find((line) => line.reqId === requestId && line.msg === 'The request took too long to arrive'), { url: '/oauth2/token?client_secret=%5Bredacted%5D' }, 'and so is the 408, without the secret in the URL');
  t.notMatch(lines.join('\n'), /stalled-secret/);
  t.match(JSON.parse(body), { errors: [{ type: 'requestTimeout', details: { errorId: 'PB_REQUEST_TIMEOUT' } }] });
  t.ok(Date.now() - started < 5000, `answered ${Date.now() - started} ms after it stalled`);

  const [v1Head = '', v1Body = ''] = (await stalled('/v1/auth/login')).split('\r\n\r\n');
  t.match(v1Head, /^HTTP\/1.1 408 /);
  t.same(JSON.parse(v1Body), { status: 408, message: 'The request took too long to arrive' }, "in v1's shape under /v1, as every v1 error");
});

t.test('charset=utf8, the alias many clients send, is UTF-8; an empty JSON body is named as such', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const created = await app.inject({
    method: 'POST',
    url: '/plug/credentials',
    headers: { ...org.headers, 'content-type': 'application/json; charset=utf8' },
    payload: JSON.stringify({ providerId: SANDBOX_PROVIDER, username: 'zoë', password: 'p' }),
  });
  t.equal(created.statusCode, 201, created.body);
  t.equal(created.json().username, 'zoë');

  const empty = await app.inject({ method: 'POST', url: '/plug/credentials', headers: { ...org.headers, 'content-type': 'application/json' }, payload: '' });
  t.equal(empty.statusCode, 400);
  t.match(empty.json(), { errors: [{ type: 'invalidParameter', details: { errorId: 'PB_EMPTY_JSON_BODY' } }] });
});
