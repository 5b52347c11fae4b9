/**
 * The legacy Utility Cloud API (SPEC §7), deprecated: old paths and HAL shapes over the same services as
 * /plug, so a credential created here is an ordinary credential there and the other way round. Everything
 * here translates (src/legacy/); no rule of the product lives in this tree. Errors are the catalog's,
 * written as v1's `{ status, message }`.
 */
import type { FastifyInstance } from 'fastify';
import { v1Schemas } from '../../legacy/schemas.ts';
import { handleErrors } from '../../plugins/error-envelope.ts';
import accounts from './accounts.ts';
import auth, { requireV1Token } from './auth.ts';
import { toV1Error } from './common.ts';
import credentials from './credentials.ts';
import providers from './providers.ts';

async function utility(app: FastifyInstance) {
  app.addHook('onRequest', requireV1Token);
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
