import type { FastifyInstance } from 'fastify';
import accounts from './accounts/index.ts';
import connectLink from './credentials/connect-link.ts';
import credentials from './credentials/index.ts';
import eventDeliveries from './events/deliveries.ts';
import events from './events/index.ts';
import organization from './organization/index.ts';
import providers from './providers/index.ts';
import sandbox from './sandbox/index.ts';
import webhooks from './webhooks/index.ts';

/** The current API. Everything under /plug needs an organization's access token. */
export default async function plug(app: FastifyInstance) {
  app.addHook('onRequest', app.requireAccessToken);
  await app.register(organization, { prefix: '/organization' });
  await app.register(providers, { prefix: '/providers' });
  await app.register(credentials, { prefix: '/credentials' });
  await app.register(accounts, { prefix: '/accounts' });
  await app.register(events, { prefix: '/events' });
  await app.register(sandbox, { prefix: '/sandbox' });
  await app.register(connectLink, { prefix: '/credentials' });
  await app.register(webhooks, { prefix: '/webhooks' });
  await app.register(eventDeliveries, { prefix: '/events' });
}
