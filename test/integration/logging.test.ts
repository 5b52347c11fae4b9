import t from 'tap';
import { Queue, Worker } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { QUEUE_NAMES } from '../../src/queues.ts';
import { startWorkers } from '../../workers/index.ts';
import { logWorkerErrors, workerOptions } from '../../workers/worker-options.ts';
import { createCredential, waitForCredential } from '../credentials-helper.ts';
import { build, buildStack, capturingLogger, createOrganization } from '../helper.ts';
import { waitFor } from '../process-helper.ts';

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
  // A client that puts its secret in the query string (we never read it there; the request is refused).
  await app.inject({ method: 'POST', url: `/oauth2/token?client_id=${org.clientId}&client_secret=${org.clientSecret}-in-query&limit=5`, payload: { grant_type: 'client_credentials' } });
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
  const queryLine = entries.find((e) => e.msg === 'incoming request' && (e as { req?: { url?: string } }).req?.url?.includes('limit=5')) as { req: { url: string; method: string; remoteAddress: string } } | undefined;
  t.match(queryLine?.req, { method: 'POST', url: `/oauth2/token?client_id=${org.clientId}&client_secret=%5Bredacted%5D&limit=5`, remoteAddress: '127.0.0.1' }, 'the query is logged but for its secret');
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

t.test("a worker's failed job is logged with its queue, id, tries and error", async (t) => {
  const { lines, logger } = capturingLogger();
  const app = await build(t, { logger });
  const workers = await startWorkers(app.container);
  const steps = new Queue(QUEUE_NAMES.credentialSteps, { connection: app.container.queueRedis, prefix: app.services.ctx.keys.queuePrefix });
  try {
    // Data no step was ever enqueued with: the processor throws a TypeError reading it.
    const job = await steps.add('step', null as never, { attempts: 1 });
    const failed = await waitFor('the failure to be logged', async () =>
      lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === 'job failed'),
    );
    t.match(failed, { level: 50, queue: QUEUE_NAMES.credentialSteps, jobId: job.id, attemptsMade: 1, err: { type: 'TypeError' } });
  } finally {
    await steps.close();
    await workers.close();
  }
});

t.test('a step that failed on a provider outage is retried without a "job failed" line: the outage has its own', async (t) => {
  const { lines, logger } = capturingLogger();
  const stack = await buildStack(t, { logger });
  // pass_flaky: the provider answers 503 twice, then logs in.
  const flaky = await createCredential(stack, 'pass_flaky');
  await waitForCredential(stack, flaky.id, (credential) => credential.statusDetail === 'LOGIN_AND_DATA_DISCOVERY_SUCCESS');
  const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
  t.equal(messages.filter((message) => message === 'provider step failed').length, 2);
  t.notOk(messages.includes('job failed'));
});

t.test('a Redis error is logged with its command name, never its arguments', async (t) => {
  const { lines, logger } = capturingLogger();
  const app = await build(t, { logger });
  const failed = await app.container.redis.eval("return redis.error_reply('refused')", 0, 'argument-with-a-body').catch((error: unknown) => error);
  app.log.error({ err: failed }, 'a write failed');
  const entry = lines.map((line) => JSON.parse(line) as { msg: string; err?: unknown }).find((line) => line.msg === 'a write failed');
  t.match(entry?.err, { message: 'refused', command: { name: 'eval' } });
  t.notMatch(JSON.stringify(entry), /argument-with-a-body/);
});
