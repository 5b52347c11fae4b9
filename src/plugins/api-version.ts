import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { errors } from '../errors.ts';

/** Dated API versions, newest first. A request without a version header gets the newest. */
export const API_VERSIONS = ['2026-11-01'] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

declare module 'fastify' {
  interface FastifyRequest {
    apiVersion: ApiVersion;
  }
}

async function apiVersion(app: FastifyInstance) {
  app.decorateRequest('apiVersion', API_VERSIONS[0]);
  app.addHook('onRequest', async (request, reply) => {
    // Arcadia-Version is accepted too, so clients of the product we follow need only change the base URL.
    const header = request.headers['plug-version'] !== undefined ? 'Plug-Version' : 'Arcadia-Version';
    const asked = request.headers[header.toLowerCase()];
    const value = Array.isArray(asked) ? asked[0] : asked;
    reply.header('Plug-Version', API_VERSIONS[0]);
    if (value === undefined) return;
    const known = API_VERSIONS.find((v) => v === value.trim());
    if (!known) {
      // Named as sent: a client of the product we follow sends Arcadia-Version and should read that name back.
      throw errors.unknownVersion({ param: header, message: `Unknown ${header}; supported: ${API_VERSIONS.join(', ')}` });
    }
    request.apiVersion = known;
    reply.header('Plug-Version', known);
  });
}

export default fp(apiVersion, { name: 'api-version', fastify: '5.x' });
