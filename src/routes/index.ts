import type { FastifyInstance } from 'fastify';
import dashboard from './dashboard/index.ts';
import health from './health.ts';
import oauth2 from './oauth2/index.ts';
import plug from './plug/index.ts';
import v1 from './v1/index.ts';
import web from './web/index.ts';
import sameOrigin from './web/same-origin.ts';

/** Where the legacy "Utility Cloud" v1 API lives (its errors keep their own shape, even before routing). */
export const V1_PREFIX = '/v1';

/** Every route tree of the API, one line each. */
export default async function routes(app: FastifyInstance) {
  await app.register(health);
  // Before any tree a browser reaches with a cookie: refuses state changes from other sites (CSRF).
  await app.register(sameOrigin);
  await app.register(oauth2, { prefix: '/oauth2' });
  await app.register(plug, { prefix: '/plug' });
  await app.register(dashboard, { prefix: '/dashboard' });
  await app.register(v1, { prefix: V1_PREFIX });
  await app.register(web);
}
