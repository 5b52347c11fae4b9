import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';
import { createdWithLocation, errorResponses } from '../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../schemas/pagination.ts';
import { NO_CONTROL_CHARACTERS } from '../../schemas/text.ts';
import type { ApiKeyView } from '../../services/api-keys.ts';
import { paginate, parseSort } from '../../services/pagination.ts';
import { organizationIdempotency, requireDashboardSession, requireOrganizationAdmin, sessionUserOf } from './session-auth.ts';

const apiKeyFields = {
  id: Type.String(),
  name: Type.String(),
  clientId: Type.String({ description: 'The client_id for POST /oauth2/token' }),
  createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the key last got an access token' }),
};
const ApiKeySchema = Type.Object(apiKeyFields);
const CreatedApiKeySchema = Type.Object({
  ...apiKeyFields,
  client_secret: Type.String({ description: 'Shown once; only its hash is stored' }),
});

const CreateApiKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200, pattern: NO_CONTROL_CHARACTERS, description: 'No control characters' }) },
  { additionalProperties: false },
);

const security = [{ bearerAuth: [] }];
const SORT_FIELDS = ['createdAt'] as const;

function toResponse({ organizationId: _organizationId, ...key }: ApiKeyView) {
  return key;
}

/** Organization admins manage the API keys (client credentials) of the current API. */
const apiKeys: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', requireDashboardSession);
  app.addHook('preHandler', requireOrganizationAdmin);

  app.get(
    '/',
    {
      schema: {
        tags: ['dashboard'],
        summary: "The organization's API keys (admins only)",
        security,
        querystring: Type.Object(pageQuery(SORT_FIELDS), { additionalProperties: false }),
        response: { 200: PageSchema(ApiKeySchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { page, size, sort } = request.query;
      const keys = (await app.services.apiKeys.list(sessionUserOf(request).organizationId)).map(toResponse);
      return paginate(keys, { page, size, sort: parseSort(sort, SORT_FIELDS, 'createdAt') });
    },
  );

  app.post(
    '/',
    {
      config: organizationIdempotency,
      schema: {
        tags: ['dashboard'],
        summary: 'Create an API key (admins only); the response holds client_secret, shown this once',
        security,
        body: CreateApiKeyBody,
        response: { 201: createdWithLocation(CreatedApiKeySchema, 'The new key: /dashboard/apiKeys/{id} (DELETE revokes it)'), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const user = sessionUserOf(request);
      const { clientSecret, ...key } = await app.services.apiKeys.create(user.organizationId, { name: request.body.name, createdBy: user.id });
      return reply.status(201).header('location', `${app.prefix}/${key.id}`).send({ ...toResponse(key), client_secret: clientSecret });
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'Revoke an API key and every access token it issued (admins only)',
        security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('key') }) }),
        response: { 204: Type.Null({ description: 'Revoked' }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await app.services.apiKeys.revoke(sessionUserOf(request).organizationId, request.params.id);
      return reply.status(204).send(null);
    },
  );
};

export default apiKeys;
