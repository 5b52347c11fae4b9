import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../../ids.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { CredentialSchema } from '../../../schemas/credentials.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';

const tags = ['sandbox'];
const security = [{ bearerAuth: [] }];
const params = Type.Object({ id: Type.String({ pattern: idPattern('crd') }) });

/** SPEC §3 sandbox helpers: end a sandbox credential's provider session to rehearse refresh_required. */
const sandbox: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/credentials/:id/expireSession',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'The stored provider session of a sandbox credential ends now (refresh_required follows at once)',
        security,
        params,
        response: { 200: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => app.services.connections.expireSandboxSession(organizationOf(request), request.params.id),
  );

  app.post(
    '/credentials/:id/revokeSession',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'The sandbox provider silently stops honouring the session; the next sync finds out',
        security,
        params,
        response: { 200: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => app.services.connections.revokeSandboxSession(organizationOf(request), request.params.id),
  );
};

export default sandbox;
