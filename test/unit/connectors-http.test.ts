// The shared provider HTTP client against a scripted loopback server: what it retries, what it maps to
// which error, and what it deliberately does not do (follow redirects).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import { CookieJar } from 'tough-cookie';
import { createProviderHttp } from '../../src/connectors/http.ts';
import { ProviderProtocolError, ProviderUnavailableError } from '../../src/connectors/types.ts';

type Handler = (request: IncomingMessage, response: ServerResponse, requestNumber: number) => void;

/** A loopback server whose behaviour each test scripts; counts the requests it receives per path. */
async function startServer(handlers: Record<string, Handler>) {
  const requestCounts = new Map<string, number>();
  const server = createHttpServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const count = (requestCounts.get(path) ?? 0) + 1;
    requestCounts.set(path, count);
    const handler = handlers[path];
    if (handler) handler(request, response, count);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requestCounts };
}

const http = createProviderHttp({ responseTimeoutMs: 1_000 });
const resetFirst: Handler = (request, response, requestNumber) => {
  if (requestNumber === 1) request.socket.destroy();
  else response.end('second time lucky');
};

const server = await startServer({
  '/reset-once': resetFirst,
  '/reset-once-post': resetFirst,
  '/reset-always': (request) => request.socket.destroy(),
  '/redirect': (_request, response) => response.writeHead(302, { location: '/elsewhere' }).end(),
  '/elsewhere': (_request, response) => response.end('followed'),
  '/maintenance': (_request, response) => response.writeHead(503).end('down'),
  '/bad-gateway': (_request, response) => response.writeHead(502).end(),
  '/gateway-timeout': (_request, response) => response.writeHead(504).end('upstream timed out'),
  '/broken': (_request, response) => response.writeHead(500).end('oops'),
  '/set-cookie': (_request, response) => response.writeHead(200, { 'set-cookie': 'sid=abc; Path=/; HttpOnly' }).end(),
  '/huge': (_request, response) => {
    // Streams until the client hangs up, so a client without a limit would never finish.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const write = () => {
      while (!response.destroyed && response.write(chunk));
      if (!response.destroyed) response.once('drain', write);
    };
    response.writeHead(200);
    write();
  },
  '/just-fits': (_request, response) => response.end('x'.repeat(1024)),
  '/echo-headers': (request, response) =>
    response.end(JSON.stringify({ cookie: request.headers.cookie, userAgent: request.headers['user-agent'] })),
});

t.test('a GET whose connection is reset is tried once more', async (t) => {
  const response = await http.request({ method: 'GET', url: `${server.url}/reset-once`, cookieJar: new CookieJar() });
  t.equal(response.body, 'second time lucky');
  t.equal(server.requestCounts.get('/reset-once'), 2);
});

t.test('a GET reset twice, or a POST reset once, is unavailable', async (t) => {
  await t.rejects(http.request({ method: 'GET', url: `${server.url}/reset-always`, cookieJar: new CookieJar() }), ProviderUnavailableError);
  t.equal(server.requestCounts.get('/reset-always'), 2, 'one retry only');
  await t.rejects(
    http.request({ method: 'POST', url: `${server.url}/reset-once-post`, cookieJar: new CookieJar(), json: { code: '123456' } }),
    { name: 'ProviderUnavailableError', message: /ECONNRESET/ },
  );
  t.equal(server.requestCounts.get('/reset-once-post'), 1, 'a POST may have been acted on, so it is not repeated');
});

t.test('redirects come back as responses, never followed', async (t) => {
  const response = await http.request({ method: 'GET', url: `${server.url}/redirect`, cookieJar: new CookieJar() });
  t.equal(response.statusCode, 302);
  t.equal(response.headers.location, '/elsewhere');
  t.equal(server.requestCounts.get('/elsewhere'), undefined);
});

t.test('502/503/504 mean unavailable; other statuses are the connector’s to judge', async (t) => {
  for (const path of ['/maintenance', '/bad-gateway', '/gateway-timeout']) {
    await t.rejects(http.request({ method: 'GET', url: `${server.url}${path}`, cookieJar: new CookieJar() }), ProviderUnavailableError, path);
  }
  const broken = await http.request({ method: 'GET', url: `${server.url}/broken`, cookieJar: new CookieJar() });
  t.equal(broken.statusCode, 500);
  t.equal(broken.body, 'oops');
});

t.test('errors name the target without its query string', async (t) => {
  const error = await http
    .request({ method: 'GET', url: `${server.url}/maintenance?token=secret-value`, cookieJar: new CookieJar() })
    .catch((caught: unknown) => caught);
  t.match(String(error), `GET ${server.url}/maintenance answered HTTP 503`);
  t.notMatch(String(error), /secret-value/);
});

t.test('cookies go into the jar the caller passes, and back out of it', async (t) => {
  const jar = new CookieJar();
  await http.request({ method: 'POST', url: `${server.url}/set-cookie`, cookieJar: jar });
  const echoed = await http.request({ method: 'GET', url: `${server.url}/echo-headers`, cookieJar: jar });
  t.match(JSON.parse(echoed.body), { cookie: 'sid=abc', userAgent: /^Plugboard/ });
  const fresh = await http.request({ method: 'GET', url: `${server.url}/echo-headers`, cookieJar: new CookieJar() });
  t.same(JSON.parse(fresh.body).cookie, undefined, 'no cookie leaks between jars');
});

t.test('an answer that is not HTTP is a protocol error', async (t) => {
  const sockets: Socket[] = [];
  const garbage = createTcpServer((socket) => {
    sockets.push(socket);
    socket.end('this is not HTTP\r\n\r\n');
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => garbage.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/`;
  await t.rejects(http.request({ method: 'GET', url, cookieJar: new CookieJar() }), ProviderProtocolError);
});

t.test('a body beyond maxResponseBytes is a protocol error, read no further than the limit', async (t) => {
  const limited = createProviderHttp({ responseTimeoutMs: 1_000, maxResponseBytes: 1024 });
  t.equal((await limited.request({ method: 'GET', url: `${server.url}/just-fits`, cookieJar: new CookieJar() })).body.length, 1024);
  const startedAt = Date.now();
  await t.rejects(limited.request({ method: 'GET', url: `${server.url}/huge`, cookieJar: new CookieJar() }), {
    name: 'ProviderProtocolError',
    message: `GET ${server.url}/huge answered more than 1024 bytes`,
  });
  t.ok(Date.now() - startedAt < 1_000, 'stopped reading at once, not at the request timeout');
});
