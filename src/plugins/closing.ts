import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    /** Aborted when the app starts closing: waits that may run for seconds end early and answer. */
    closing: AbortSignal;
  }
}

/**
 * Lets a server close in the time of the requests in flight. `Prefer: wait` may hold a request for 30 s: on
 * shutdown it answers with the state as it is instead (it watches `closing`). A keep-alive connection that
 * was busy when closing began would stay open after its answer, holding the close until Node's keep-alive
 * timeout (72 s in Fastify): every answer given while closing closes its connection.
 */
async function closing(app: FastifyInstance) {
  const controller = new AbortController();
  app.decorate('closing', controller.signal);
  app.addHook('preClose', async () => controller.abort());
  app.addHook('onSend', async (_request, reply) => {
    if (controller.signal.aborted) reply.header('Connection', 'close');
  });
}

export default fp(closing, { name: 'closing', fastify: '5.x' });
