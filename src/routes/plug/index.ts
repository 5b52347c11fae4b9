import type { FastifyInstance } from 'fastify';
import organization from './organization/index.ts';

/** The current API. Everything under /plug needs an organization's access token. */
export default async function plug(app: FastifyInstance) {
  app.addHook('onRequest', app.requireAccessToken);
  await app.register(organization, { prefix: '/organization' });
}
