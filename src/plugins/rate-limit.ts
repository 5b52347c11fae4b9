import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { errors } from '../errors.ts';

/**
 * Every route is limited (`RATE_LIMIT_PER_MINUTE`) unless it opts out with `config: { rateLimit: false }`
 * (health checks and metrics must answer even when a client floods us) or sets its own limit, e.g.
 * `passwordCheckRouteConfig` for a route that checks a password or an API secret.
 *
 * Callers are counted per API client (or dashboard and v1 user) once authenticated and per IP address before
 * that. Route-level hooks run after the hooks of their plugin, so the limit is checked after the plugin's
 * authentication hook has named the caller. Counters live in Redis, so every API process shares them.
 */
export function rateLimitKey(request: FastifyRequest): string {
  // A person signed in to the dashboard or to v1 is a caller of their own, as an API client is: otherwise
  // every organization's users behind one NAT would share a budget.
  const caller = request.principal?.clientId ?? request.v1User?.id ?? request.dashboardSession?.user.id;
  return caller ? `client:${caller}` : rateLimitByIp(request);
}

/** IPv6 callers are counted per /64, the smallest block a single customer usually gets. */
export function rateLimitByIp(request: FastifyRequest): string {
  return `ip:${normalizeIP(request.ip)}`;
}

/**
 * Route config for every route that checks a password or a client secret (`/oauth2/token`, the dashboard's
 * and v1's logins, the dashboard's password re-checks): per IP, not per client, because whoever guesses
 * has no client of their own to be counted by.
 */
export function passwordCheckRouteConfig(config: Pick<Config, 'tokenRateLimitPerMinute'>) {
  return { rateLimit: { max: config.tokenRateLimitPerMinute, keyGenerator: rateLimitByIp } };
}

async function rateLimiting(app: FastifyInstance, options: { perMinute: number; nameSpace: string }) {
  await app.register(rateLimit, {
    global: true,
    max: options.perMinute,
    timeWindow: 60_000,
    redis: app.services.ctx.redis,
    nameSpace: options.nameSpace,
    keyGenerator: rateLimitKey,
    // Redis refusing the counter's write (full under noeviction, failing over) must not refuse every
    // request, reads included: the limit is a fairness measure, not a lock.
    skipOnError: true,
    // The counters carry no secret; a 429 says when to come back, in the SPEC envelope.
    errorResponseBuilder: (_request, context) =>
      errors.tooManyRequests({ headers: { 'Retry-After': String(Math.max(1, Math.ceil(context.ttl / 1000))) } }),
  });
}

export default fp(rateLimiting, { name: 'rate-limit', fastify: '5.x', dependencies: ['services', 'error-envelope', 'bearer-auth'] });
