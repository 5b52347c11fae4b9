import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../../ids.ts';
import { ProviderSchema } from '../../../schemas/credentials.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../../schemas/pagination.ts';
import { parseSort } from '../../../services/pagination.ts';
import { getProvider, PROVIDER_SORT_FIELDS, pageOfProviders } from '../../../services/providers.ts';

const tags = ['providers'];
const security = [{ bearerAuth: [] }];

/** The provider catalog (SPEC §3). */
const providers: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        tags,
        summary: 'List the providers credentials can connect to',
        security,
        querystring: Type.Object(pageQuery(PROVIDER_SORT_FIELDS, 'asc'), { additionalProperties: false }),
        response: { 200: PageSchema(ref(ProviderSchema)), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { sort, ...page } = request.query;
      return pageOfProviders({ ...page, sort: parseSort(sort, PROVIDER_SORT_FIELDS, 'name', 'asc') });
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Get a provider',
        security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('prv') }) }),
        response: { 200: ref(ProviderSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      return getProvider(request.params.id);
    },
  );
};

export default providers;
