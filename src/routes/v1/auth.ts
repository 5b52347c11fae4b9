/**
 * v1 login (SPEC §7): a dashboard user's email and password buy a Bearer token for the other v1 routes.
 * The token is a dashboard session (same store, lifetime and logout), so there is one kind of user login
 * to secure, not two. v1 cannot ask for a second factor, so users with two-factor on are refused, at login
 * and on every call (two-factor may have been turned on after the token was issued).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { errors } from '../../errors.ts';
import { V1LoginSchema } from '../../legacy/schemas.ts';
import { BEARER_CHALLENGE, bearerToken, challengingRefusal } from '../../plugins/bearer-auth.ts';
import { passwordCheckRouteConfig, rateLimitByIp } from '../../plugins/rate-limit.ts';
import { ref } from '../../schemas/index.ts';
import type { UserRecord } from '../../services/organizations.ts';
import { v1Errors, v1Route } from './common.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The dashboard user behind a v1 token; set by `requireV1Token`. */
    v1User: UserRecord | null;
  }
}

const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 320, description: "The dashboard user's email" }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

/** An onRequest hook for every v1 route but login. */
export async function requireV1Token(request: FastifyRequest): Promise<void> {
  const token = bearerToken(request);
  if (!token) {
    throw errors.unauthorized({ message: 'Send Authorization: Bearer <token> (from POST /v1/auth/login)', headers: BEARER_CHALLENGE });
  }
  request.v1User = (await challengingRefusal(request.server.services.dashboardSessions.authenticatePasswordOnly(token))).user;
}

/** The user of a v1 call; only valid behind `requireV1Token`. */
export function v1UserOf(request: FastifyRequest): UserRecord {
  if (!request.v1User) throw errors.unauthorized();
  return request.v1User;
}

const auth: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/login',
    {
      config: passwordCheckRouteConfig(app.services.ctx.config),
      schema: {
        ...v1Route,
        summary: 'Log in with a dashboard user’s email and password (users without two-factor only)',
        body: LoginBody,
        response: { 200: ref(V1LoginSchema), ...v1Errors(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const session = await app.services.dashboardSessions.loginWithPasswordOnly(request.body.username, request.body.password, rateLimitByIp(request));
      reply.header('Cache-Control', 'no-store');
      return { status: 200, message: 'Logged in', type: 'Bearer' as const, token: session.token, expires: session.expiresAt };
    },
  );
};

export default auth;
