/**
 * The legacy Utility Cloud API (SPEC §7), deprecated: old paths and HAL shapes over the same services as
 * /plug, so a credential created here is an ordinary credential there and the other way round. Everything
 * here translates (src/legacy/); no rule of the product lives in this tree. Errors are the catalog's,
 * written as v1's `{ status, message }`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HAL_MEDIA_TYPE, prefersHal } from '../../legacy/hal.ts';
import { v1Schemas } from '../../legacy/schemas.ts';
import { handleErrors } from '../../plugins/error-envelope.ts';
import accounts from './accounts.ts';
import auth, { requireV1Token } from './auth.ts';
import { toV1Error } from './common.ts';
import credentials from './credentials.ts';
import providers from './providers.ts';

/** HAL's own media type for a client that asks for it (as HAL libraries do); plain JSON for everyone else. */
async function labelHal(request: FastifyRequest, reply: FastifyReply) {
  if (reply.statusCode < 400 && prefersHal(request.headers.accept)) {
    reply.header('content-type', `${HAL_MEDIA_TYPE}; charset=utf-8`);
  }
}

async function utility(app: FastifyInstance) {
  app.addHook('onRequest', requireV1Token);
  app.addHook('onSend', labelHal);
  await app.register(providers, { prefix: '/providers' });
  await app.register(credentials, { prefix: '/credentials' });
  await app.register(accounts, { prefix: '/accounts' });
}

export default async function v1(app: FastifyInstance) {
  for (const schema of v1Schemas) app.addSchema(schema);
  handleErrors(app, toV1Error);
  app.decorateRequest('v1User', null);
  await app.register(auth, { prefix: '/auth' });
  await app.register(utility, { prefix: '/utility' });
}
