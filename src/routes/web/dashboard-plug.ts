/**
 * How the Dashboard reaches credentials, providers, events and webhooks: the very same `/plug` route
 * plugins, mounted a second time under `/dashboard/plug` behind the dashboard session instead of an access
 * token. `/dashboard/plug/credentials/{id}` is `/plug/credentials/{id}`: same validation, same service calls,
 * same events; one implementation, nothing to keep in step. Only the door differs:
 *
 * - authentication is the session cookie (or `Authorization: Bearer <session token>`), and the caller's
 *   organization is the signed-in user's; `createdBy`/`lastModifiedBy` name the user (`usr_…`);
 * - webhook endpoints, and an event's deliveries (their attempts name endpoint URLs and hold receivers'
 *   answers; a resend sends to every endpoint), are for organization admins only, like API keys: an
 *   endpoint receives every credential event of the organization;
 * - CSRF protection comes from the SameSite=Strict cookie plus the Origin check (same-origin.ts);
 * - the routes are left out of the OpenAPI document, which describes `/plug` once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../services/api-keys.ts';
import type { UserRecord } from '../../services/organizations.ts';
import { requireDashboardSession, requireOrganizationAdmin, sessionUserOf } from '../dashboard/session-auth.ts';
import connectLink from '../plug/credentials/connect-link.ts';
import credentials from '../plug/credentials/index.ts';
import eventDeliveries from '../plug/events/deliveries.ts';
import events from '../plug/events/index.ts';
import providers from '../plug/providers/index.ts';
import webhooks from '../plug/webhooks/index.ts';

/**
 * A signed-in user acts for their organization as an API key would. The user id stands in for the key id,
 * so the audit fields and per-caller rate limits name the person.
 */
function principalOf(user: UserRecord): Principal {
  return { organizationId: user.organizationId, apiKeyId: user.id, clientId: user.id };
}

async function adminOnly(app: FastifyInstance) {
  app.addHook('preHandler', requireOrganizationAdmin);
  await app.register(webhooks, { prefix: '/webhooks' });
  await app.register(eventDeliveries, { prefix: '/events' });
}

export default async function dashboardPlug(app: FastifyInstance) {
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });
  app.decorateRequest('dashboardSession', null);
  app.addHook('onRequest', requireDashboardSession);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    request.principal = principalOf(sessionUserOf(request));
  });

  await app.register(providers, { prefix: '/providers' });
  await app.register(credentials, { prefix: '/credentials' });
  await app.register(connectLink, { prefix: '/credentials' });
  await app.register(events, { prefix: '/events' });
  await app.register(adminOnly);
}
