import t from 'tap';
import { Worker } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { logWorkerErrors, workerOptions } from '../../workers/worker-options.ts';
import { build, capturingLogger, createOrganization } from '../helper.ts';

t.test('request logs carry request ids and never a secret, token or password', async (t) => {
  const { lines, logger } = capturingLogger();
  const app = await build(t, { logger });
  const org = await createOrganization(app);
  const basic = `Basic ${Buffer.from(`${org.clientId}:${org.clientSecret}`).toString('base64')}`;

  await app.inject({ method: 'POST', url: '/oauth2/token', headers: { authorization: basic }, payload: { grant_type: 'client_credentials' } });
  await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=client_credentials&client_id=${org.clientId}&client_secret=${org.clientSecret}x`,
  });
  await app.inject({ method: 'GET', url: '/plug/organization', headers: { ...org.headers, cookie: 'session=cookie-secret-value' } });
  await app.inject({ method: 'POST', url: '/oauth2/revoke', payload: { token: org.accessToken } });
  await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  // A deliberate log call with secret-named fields, as service code might write one.
  app.log.info({ credential: { password: 'pw-in-object', loginState: 'state-in-object' }, body: { code: '123456' } }, 'service log');

  const text = lines.join('\n');
  t.ok(lines.length > 10, `captured ${lines.length} lines`);
  const entries = lines.map((line) => JSON.parse(line) as { reqId?: string; msg?: string });
  t.ok(entries.some((e) => e.msg === 'incoming request' && typeof e.reqId === 'string'), 'request logs have a request id');
  for (const secret of [org.clientSecret, org.accessToken, org.password, basic.slice(6), 'cookie-secret-value', 'pw-in-object', 'state-in-object', '123456']) {
    t.notOk(text.includes(secret), `${secret.slice(0, 6)}… never logged`);
  }
  t.match(text, /\[redacted\]/, 'secret-named fields are censored, not dropped silently');
});

t.test('a worker error that repeats is logged once per quiet period; the next line counts the repeats not logged', async (t) => {
  const { lines, logger } = capturingLogger();
  const app = await build(t, { logger });
  const worker = new Worker(`log-errors-${randomUUID()}`, async () => undefined, { ...workerOptions(app.container, { concurrency: 1 }), autorun: false });
  t.teardown(() => worker.close());
  logWorkerErrors(worker, app.container, 'test');
  const oom = () => new Error("OOM command not allowed when used memory > 'maxmemory'.");
  for (let index = 0; index < 1000; index += 1) worker.emit('error', oom());
  worker.emit('error', new Error('something else'));
  worker.emit('error', oom());
  const logged = lines.map((line) => JSON.parse(line) as { msg: string; err?: { message: string }; earlierRepeatsNotLogged?: number }).filter((line) => line.msg === 'test worker error');
  t.same(
    logged.map((line) => [line.err?.message, line.earlierRepeatsNotLogged]),
    [
      [oom().message, undefined],
      ['something else', 999],
      [oom().message, undefined],
    ],
  );
});
