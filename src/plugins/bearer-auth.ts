import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { B64TOKEN } from '../crypto/hashing.ts';
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
/** ... and of the 400 to one whose `Authorization: Bearer` header is not `Bearer <token>` (§3.1 invalid_request). */
export const INVALID_REQUEST_CHALLENGE = { 'WWW-Authenticate': 'Bearer error="invalid_request"' };

/** What `authentication` resolves to; its 401 (the token is unknown, expired or revoked) carries `challenge`. */
export async function challengingRefusal<T>(authentication: Promise<T>, challenge: Record<string, string> = INVALID_TOKEN_CHALLENGE): Promise<T> {
  try {
    return await authentication;
  } catch (error) {
    throw error instanceof PlugError && error.statusCode === 401 ? error.withHeaders(challenge) : error;
  }
}

/** RFC 9110 §11.1's auth-scheme (a token), at the start of the header. */
const AUTH_SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
/** RFC 6750 §2.1: `Bearer 1*SP b64token`; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER_CREDENTIALS = new RegExp(`^Bearer +(${B64TOKEN})$`, 'i');

/**
 * What a request's Authorization header offers as a bearer token. A header of another scheme offers none:
 * RFC 6750 §3.1 treats a client that "attempted using an unsupported authentication method" like one that
 * sent nothing (a 401 without an error code), and a browser behind an HTTP Basic gate sends its Basic
 * credentials to every page. A header that names the Bearer scheme but is not `Bearer <token>` (no token,
 * two, characters a token never has) is malformed: its sender meant to send a token and got it wrong.
 */
export type PresentedBearer = { kind: 'token'; token: string } | { kind: 'none' } | { kind: 'malformed' };

export function presentedBearer(request: FastifyRequest): PresentedBearer {
  const header = request.headers.authorization?.trim();
  if (!header || AUTH_SCHEME.exec(header)?.[0].toLowerCase() !== 'bearer') return { kind: 'none' };
  const token = BEARER_CREDENTIALS.exec(header)?.[1];
  return token === undefined ? { kind: 'malformed' } : { kind: 'token', token };
}

/** The request's bearer token, or null when it offers none; a malformed one is RFC 6750 §3.1's 400 invalid_request. */
export function bearerToken(request: FastifyRequest): string | null {
  const presented = presentedBearer(request);
  // Without the header as `value`: it may be a real token with a typo in it.
  if (presented.kind === 'malformed') throw errors.malformedAuthorization({ param: 'Authorization', headers: INVALID_REQUEST_CHALLENGE });
  return presented.kind === 'token' ? presented.token : null;
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
