import t from 'tap';
import { build, createOrganization } from '../helper.ts';

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
