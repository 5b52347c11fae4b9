import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { createWebhookPoster } from '../../src/webhooks/http-post.ts';
import { guardedLookup, parseCidrList } from '../../src/webhooks/address-guard.ts';

/** A loopback receiver; `handle` decides each answer. */
async function receiver(t: Test, handle: http.RequestListener) {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// Every name resolves to loopback: no lookup leaves the machine.
const resolveToLoopback: Parameters<typeof guardedLookup>[1] = (_hostname, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]);

const poster = (timeoutMs = 2_000, allow = '127.0.0.0/8') =>
  createWebhookPoster({ timeoutMs, lookup: guardedLookup(parseCidrList(allow), resolveToLoopback), userAgent: 'test-agent', maxResponseBytes: 16 });

t.test('sends the body with its headers and keeps the status, headers and body of the answer', async (t) => {
  let seen: { method?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
  const url = await receiver(t, (request, res) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      seen = { method: request.method, headers: request.headers, body };
      res.writeHead(202, { 'retry-after': '7' }).end('ok');
    });
  });
  const outcome = await poster().post(`${url}/hook`, { 'webhook-id': 'evt_1' }, '{"a":"é"}');
  t.same(outcome, { responseStatus: 202, responseHeaders: outcome.responseHeaders, responseBody: 'ok', isResponseBodyTruncated: false, error: null });
  t.equal(outcome.responseHeaders['retry-after'], '7');
  t.match(seen, { method: 'POST', body: '{"a":"é"}', headers: { 'webhook-id': 'evt_1', 'user-agent': 'test-agent', 'content-type': 'application/json', 'content-length': '10' } });
});

t.test('keeps at most maxResponseBytes of a long answer and says it was cut', async (t) => {
  const url = await receiver(t, (_request, res) => res.writeHead(400).end('x'.repeat(100_000)));
  const outcome = await poster().post(url, {}, '{}');
  t.match(outcome, { responseStatus: 400, responseBody: 'x'.repeat(16), isResponseBodyTruncated: true, error: null });
});

t.test('a redirect is an answer, not followed', async (t) => {
  let requests = 0;
  const url = await receiver(t, (_request, res) => {
    requests += 1;
    res.writeHead(302, { location: '/elsewhere' }).end();
  });
  const outcome = await poster().post(url, {}, '{}');
  t.equal(outcome.responseStatus, 302);
  t.equal(requests, 1);
});

t.test('a receiver that never answers fails at the deadline; one that stalls mid-body keeps its status', async (t) => {
  const silent = await receiver(t, () => {});
  const started = Date.now();
  const timedOut = await poster(300).post(silent, {}, '{}');
  t.match(timedOut, { responseStatus: null, responseBody: null, error: /ETIMEDOUT/ });
  t.ok(Date.now() - started >= 290, 'waited for the deadline');

  const stalling = await receiver(t, (_request, res) => {
    res.writeHead(200);
    res.write('part');
  });
  const cut = await poster(300).post(stalling, {}, '{}');
  t.match(cut, { responseStatus: 200, responseBody: 'part', isResponseBodyTruncated: true, error: null });
});

t.test('transport errors come back as text, not thrown', async (t) => {
  // A port that was just free: nothing listens there.
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const outcome = await poster().post(`http://127.0.0.1:${port}/`, {}, '{}');
  t.match(outcome, { responseStatus: null, responseBody: null, error: /ECONNREFUSED/ });
});

t.test('a name resolving outside the allow-list is refused before connecting', async (t) => {
  let connections = 0;
  const url = await receiver(t, (_request, res) => {
    connections += 1;
    res.end();
  });
  // The name resolves to loopback, which this allow-list does not include.
  const outcome = await poster(2_000, '10.0.0.0/8').post(url.replace('127.0.0.1', 'hooks.example.test'), {}, '{}');
  t.match(outcome, { responseStatus: null, error: /hooks\.example\.test refused: .*loopback/ });
  t.equal(connections, 0);
});
