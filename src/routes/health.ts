import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';

const Status = Type.Object({ status: Type.String() });

export default async function health(app: FastifyInstance) {
  app.get('/healthz', { config: { rateLimit: false, worksWithoutRedis: true }, schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Status } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { config: { rateLimit: false, worksWithoutRedis: true }, schema: { tags: ['operations'], summary: 'Redis answers', response: { 200: Status, 503: Status } } },
    async (_request, reply) => {
      // A lost connection is known without asking: a PING would only wait in the reconnect queue.
      if (!app.container.connections.redis.isUp()) return reply.status(503).send({ status: 'redis unavailable' });
      try {
        await Promise.race([
          app.services.ctx.redis.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref()),
        ]);
        return { status: 'ready' };
      } catch {
        return reply.status(503).send({ status: 'redis unavailable' });
      }
    },
  );
}
