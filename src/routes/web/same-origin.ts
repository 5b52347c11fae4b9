/**
 * CSRF protection for everything a browser reaches with ambient credentials (the Dashboard's session cookie)
 * or from our pages: `/dashboard/…` and `/connect/…`.
 *
 * Two layers. The session cookie is `SameSite=Strict`, so browsers do not attach it to requests that other
 * sites start. And here, every state-changing request (anything but GET, HEAD, OPTIONS) is refused when its
 * `Origin` header names another site, or when it rides on the session cookie without an `Origin` at all
 * (browsers send `Origin` on every cross-origin and same-origin POST, PUT, PATCH and DELETE). Scripts and curl
 * that authenticate with `Authorization: Bearer` send no cookie, need no `Origin`, and are not affected.
 *
 * Origin checks instead of double-submit tokens: nothing to store, render or rotate, and the Fetch standard
 * guarantees pages cannot forge the header.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { errors } from '../../errors.ts';
import { sessionCookie } from '../dashboard/session-auth.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const BROWSER_FACING_PREFIXES = ['/dashboard/', '/connect/'];

/**
 * By the route the router matched, not the URL as sent: `/%64ashboard/apiKeys` reaches the dashboard's route
 * too. A request that matched no route changes nothing.
 */
function isBrowserFacing(request: FastifyRequest): boolean {
  const route = request.routeOptions.url ?? '';
  return route === '/dashboard' || route === '/connect' || BROWSER_FACING_PREFIXES.some((prefix) => route.startsWith(prefix));
}

/** Our own origins: the configured public URL, and the Host the browser asked for (it differs behind a proxy). */
function isOwnOrigin(request: FastifyRequest, origin: string, publicOrigin: string): boolean {
  return origin === publicOrigin || origin === `${request.protocol}://${request.host}`;
}

async function sameOrigin(app: FastifyInstance) {
  const publicOrigin = new URL(app.services.ctx.config.publicUrl).origin;
  app.addHook('onRequest', async (request) => {
    if (SAFE_METHODS.has(request.method) || !isBrowserFacing(request)) return;
    const origin = request.headers.origin;
    if (origin !== undefined ? !isOwnOrigin(request, origin, publicOrigin) : sessionCookie(request) !== null) {
      throw errors.crossOriginRequest();
    }
  });
}

export default fp(sameOrigin, { name: 'same-origin', fastify: '5.x', dependencies: ['services'] });
