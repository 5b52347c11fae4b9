import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';
import { halPage, legacyUrls, toV1Account } from '../../legacy/hal.ts';
import { V1AccountPageSchema, V1AccountSchema } from '../../legacy/schemas.ts';
import { ref } from '../../schemas/index.ts';
import { v1UserOf } from './auth.ts';
import { PageQuery, v1Errors, v1Route, v1Security } from './common.ts';

/** Utility accounts in v1 shapes, over the same account service as /plug/accounts. */
const accounts: FastifyPluginAsyncTypebox = async (app) => {
  const urls = legacyUrls(app.services.ctx.config.publicUrl);

  app.get(
    '/',
    {
      schema: {
        ...v1Route,
        summary: 'List utility accounts, oldest first',
        security: v1Security,
        querystring: Type.Object(PageQuery),
        response: { 200: ref(V1AccountPageSchema), ...v1Errors(400, 401, 403) },
      },
    },
    async (request) => {
      const onePage = await app.services.accounts.list(v1UserOf(request).organizationId, {
        ...request.query,
        sort: { field: 'createdAt', direction: 'asc' },
      });
      return halPage(
        'accounts',
        { ...onePage, data: onePage.data.map((account) => toV1Account(account, urls)) },
        { collectionUrl: urls.accounts, query: {} },
      );
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        ...v1Route,
        summary: 'Get a utility account',
        security: v1Security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('acc') }) }),
        response: { 200: ref(V1AccountSchema), ...v1Errors(400, 401, 403, 404) },
      },
    },
    async (request) => toV1Account(await app.services.accounts.get(v1UserOf(request).organizationId, request.params.id), urls),
  );
};

export default accounts;
