import formbody from '@fastify/formbody';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { errors, PlugError } from '../../errors.ts';
import { passwordCheckRouteConfig } from '../../plugins/rate-limit.ts';
import { AccessTokenSchema } from '../../schemas/auth.ts';
import { errorResponses, ref } from '../../schemas/index.ts';

// RFC 6749 §3.2: unknown request parameters are ignored here (not refused as elsewhere in the API).
const TokenRequest = Type.Object({
  grant_type: Type.String({ maxLength: 64 }),
  client_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  client_secret: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  scope: Type.Optional(Type.String({ maxLength: 1000 })),
});

const RevokeRequest = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) });

/** RFC 6749 §5.2: a client that authenticated with HTTP Basic is refused with a challenge for Basic. */
const BASIC_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="plugboard", charset="UTF-8"' };

/**
 * Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-encoded id and secret) or from the body, never
 * both (§2.3: one method per request); a body `client_id` naming the Basic client too is allowed, as some
 * libraries send it.
 */
function clientCredentials(request: FastifyRequest, body: Static<typeof TokenRequest>) {
  const header = request.headers.authorization;
  if (header?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    if (separator <= 0) throw errors.invalidClient({ message: 'Malformed HTTP Basic credentials', headers: BASIC_CHALLENGE });
    const decode = (text: string) => {
      try {
        return decodeURIComponent(text.replaceAll('+', ' '));
      } catch {
        throw errors.invalidClient({ message: 'Malformed HTTP Basic credentials', headers: BASIC_CHALLENGE });
      }
    };
    const clientId = decode(decoded.slice(0, separator));
    if (body.client_secret !== undefined) {
      throw errors.invalidParameter({ param: 'client_secret', message: 'Authenticate the client one way: HTTP Basic or client_id and client_secret in the body, not both' });
    }
    if (body.client_id !== undefined && body.client_id !== clientId) {
      throw errors.invalidParameter({ param: 'client_id', message: 'client_id names another client than the HTTP Basic credentials' });
    }
    return { clientId, clientSecret: decode(decoded.slice(separator + 1)), viaBasic: true };
  }
  if (!body.client_id || !body.client_secret) {
    throw errors.invalidClient({ message: 'Send client_id and client_secret in the body or as HTTP Basic credentials' });
  }
  return { clientId: body.client_id, clientSecret: body.client_secret, viaBasic: false };
}

const oauth2: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  app.post(
    '/token',
    {
      config: passwordCheckRouteConfig(app.services.ctx.config),
      schema: {
        tags: ['auth'],
        summary: 'Exchange API key credentials for an access token (1 hour by default: ACCESS_TOKEN_TTL_SECONDS)',
        body: TokenRequest,
        // Form-encoded as RFC 6749 asks, or JSON.
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        response: { 200: ref(AccessTokenSchema), ...errorResponses(400, 401, 413, 415, 429) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.grant_type !== 'client_credentials') {
        throw errors.invalidParameter({ param: 'grant_type', message: 'grant_type must be client_credentials' });
      }
      const { clientId, clientSecret, viaBasic } = clientCredentials(request, body);
      reply.header('Cache-Control', 'no-store');
      try {
        return await app.services.apiKeys.issueToken(clientId, clientSecret);
      } catch (error) {
        if (viaBasic && error instanceof PlugError && error.code === errors.invalidClient.definition.code) {
          throw errors.invalidClient({ message: error.message, headers: BASIC_CHALLENGE });
        }
        throw error;
      }
    },
  );

  app.post(
    '/revoke',
    {
      schema: {
        tags: ['auth'],
        summary: 'Revoke an access token (RFC 7009: unknown tokens succeed too)',
        body: RevokeRequest,
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        response: { 200: Type.Object({}), ...errorResponses(400, 413, 415) },
      },
    },
    async (request) => {
      await app.services.apiKeys.revokeToken(request.body.token);
      return {};
    },
  );
};

export default oauth2;
