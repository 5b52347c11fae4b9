import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { sharedSchemas } from '../schemas/index.ts';
import { openApiEventComponents, openApiWebhooks } from '../schemas/webhooks.ts';
import { completeOperations, SECURITY_SCHEMES } from './openapi-completion.ts';

/**
 * OpenAPI 3.1 from the route schemas. Shared schemas are registered with `$id`s and referenced by
 * name, so `components.schemas` keys stay stable between runs and diffs of openapi.yaml stay readable.
 */
async function openapi(app: FastifyInstance, options: { publicUrl: string }) {
  for (const schema of sharedSchemas) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Plugboard API',
        version: '2026-11-01',
        description: 'Credential connections with MFA webhooks. See README.md for the guide.',
      },
      servers: [{ url: options.publicUrl }],
      // Built from the event catalog's JSON Schemas, which the OpenAPI typings cannot check statically.
      webhooks: openApiWebhooks() as never,
      // Which scheme each tree uses, and what every operation shares: see openapi-completion.ts.
      components: { securitySchemes: SECURITY_SCHEMES as never },
      tags: [
        { name: 'auth', description: 'OAuth2 client credentials' },
        { name: 'providers', description: 'Utility providers' },
        { name: 'credentials', description: 'Credentials and MFA' },
        { name: 'events', description: 'The event log' },
        { name: 'webhooks', description: 'Webhook endpoints' },
        { name: 'sandbox', description: 'Sandbox helpers' },
        { name: 'dashboard', description: 'Dashboard users and two-factor authentication' },
        { name: 'v1', description: 'Legacy Utility Cloud API (deprecated)' },
        { name: 'operations', description: 'Health and metrics' },
      ],
    },
    transformObject: (documentObject) => ('openapiObject' in documentObject ? withEventComponents(completeOperations(documentObject.openapiObject as never)) : documentObject.swaggerObject) as never,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

/** The typed event envelopes (see `openApiEventComponents`) in place of the route schemas' open `Event`. */
function withEventComponents<T extends { components?: Record<string, Record<string, unknown>> }>(document: T): T {
  const components = (document.components ??= {});
  components.schemas = { ...components.schemas, ...openApiEventComponents() };
  return document;
}

export default fp(openapi, { name: 'openapi', fastify: '5.x' });
