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

const VERSION_HEADERS = ['Plug-Version', 'Arcadia-Version'] as const;

async function apiVersion(app: FastifyInstance) {
  app.decorateRequest('apiVersion', API_VERSIONS[0]);
  app.addHook('onRequest', async (request) => {
    // Arcadia-Version is accepted too, so clients of the product we follow need only change the base URL.
    // Each header sent must name a known version: a valid one does not hide a bad other.
    const asked = VERSION_HEADERS.flatMap((header) => {
      const sent = request.headers[header.toLowerCase()];
      const value = Array.isArray(sent) ? sent[0] : sent;
      if (value === undefined) return [];
      const known = API_VERSIONS.find((version) => version === value.trim());
      // Named as sent: a client of the product we follow sends Arcadia-Version and should read that name back.
      if (!known) throw errors.unknownVersion({ param: header, message: `Unknown ${header}; supported: ${API_VERSIONS.join(', ')}` });
      return [known];
    });
    // Plug-Version wins over Arcadia-Version. (With a second version, two that differ should be a 400.)
    const [version] = asked;
    if (version !== undefined) request.apiVersion = version;
  });
  // Stamped on the way out, so answers refused before the check above (no Host, Redis unavailable) carry it too.
  app.addHook('onSend', async (request, reply) => {
    reply.header('Plug-Version', request.apiVersion);
  });
}

export default fp(apiVersion, { name: 'api-version', fastify: '5.x' });
