/**
 * `GET /metrics` in the Prometheus text format: request counts and latency by route and status, BullMQ
 * queue depths (read from Redis on each scrape, so any API process reports the shared queues), what this
 * process's workers did (`work-metrics.ts`; nothing in an API-only process), and the standard process
 * metrics. Without METRICS_TOKEN it is open, as Prometheus targets usually are: bind the API to a private
 * network or filter `/metrics` at the proxy so that queue depths and traffic stay private. With it, a scrape
 * sends it as a bearer token (Prometheus: `authorization: { credentials_file: … }`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Type } from 'typebox';
import type { Container } from '../container.ts';
import { safeEqual } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import type { Queues } from '../queues.ts';
import { withinDeadline, type ConnectionWatch } from '../storage/redis.ts';
import { BEARER_CHALLENGE, bearerToken, INVALID_TOKEN_CHALLENGE } from './bearer-auth.ts';

const QUEUE_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;
/** Per queue: Prometheus's default scrape timeout is 10 s for all of them together. */
const QUEUE_DEPTH_DEADLINE_MS = 1000;
/** Requests that matched no route share one label, so scanners cannot blow up the label set. */
const UNMATCHED_ROUTE = '(unmatched)';

// Process metrics (CPU, memory, event loop, GC) describe the process, not an app: collected once per process.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

function routeLabel(request: FastifyRequest): string {
  return request.is404 ? UNMATCHED_ROUTE : (request.routeOptions.url ?? UNMATCHED_ROUTE);
}

function queueDepthGauge(registry: Registry, queues: Queues, connection: ConnectionWatch, onError: (error: unknown) => void) {
  return new Gauge({
    name: 'plugboard_queue_jobs',
    help: 'BullMQ jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      // Asking a lost or stalled connection would hold the scrape until Redis is back; plugboard_redis_up
      // says why. A stall that begins during a scrape is not known yet: the deadline covers that one.
      if (!connection.isUp()) return;
      try {
        for (const queue of Object.values(queues)) {
          const counts = await withinDeadline(queue.getJobCounts(...QUEUE_STATES), QUEUE_DEPTH_DEADLINE_MS);
          for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
        }
      } catch (error) {
        // A scrape without queue depths beats a failed scrape: the request metrics still matter.
        onError(error);
      }
    },
  });
}

function redisUpGauge(registry: Registry, redisWatches: Container['redisWatches']) {
  return new Gauge({
    name: 'plugboard_redis_up',
    help: "1 while this process's connection to Redis is up (main: data; queues: BullMQ), else 0",
    labelNames: ['connection'],
    registers: [registry],
    collect() {
      this.set({ connection: 'main' }, redisWatches.redis.isUp() ? 1 : 0);
      this.set({ connection: 'queues' }, redisWatches.queueRedis.isUp() ? 1 : 0);
    },
  });
}

/**
 * An onRequest hook that lets in only a scrape sending `expected` as its bearer token, compared in constant time:
 * `/metrics` has no rate limit, so the token must not be found a character at a time.
 */
function requireMetricsToken(expected: string) {
  return async (request: FastifyRequest) => {
    const token = bearerToken(request);
    if (token === null) throw errors.unauthorized({ message: 'Send Authorization: Bearer <METRICS_TOKEN>', headers: BEARER_CHALLENGE });
    if (!safeEqual(token, expected)) throw errors.tokenExpired({ message: 'The metrics token is wrong (see METRICS_TOKEN)', headers: INVALID_TOKEN_CHALLENGE });
  };
}

async function metrics(app: FastifyInstance) {
  // Now, not at the first scrape: GC and event-loop delay are observed only from the moment they are set up.
  const processRegistry = processMetrics();
  const registry = new Registry();
  const requests = new Counter({
    name: 'plugboard_http_requests_total',
    help: 'HTTP requests by method, route and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'plugboard_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const { redisWatches } = app.container;
  queueDepthGauge(registry, app.services.queues, redisWatches.queueRedis, (error) => app.log.warn({ err: error }, 'could not read queue depths for /metrics'));
  redisUpGauge(registry, redisWatches);

  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: routeLabel(request), status_code: String(reply.statusCode) };
    requests.inc(labels);
    latency.observe(labels, reply.elapsedTime / 1000);
  });

  const { metricsToken } = app.services.ctx.config;
  app.get(
    '/metrics',
    {
      config: { rateLimit: false, worksWithoutRedis: true },
      ...(metricsToken === undefined ? {} : { onRequest: requireMetricsToken(metricsToken) }),
      schema: {
        tags: ['operations'],
        // Its 401 and the token's scheme are added by openapi-completion.ts: this route also serves the workers'
        // operations listener, which has no shared error schema to refer to.
        summary: 'Prometheus metrics (with METRICS_TOKEN set, only for Authorization: Bearer <METRICS_TOKEN>)',
        response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      const texts = await Promise.all([registry.metrics(), app.container.workMetrics.registry.metrics(), processRegistry.metrics()]);
      return reply.type(registry.contentType).send(texts.join('\n'));
    },
  );
}

export default fp(metrics, { name: 'metrics', fastify: '5.x', dependencies: ['services'] });
