import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../../../errors.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { OrganizationSchema } from '../../../schemas/auth.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';

/** Who am I: the organization the access token belongs to. */
const organization: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['auth'],
        summary: 'The organization of the access token',
        security: [{ bearerAuth: [] }],
        response: { 200: ref(OrganizationSchema), ...errorResponses(401) },
      },
    },
    async (request) => {
      const found = await app.services.organizations.get(organizationOf(request));
      if (!found) throw errors.notFound();
      return found;
    },
  );
};

export default organization;
