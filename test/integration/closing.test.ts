/** Servers close in the time of the requests in flight, not of their keep-alive connections (plugins/closing.ts). */
import http from 'node:http';
import Fastify from 'fastify';
import t from 'tap';
import { buildOperationsApp } from '../../src/app.ts';
import closing from '../../src/plugins/closing.ts';
import { buildSandboxSite } from '../../src/sandbox/site.ts';
import { build } from '../helper.ts';

t.test('an answer given while closing closes its keep-alive connection, and the wait it was in ends', async (t) => {
  const app = Fastify();
  await app.register(closing);
  let arrived = () => {};
  const hasArrived = new Promise<void>((resolve) => (arrived = resolve));
  app.get('/slow', async () => {
    arrived();
    // What `Prefer: wait` does: a wait that ends when the server starts closing.
    await new Promise((resolve) => app.closing.addEventListener('abort', resolve));
    return { waited: true };
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());

  const answer = new Promise<{ headers: http.IncomingHttpHeaders; body: string; socketClosed: Promise<void> }>((resolve, reject) => {
    const request = http.get(`${address}/slow`, { agent }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => resolve({ headers: response.headers, body, socketClosed: new Promise((closed) => request.socket?.once('close', () => closed())) }));
    });
    request.on('error', reject);
  });
  await hasArrived;
  const closed = app.close();
  const { headers, body, socketClosed } = await answer;
  t.equal(headers.connection, 'close', 'the answer says the connection ends');
  t.same(JSON.parse(body), { waited: true });
  await socketClosed;
  await closed;
  t.pass('the server closed the connection and finished closing');
});

t.test('the API, the workers’ operations server and the sandbox site all close so', async (t) => {
  const api = await build(t);
  t.ok(api.hasPlugin('closing'), 'API');
  const operations = await buildOperationsApp(api.container);
  t.teardown(() => operations.close());
  await operations.ready();
  t.ok(operations.hasPlugin('closing'), 'operations server (WORKERS_PORT)');
  const site = buildSandboxSite({ shortSessionSeconds: 60 });
  t.teardown(() => site.close());
  await site.ready();
  t.ok(site.hasPlugin('closing'), 'sandbox site');
});
