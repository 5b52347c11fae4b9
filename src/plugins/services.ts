import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Container } from '../container.ts';
import type { Services } from '../services/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
    container: Container;
  }
}

async function services(app: FastifyInstance, options: { container: Container }) {
  app.decorate('container', options.container);
  app.decorate('services', options.container.services);
}

export default fp(services, { name: 'services', fastify: '5.x' });
