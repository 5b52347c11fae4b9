import type { FastifyInstance } from 'fastify';
import dashboardPlug from './dashboard-plug.ts';
import hostedMfa from './hosted-mfa.ts';
import { addSecurityHeaders } from './security-headers.ts';
import staticPages from './static-pages.ts';

/**
 * What browsers use: the Dashboard at `/`, the hosted MFA page at `/connect`, and the two JSON trees behind
 * them that are not part of the public API (`/connect/api`, `/dashboard/plug`). Register `same-origin.ts`
 * before every tree that a browser can reach with a cookie.
 */
export default async function web(app: FastifyInstance) {
  app.addHook('onSend', addSecurityHeaders);
  await app.register(staticPages);
  await app.register(hostedMfa, { prefix: '/connect/api' });
  await app.register(dashboardPlug, { prefix: '/dashboard/plug' });
}
