import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../../ids.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';
import { DeliveryAttemptSchema } from '../../../schemas/webhooks.ts';

const EventParams = Type.Object({ id: Type.String({ pattern: idPattern('evt') }) });

/** The webhook side of an event: its delivery attempts, and sending it again. Registered under /events. */
const eventDeliveries: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/:id/attempts',
    {
      schema: {
        tags: ['events'],
        summary: 'Every webhook delivery attempt of an event, to every endpoint, oldest first',
        security: [{ bearerAuth: [] }],
        params: EventParams,
        response: { 200: Type.Object({ data: Type.Array(ref(DeliveryAttemptSchema)) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => ({ data: await app.services.webhooks.listAttempts(organizationOf(request), request.params.id) }),
  );

  app.post(
    '/:id/resend',
    {
      config: { idempotent: true },
      schema: {
        tags: ['events'],
        summary: 'Send an event again, with its original id, to every enabled endpoint subscribed to it',
        security: [{ bearerAuth: [] }],
        params: EventParams,
        response: {
          202: Type.Object({ eventId: Type.String(), endpointIds: Type.Array(Type.String()) }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (request, reply) => reply.code(202).send(await app.services.webhooks.resend(organizationOf(request), request.params.id)),
  );
};

export default eventDeliveries;
