import type { FastifyInstance } from 'fastify';
import { addSecurityHeaders } from '../web/security-headers.ts';
import apiKeys from './api-keys.ts';
import login from './login.ts';
import me from './me.ts';
import users from './users.ts';

/**
 * The dashboard API (SPEC §8): people, not integrations. Login and logout are open; everything else needs a
 * dashboard session (see session-auth.ts), and users and API keys need an organization admin.
 */
export default async function dashboard(app: FastifyInstance) {
  app.decorateRequest('dashboardSession', null);
  // The browser dashboard's own API (session cookies, secrets shown once): the pages' headers, as /dashboard/plug has.
  app.addHook('onSend', addSecurityHeaders);
  await app.register(login);
  await app.register(me, { prefix: '/me' });
  await app.register(users, { prefix: '/users' });
  await app.register(apiKeys, { prefix: '/apiKeys' });
}
