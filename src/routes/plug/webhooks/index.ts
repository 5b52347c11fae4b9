import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../errors.ts';
import { idPattern } from '../../../ids.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { idForCreation } from '../../../plugins/idempotency.ts';
import { createdWithLocation, errorResponses, ref } from '../../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../../schemas/pagination.ts';
import {
  EventTypeNameSchema,
  standaloneEventSchema,
  WebhookEndpointInputSchema,
  WebhookEndpointPatchSchema,
  WebhookEndpointSchema,
} from '../../../schemas/webhooks.ts';
import { paginate, parseSort } from '../../../services/pagination.ts';
import { eventTypeCatalog, EVENT_TYPES } from '../../../webhooks/event-types.ts';

const EndpointParams = Type.Object({ id: Type.String({ pattern: idPattern('whe') }) });
const security = [{ bearerAuth: [] }];
const tags = ['webhooks'];

const SORTABLE = ['createdAt', 'updatedAt'] as const;

const EVENT_TYPE_LIST = EVENT_TYPES.map((type) => ({ ...eventTypeCatalog[type], schema: standaloneEventSchema(type) }));

/** Webhook endpoints and the event type catalog (SPEC §5). */
const webhooks: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.services.webhooks;

  app.get(
    '/eventTypes',
    {
      schema: {
        tags,
        summary: 'The event types and the JSON Schema of each webhook body (self-contained: shared parts in its $defs)',
        security,
        response: {
          200: Type.Object({
            data: Type.Array(Type.Object({ type: EventTypeNameSchema, description: Type.String(), schema: Type.Unknown() })),
          }),
          ...errorResponses(401),
        },
      },
    },
    async () => ({ data: EVENT_TYPE_LIST }),
  );

  app.post(
    '/endpoints',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Create a webhook endpoint (the signing secret is shown in this response only)',
        security,
        body: WebhookEndpointInputSchema,
        response: {
          201: createdWithLocation(
            Type.Intersect([ref(WebhookEndpointSchema), Type.Object({ secret: Type.String({ pattern: '^whsec_' }) })]),
            'The new endpoint: /plug/webhooks/endpoints/{id}',
          ),
          ...errorResponses(400, 401, 409),
        },
      },
    },
    async (request, reply) => {
      const created = await service.createEndpoint(organizationOf(request), request.body, idForCreation(request, 'whe'));
      return reply.code(201).header('location', `${app.prefix}/endpoints/${created.id}`).send(created);
    },
  );

  app.get(
    '/endpoints',
    {
      schema: {
        tags,
        summary: 'List webhook endpoints',
        security,
        querystring: Type.Object(pageQuery(SORTABLE), { additionalProperties: false }),
        response: { 200: PageSchema(ref(WebhookEndpointSchema)), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { page, size } = request.query;
      const sort = parseSort(request.query.sort, SORTABLE, 'createdAt');
      return paginate(await service.listEndpoints(organizationOf(request)), { page, size, sort });
    },
  );

  app.get(
    '/endpoints/:id',
    {
      schema: { tags, summary: 'Get a webhook endpoint', security, params: EndpointParams, response: { 200: ref(WebhookEndpointSchema), ...errorResponses(400, 401, 404) } },
    },
    async (request) => service.getEndpoint(organizationOf(request), request.params.id),
  );

  app.patch(
    '/endpoints/:id',
    {
      schema: {
        tags,
        summary: 'Change a webhook endpoint (enabling it again clears its failure streak)',
        security,
        params: EndpointParams,
        body: WebhookEndpointPatchSchema,
        response: { 200: ref(WebhookEndpointSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => service.updateEndpoint(organizationOf(request), request.params.id, request.body),
  );

  app.delete(
    '/endpoints/:id',
    {
      schema: { tags, summary: 'Delete a webhook endpoint', security, params: EndpointParams, response: { 204: Type.Null(), ...errorResponses(400, 401, 404, 409) } },
    },
    async (request, reply) => {
      await service.deleteEndpoint(organizationOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/endpoints/:id/test',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Send a webhook.test event to this endpoint only',
        security,
        params: EndpointParams,
        response: { 202: eventTypeCatalog['webhook.test'].schema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(await service.sendTest(organizationOf(request), request.params.id)),
  );

  app.post(
    '/endpoints/:id/rotateSecret',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Replace the signing secret; the old one keeps signing alongside until previousSecretExpiresAt',
        security,
        params: EndpointParams,
        response: {
          200: Type.Object({ secret: Type.String({ pattern: '^whsec_' }), previousSecretExpiresAt: Type.String({ format: 'date-time' }) }),
          ...errorResponses(400, 401, 404, 409),
        },
      },
    },
    async (request) => service.rotateSecret(organizationOf(request), request.params.id),
  );

  app.post(
    '/endpoints/:id/recover',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Re-send, with their original event ids, the deliveries to this endpoint that failed since a time',
        security,
        params: EndpointParams,
        body: Type.Object({ since: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
        response: { 202: Type.Object({ eventIds: Type.Array(Type.String()) }), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const since = new Date(request.body.since);
      // RFC 3339 allows a leap second (…:60Z), which the schema's format lets through and Date cannot hold.
      if (Number.isNaN(since.getTime())) throw errors.invalidParameter({ param: 'since', message: 'since must be a time that exists (no leap second)' });
      return reply.code(202).send(await service.recover(organizationOf(request), request.params.id, since));
    },
  );
};

export default webhooks;
