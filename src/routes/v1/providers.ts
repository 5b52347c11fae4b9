import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';
import { halPage, legacyUrls, toV1Provider } from '../../legacy/hal.ts';
import { V1ProviderPageSchema, V1ProviderSchema } from '../../legacy/schemas.ts';
import { ref } from '../../schemas/index.ts';
import { getProvider, pageOfProviders } from '../../services/providers.ts';
import { PageQuery, v1Errors, v1Route, v1Security } from './common.ts';

/** The provider catalog in v1 shapes, as /plug/providers reads it. */
const providers: FastifyPluginAsyncTypebox = async (app) => {
  const urls = legacyUrls(app.services.ctx.config.publicUrl);

  app.get(
    '/',
    {
      schema: {
        ...v1Route,
        summary: 'List providers',
        security: v1Security,
        querystring: Type.Object(PageQuery),
        response: { 200: ref(V1ProviderPageSchema), ...v1Errors(400, 401, 403) },
      },
    },
    async (request) => {
      const onePage = pageOfProviders({ ...request.query, sort: { field: 'name', direction: 'asc' } });
      return halPage(
        'providers',
        { ...onePage, data: onePage.data.map((provider) => toV1Provider(provider, urls)) },
        { collectionUrl: urls.providers, query: {} },
      );
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        ...v1Route,
        summary: 'Get a provider',
        security: v1Security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('prv') }) }),
        response: { 200: ref(V1ProviderSchema), ...v1Errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      return toV1Provider(getProvider(request.params.id), urls);
    },
  );
};

export default providers;
