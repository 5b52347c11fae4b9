import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { errors, STORE_RETRY_AFTER_HEADERS } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Health, readiness and metrics answer while Redis is away; every other route needs it. */
    worksWithoutRedis?: boolean;
  }
}

/**
 * While the API's connection to Redis is down, a request that needs Redis is a 503 at once. Without this
 * it would wait in ioredis's queue until Redis is back, however long that takes, long after its client
 * gave up, and its rate-limit count would land on the client's budget when Redis returns. A request that
 * got past this point before the connection dropped still waits for it (its commands are resent), so a
 * write is never left half done.
 */
async function redisGate(app: FastifyInstance) {
  const connection = app.container.redisWatches.redis;
  app.addHook('onRequest', async (request) => {
    if (connection.isUp() || request.routeOptions.config.worksWithoutRedis) return;
    throw errors.storeUnavailable({ headers: STORE_RETRY_AFTER_HEADERS });
  });
}

export default fp(redisGate, { name: 'redis-gate', fastify: '5.x', dependencies: ['services', 'error-envelope'] });
