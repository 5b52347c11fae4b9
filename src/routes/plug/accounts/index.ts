import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../../ids.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { AccountSchema } from '../../../schemas/credentials.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../../schemas/pagination.ts';
import { ACCOUNT_SORT_FIELDS } from '../../../services/accounts.ts';
import { parseSort } from '../../../services/pagination.ts';

const tags = ['credentials'];
const security = [{ bearerAuth: [] }];

/** The utility accounts of every credential of the organization. */
const accounts: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        tags,
        summary: 'List utility accounts',
        security,
        querystring: Type.Object(
          {
            credentialId: Type.Optional(Type.String({ pattern: idPattern('crd') })),
            ...pageQuery(ACCOUNT_SORT_FIELDS),
          },
          { additionalProperties: false },
        ),
        response: { 200: PageSchema(ref(AccountSchema)), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { sort, ...query } = request.query;
      return app.services.accounts.list(organizationOf(request), { ...query, sort: parseSort(sort, ACCOUNT_SORT_FIELDS, 'createdAt') });
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Get a utility account',
        security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('acc') }) }),
        response: { 200: ref(AccountSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => app.services.accounts.get(organizationOf(request), request.params.id),
  );
};

export default accounts;
