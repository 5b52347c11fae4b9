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

t.test('an answer that is not UTF-8 is kept within maxResponseBytes too, though each bad byte decodes to three', async (t) => {
  const answers = [Buffer.alloc(10, 0xff), Buffer.concat([Buffer.from('ok '), Buffer.alloc(20, 0xff)])];
  const url = await receiver(t, (request, res) => res.writeHead(200).end(answers[Number(request.url?.slice(1))]));
  const short = await poster().post(`${url}/0`, {}, '{}');
  t.equal(Buffer.byteLength(short.responseBody ?? ''), 15, 'five replacement characters fit in 16 bytes, not ten');
  t.equal(short.responseBody, '\ufffd'.repeat(5));
  t.equal(short.isResponseBodyTruncated, true, 'and the record says something is missing');
  const long = await poster().post(`${url}/1`, {}, '{}');
  t.equal(long.responseBody, `ok ${'\ufffd'.repeat(4)}`);
  t.equal(long.isResponseBodyTruncated, true);
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
  t.match(outcome, { responseStatus: null, error: /hooks\.example\.test refused: it resolves to an address deliveries may not go to/ });
  t.equal(connections, 0);
});

/** A receiver that answers the first request 200 and then resets connections as `resets` says. */
async function resettingReceiver(t: Test, resets: (requestOnSocket: number, requestInAll: number) => boolean) {
  const requestsBySocket = new Map<unknown, number>();
  let requestInAll = 0;
  const url = await receiver(t, (request, res) => {
    const onSocket = (requestsBySocket.get(request.socket) ?? 0) + 1;
    requestsBySocket.set(request.socket, onSocket);
    requestInAll += 1;
    if (resets(onSocket, requestInAll)) request.socket.destroy();
    else res.writeHead(200).end('ok');
  });
  return { url, requests: () => requestInAll, sockets: () => requestsBySocket.size };
}

t.test('a kept-alive connection the receiver closes as it is reused is tried once more on a new one', async (t) => {
  // The receiver's idle timeout racing our reuse, played deterministically: a socket's second request is reset.
  const target = await resettingReceiver(t, (requestOnSocket) => requestOnSocket === 2);
  const send = poster();
  t.match(await send.post(`${target.url}/hook`, {}, '{}'), { responseStatus: 200 });
  t.match(await send.post(`${target.url}/hook`, {}, '{}'), { responseStatus: 200, error: null }, 'delivered on a new connection');
  t.equal(target.requests(), 3, 'the reset request and its second try');
  t.equal(target.sockets(), 2);
});

t.test('a reset is not tried again when the connection was new, nor twice', async (t) => {
  const target = await resettingReceiver(t, (_requestOnSocket, requestInAll) => requestInAll > 1);
  const send = poster();
  t.match(await send.post(`${target.url}/hook`, {}, '{}'), { responseStatus: 200 });
  const reset = await send.post(`${target.url}/hook`, {}, '{}');
  t.match(reset, { responseStatus: null, error: /ECONNRESET|socket hang up/ }, 'the second try on a new connection was reset too');
  t.equal(target.requests(), 3, 'one reset on the reused connection, one on the new: no third try');
  const fresh = await resettingReceiver(t, () => true);
  t.match(await poster().post(`${fresh.url}/hook`, {}, '{}'), { responseStatus: null, error: /ECONNRESET|socket hang up/ });
  t.equal(fresh.requests(), 1, 'a reset on a new connection is an answer: not tried again');
});
