import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config.ts';
import { createContainer, type Container, type DependencyOverrides } from './container.ts';
import apiVersion from './plugins/api-version.ts';
import bearerAuth from './plugins/bearer-auth.ts';
import closing from './plugins/closing.ts';
import errorEnvelope, { clientErrorHandler, frameworkErrorHandler, type ErrorShapeByPrefix } from './plugins/error-envelope.ts';
import idempotency from './plugins/idempotency.ts';
import jsonBody from './plugins/json-body.ts';
import metrics from './plugins/metrics.ts';
import openapi from './plugins/openapi.ts';
import rateLimit from './plugins/rate-limit.ts';
import redisGate from './plugins/redis-gate.ts';
import { setStandardHeaders } from './plugins/response-headers.ts';
import services from './plugins/services.ts';
import health from './routes/health.ts';
import routes, { V1_PREFIX } from './routes/index.ts';
import { toV1Error } from './routes/v1/common.ts';
import { buildValidatorCompiler, refuseBodyWhereNoneIsDeclared } from './schemas/validator-compiler.ts';

export interface AppOptions extends DependencyOverrides {
  /** Reuse an existing container (e.g. `npm start` shares one with the workers). */
  container?: Container;
}

/** Errors raised before routing on a v1 path answer in v1's shape, like that tree's own errors. */
const V1_ERROR_SHAPE: ErrorShapeByPrefix[] = [{ prefix: `${V1_PREFIX}/`, body: toV1Error }];
/** What a caller may send as X-Request-Id: up to 128 letters, digits and `._:-` (UUIDs, trace ids). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The HTTP API without workers: what tests, the OpenAPI generator and `start:api` build. */
export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export async function buildApp(config: Config, options: AppOptions = {}): Promise<App> {
  const container = options.container ?? createContainer(config, options);
  const app = Fastify({
    loggerInstance: container.logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // Fastify sets no limit: a client that sends a Content-Length and then stalls (or trickles) would hold
    // its connection and request forever. The response may take longer (`Prefer: wait`): only receiving
    // the request is timed. Node 20 times out a stalled body after `headersTimeout` (60 s unless told) when
    // that is set, so it is the same; and it looks for such requests every `connectionsCheckingInterval`.
    requestTimeout: config.requestTimeoutMs,
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(config.requestTimeoutMs / 2, 30_000),
      // Refused by the error envelope instead, in the spec's shape.
      requireHostHeader: false,
    },
    // `/plug/credentials` and `/plug/credentials/` are one resource (as are `/plug/webhooks/endpoints/`, which
    // would otherwise read as an endpoint with an empty id); the OpenAPI paths carry no trailing slash.
    routerOptions: { ignoreTrailingSlash: true },
    // A caller's X-Request-Id (a proxy's, a client's trace id) is kept when it looks like an id; anything
    // else (5 kB of text, a forged log line) gets a new one instead of landing in every log line.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    },
    // Only the load balancers the operator names may say who the client is (X-Forwarded-For): behind one, every
    // request would otherwise come from its address, and the per-IP limits would be one budget for everybody.
    trustProxy: config.trustProxy.length === 0 ? false : config.trustProxy,
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler(V1_ERROR_SHAPE),
    frameworkErrors: frameworkErrorHandler(V1_ERROR_SHAPE),
    schemaController: { compilersFactory: { buildValidator: buildValidatorCompiler() as never } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(closing);
  app.addHook('onSend', async (request, reply) => setStandardHeaders(request, reply));
  await app.register(jsonBody);
  app.addHook('preValidation', refuseBodyWhereNoneIsDeclared);

  await app.register(errorEnvelope);
  await app.register(services, { container });
  await app.register(redisGate);
  await app.register(apiVersion);
  await app.register(bearerAuth);
  // OpenAPI first so it sees every later route; rate limits and idempotency attach to routes as they are added.
  await app.register(openapi, { publicUrl: config.publicUrl });
  await app.register(rateLimit, { perMinute: config.rateLimitPerMinute, nameSpace: container.services.ctx.keys.rateLimit });
  await app.register(idempotency);
  await app.register(metrics);
  await app.register(routes);

  if (!options.container) app.addHook('onClose', () => container.close());
  return app;
}

/**
 * What a workers process serves on `WORKERS_PORT`: `/healthz`, `/readyz` (Redis answers) and `/metrics` (its
 * workers' counts, the shared queue depths, its process), for probes and scrapes; no API.
 */
export async function buildOperationsApp(container: Container): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: container.logger as FastifyBaseLogger,
    // Probes and scrapes come every few seconds: a log line each would drown the workers' own.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler(),
    frameworkErrors: frameworkErrorHandler(),
  });
  await app.register(closing);
  await app.register(errorEnvelope);
  await app.register(services, { container });
  await app.register(redisGate);
  await app.register(metrics);
  await app.register(health);
  return app;
}
