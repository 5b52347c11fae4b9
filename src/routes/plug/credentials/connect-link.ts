import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { CredentialParams } from '../../../schemas/credentials.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { errorResponses } from '../../../schemas/index.ts';

const ConnectLinkSchema = Type.Object({
  url: Type.String({ format: 'uri', description: 'The hosted MFA page for this credential only; hand it to your customer' }),
  expiresAt: Type.String({ format: 'date-time', description: '72 hours from now' }),
});

const security = [{ bearerAuth: [] }];
const tags = ['credentials'];

/**
 * Links to the hosted MFA page (see services/connect-links.ts): for customers who answer MFA themselves and
 * have no Dashboard account. A link opens one credential's challenge, nothing else.
 */
const connectLink: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/:id/connectLink',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Create a link to the hosted MFA page for this credential (valid 72 h, revocable)',
        security,
        params: CredentialParams,
        response: { 201: ConnectLinkSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => reply.code(201).send(await app.services.connectLinks.create(organizationOf(request), request.params.id)),
  );

  app.delete(
    '/:id/connectLink',
    {
      schema: {
        tags,
        summary: "Revoke every link to this credential's hosted MFA page",
        security,
        params: CredentialParams,
        response: { 204: Type.Null({ description: 'Revoked' }), ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await app.services.connectLinks.revokeAll(organizationOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default connectLink;
