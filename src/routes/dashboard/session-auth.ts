/**
 * How dashboard routes find their user: the session token from `POST /dashboard/login`, sent either as
 * `Authorization: Bearer <token>` (scripts, curl) or as the HttpOnly cookie set at login (the browser dashboard).
 *
 * The cookie is `SameSite=Strict`, so browsers never attach it to requests started by other sites; the Origin
 * check in ../web/same-origin.ts is the second CSRF layer for cookie-authenticated requests.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../errors.ts';
import { BEARER_CHALLENGE, bearerToken, challengingRefusal, INVALID_TOKEN_CHALLENGE } from '../../plugins/bearer-auth.ts';
import { DASHBOARD_SESSION_TTL_SECONDS, type AuthenticatedSession, type SessionGrant } from '../../services/dashboard-sessions.ts';
import type { UserRecord } from '../../services/organizations.ts';

export const SESSION_COOKIE = 'plugboard_session';
const COOKIE_PATH = '/dashboard';

declare module 'fastify' {
  interface FastifyRequest {
    dashboardSession: AuthenticatedSession | null;
  }
}

/**
 * The session token of a request: the Authorization header wins over the cookie. A malformed Bearer header is a
 * 400 even beside a cookie: its sender meant the header, and would otherwise act as whoever the cookie names.
 */
export function presentedSessionToken(request: FastifyRequest): string | null {
  return bearerToken(request) ?? sessionCookie(request);
}

/** The session cookie's value, as the dashboard's authentication reads it (and the CSRF check looks for it). */
export function sessionCookie(request: FastifyRequest): string | null {
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const separator = pair.indexOf('=');
    if (separator > 0 && pair.slice(0, separator).trim() === SESSION_COOKIE) return pair.slice(separator + 1).trim() || null;
  }
  return null;
}

/** An onRequest hook: 401 unless the request carries a live session. */
export async function requireDashboardSession(request: FastifyRequest): Promise<void> {
  const token = presentedSessionToken(request);
  if (!token) {
    throw errors.sessionInvalid({
      message: 'Log in with POST /dashboard/login, then send Authorization: Bearer <session token> or the session cookie',
      headers: BEARER_CHALLENGE,
    });
  }
  // A session token sent as a bearer token that fails gets RFC 6750's invalid_token, as /plug's and v1's do. A
  // cookie that fails gets the bare `Bearer`: the request sent no bearer token, so RFC 6750 §3.1 wants no error
  // code, yet a 401 needs a challenge (RFC 9110 §11.6.1), and Bearer is how a script logs in here. Browsers show
  // no prompt for it (as they would for Basic), so the browser dashboard sees nothing of it.
  const challenge = token === bearerToken(request) ? INVALID_TOKEN_CHALLENGE : BEARER_CHALLENGE;
  request.dashboardSession = await challengingRefusal(request.server.services.dashboardSessions.authenticate(token), challenge);
}

/** A preHandler hook, after `requireDashboardSession`: 403 unless the user is an admin of their organization. */
export async function requireOrganizationAdmin(request: FastifyRequest): Promise<void> {
  if (sessionUserOf(request).role !== 'admin') throw errors.forbidden({ message: 'Only organization admins can do this' });
}

/** The session and its user; only valid behind `requireDashboardSession`. */
export function sessionOf(request: FastifyRequest): AuthenticatedSession {
  if (!request.dashboardSession) throw errors.sessionInvalid();
  return request.dashboardSession;
}

export function sessionUserOf(request: FastifyRequest): UserRecord {
  return sessionOf(request).user;
}

function cookieAttributes(request: FastifyRequest, maxAgeSeconds: number): string {
  const secure = request.server.services.ctx.config.publicUrl.startsWith('https:') ? '; Secure' : '';
  return `Path=${COOKIE_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`;
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, session: SessionGrant): void {
  reply.header('Set-Cookie', `${SESSION_COOKIE}=${session.token}; ${cookieAttributes(request, DASHBOARD_SESSION_TTL_SECONDS)}`);
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('Set-Cookie', `${SESSION_COOKIE}=; ${cookieAttributes(request, 0)}`);
}

/**
 * Route config for admin routes that create something: `Idempotency-Key` scoped to the session's organization.
 * Not for `/me/…` routes: an organization-wide scope could replay one user's recovery codes to another.
 */
export const organizationIdempotency = {
  idempotent: { organizationOf: (request: FastifyRequest) => request.dashboardSession?.user.organizationId ?? null },
};
