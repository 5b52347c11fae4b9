import { randomBytes } from 'node:crypto';
import t from 'tap';
import { buildOperationsApp } from '../../src/app.ts';
import { createContainer } from '../../src/container.ts';
import { startReceiver } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack, waitForAttempts } from '../fixtures/webhook-stack.ts';
import { build, capturingLogger, createOrganization, testConfig, wipePrefix } from '../helper.ts';
import { waitFor } from '../process-helper.ts';

t.test('GET /metrics: request counts and latency by route pattern, queue depths, process metrics', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  await app.inject({ method: 'GET', url: '/plug/organization', headers: org.headers });
  await app.inject({ method: 'GET', url: '/no/such/route/12345' });
  await app.services.queues.timers.add('probe', {}, { delay: 60_000 });

  const response = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^text\/plain/);
  const text = response.body;
  t.match(text, /plugboard_http_requests_total\{method="GET",route="\/plug\/organization",status_code="200"\} 2/);
  t.match(text, /plugboard_http_requests_total\{method="POST",route="\/oauth2\/token",status_code="200"\} 1/);
  t.match(text, /plugboard_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/plug\/organization"/);
  t.match(text, /route="\(unmatched\)",status_code="404"/);
  t.notMatch(text, /12345/, 'raw URLs never become labels');
  t.match(text, /plugboard_queue_jobs\{queue="timers",state="delayed"\} 1/);
  t.match(text, /plugboard_queue_jobs\{queue="webhook-delivery",state="failed"\} 0/);
  t.match(text, /process_cpu_user_seconds_total/);
  t.match(text, /nodejs_eventloop_lag_seconds/);
});

t.test('GET /metrics needs no token and is not rate limited', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_PER_MINUTE: '1' } });
  for (let i = 0; i < 3; i += 1) {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    t.equal(response.statusCode, 200);
  }
});

t.test('with METRICS_TOKEN set, GET /metrics answers only a scrape that sends it as its bearer token', async (t) => {
  const token = randomBytes(32).toString('hex');
  const { lines, logger } = capturingLogger();
  const app = await build(t, { env: { METRICS_TOKEN: token }, logger });
  const sameLengthButWrong = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;
  const scrape = (authorization?: string) => app.inject({ method: 'GET', url: '/metrics', headers: authorization === undefined ? {} : { authorization } });

  const refused: [string | undefined, number, string, string][] = [
    [undefined, 401, 'Bearer', 'PB_UNAUTHORIZED'],
    [`Basic ${Buffer.from(`prometheus:${token}`).toString('base64')}`, 401, 'Bearer', 'PB_UNAUTHORIZED'],
    [`Bearer ${sameLengthButWrong}`, 401, 'Bearer error="invalid_token"', 'PB_TOKEN_INVALID'],
    [`Bearer ${token}x`, 401, 'Bearer error="invalid_token"', 'PB_TOKEN_INVALID'],
    [`Bearer ${token.slice(0, 10)}`, 401, 'Bearer error="invalid_token"', 'PB_TOKEN_INVALID'],
    [`Bearer ${token} ${token}`, 400, 'Bearer error="invalid_request"', 'PB_MALFORMED_AUTHORIZATION'],
  ];
  for (const [authorization, status, challenge, errorId] of refused) {
    const response = await scrape(authorization);
    const name = authorization === undefined ? 'no header' : authorization.replaceAll(token, '<token>').replace(sameLengthButWrong, '<wrong token>');
    t.equal(response.statusCode, status, `${name}: ${status}`);
    t.equal(response.headers['www-authenticate'], challenge, `${name}: ${challenge}`);
    t.match(response.json(), { errors: [{ details: { errorId } }] }, `${name}: the envelope`);
    t.notMatch(response.body, /plugboard_/, `${name}: no metrics`);
  }

  const allowed = await scrape(`Bearer ${token}`);
  t.equal(allowed.statusCode, 200);
  t.match(allowed.body, /plugboard_http_requests_total\{method="GET",route="\/metrics",status_code="401"\} 5/, 'refused scrapes are counted like any answer');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'probes stay open');
  t.ok(lines.length > 0, 'the requests were logged');
  t.notMatch(lines.join('\n'), new RegExp(token.slice(0, 16)), 'the token never reaches the logs');

  // A workers process serves the same /metrics on WORKERS_PORT, with the same setting.
  const config = testConfig({ METRICS_TOKEN: token });
  const container = createContainer(config);
  const operations = await buildOperationsApp(container);
  t.teardown(async () => {
    await operations.close();
    await container.close();
    await wipePrefix(config.keyPrefix);
  });
  t.equal((await operations.inject({ method: 'GET', url: '/metrics' })).statusCode, 401, "the workers' listener: 401 without it");
  t.equal((await operations.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } })).statusCode, 200, 'and 200 with it');
});

t.test("GET /metrics counts this process's webhook attempts, finished jobs and first attempts in flight", async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_RETRY_SCHEDULE: '1' } });
  let releaseFirst = () => {};
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
  const receiver = await startReceiver(t, (_request, res, index) => {
    if (index === 0) void firstHeld.then(() => res.writeHead(500).end());
    else res.writeHead(204).end();
  });
  await createEndpoint(stack, { url: receiver.url });
  const scrape = async () => (await stack.app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(await scrape(), /plugboard_webhook_first_attempts_in_flight 0/, 'none before any event');

  const event = await commitEvent(stack);
  await receiver.waitFor((all) => all.length === 1);
  t.match(await scrape(), /plugboard_webhook_first_attempts_in_flight 1/, 'the first attempt, made in place, is in flight while its receiver holds it');
  releaseFirst();
  await waitForAttempts(stack, event.id, 2);

  // The job is counted once BullMQ has moved it to completed, just after its attempt was logged.
  const text = await waitFor('the retry job counted', async () => {
    const scraped = await scrape();
    return scraped.includes('plugboard_jobs_total{') ? scraped : undefined;
  }, 10_000);
  t.match(text, /plugboard_webhook_attempts_total\{outcome="failed"\} 1\n/);
  t.match(text, /plugboard_webhook_attempts_total\{outcome="succeeded"\} 1\n/);
  t.match(text, /plugboard_webhook_attempt_duration_seconds_count 2\n/);
  t.match(text, /plugboard_jobs_total\{queue="webhook-delivery",result="completed"\} 1\n/, 'the retry ran as a job');
  t.match(text, /plugboard_webhook_first_attempts_in_flight 0/);
});
