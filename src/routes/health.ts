import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withinDeadline } from '../storage/redis.ts';

const Status = Type.Object({ status: Type.String() });

export default async function health(app: FastifyInstance) {
  app.get('/healthz', { config: { rateLimit: false, worksWithoutRedis: true }, schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Status } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { config: { rateLimit: false, worksWithoutRedis: true }, schema: { tags: ['operations'], summary: 'Redis answers', response: { 200: Status, 503: Status } } },
    async (_request, reply) => {
      // A lost or stalled connection is known without asking: a PING would only wait in the reconnect queue.
      if (!app.container.redisWatches.redis.isUp()) return reply.status(503).send({ status: 'redis unavailable' });
      try {
        await withinDeadline(app.services.ctx.redis.ping(), 1000);
        return { status: 'ready' };
      } catch {
        return reply.status(503).send({ status: 'redis unavailable' });
      }
    },
  );
}
