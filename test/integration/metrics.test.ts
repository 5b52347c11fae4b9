import t from 'tap';
import { startReceiver } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack, waitForAttempts } from '../fixtures/webhook-stack.ts';
import { build, createOrganization } from '../helper.ts';
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
