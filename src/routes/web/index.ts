import type { FastifyInstance } from 'fastify';
import hostedMfa from './hosted-mfa.ts';
import { addSecurityHeaders } from './security-headers.ts';
import staticPages from './static-pages.ts';

/**
 * What browsers use: the Dashboard at `/`, the hosted MFA page at `/connect`, and the JSON tree behind the
 * hosted page, which is not part of the public API (`/connect/api`).
 */
export default async function web(app: FastifyInstance) {
  app.addHook('onSend', addSecurityHeaders);
  await app.register(staticPages);
  await app.register(hostedMfa, { prefix: '/connect/api' });
}
