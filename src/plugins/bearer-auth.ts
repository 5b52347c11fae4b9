import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { errors, PlugError } from '../errors.ts';
import type { Principal } from '../services/api-keys.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** An onRequest hook for routes that need an organization's access token. */
    requireAccessToken: (request: FastifyRequest) => Promise<void>;
  }
}

/** The organization of the caller; only valid behind `requireAccessToken`. */
export function organizationOf(request: FastifyRequest): string {
  if (!request.principal) throw errors.unauthorized();
  return request.principal.organizationId;
}

/** Who acts, for `createdBy`/`lastModifiedBy` and events: the API key's id (the user's under /dashboard/plug). */
export function actorOf(request: FastifyRequest): string {
  if (!request.principal) throw errors.unauthorized();
  return request.principal.apiKeyId;
}

/** RFC 6750 §3: the challenge of a 401 to a request that sent no bearer token (RFC 9110 §11.6.1: every 401 has one). */
export const BEARER_CHALLENGE = { 'WWW-Authenticate': 'Bearer' };
/** ... and to one whose bearer token is unknown, expired or revoked. */
export const INVALID_TOKEN_CHALLENGE = { 'WWW-Authenticate': 'Bearer error="invalid_token"' };

/** What `authentication` resolves to; its 401 (the token is unknown, expired or revoked) carries `challenge`. */
export async function challengingRefusal<T>(authentication: Promise<T>, challenge: Record<string, string> = INVALID_TOKEN_CHALLENGE): Promise<T> {
  try {
    return await authentication;
  } catch (error) {
    throw error instanceof PlugError && error.statusCode === 401 ? error.withHeaders(challenge) : error;
  }
}

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim());
  return match?.[1] ?? null;
}

async function bearerAuth(app: FastifyInstance) {
  app.decorateRequest('principal', null);
  app.decorate('requireAccessToken', async (request: FastifyRequest) => {
    const token = bearerToken(request);
    if (!token) {
      throw errors.unauthorized({
        message: 'Send Authorization: Bearer <access_token> (from POST /oauth2/token)',
        headers: BEARER_CHALLENGE,
      });
    }
    request.principal = await challengingRefusal(app.services.apiKeys.authenticate(token));
  });
}

export default fp(bearerAuth, { name: 'bearer-auth', fastify: '5.x', dependencies: ['services'] });
