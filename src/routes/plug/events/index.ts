import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../../errors.ts';
import { idPattern } from '../../../ids.ts';
import { organizationOf } from '../../../plugins/bearer-auth.ts';
import { EventSchema } from '../../../schemas/credentials.ts';
import { errorResponses, ref } from '../../../schemas/index.ts';
import { MAX_ENTRIES_READ_PER_PAGE } from '../../../services/events.ts';
import { EventTypeNameSchema } from '../../../schemas/webhooks.ts';

const tags = ['events'];
const security = [{ bearerAuth: [] }];

/** The organization's event log (SPEC §5): oldest first, paged by cursor. */
const events: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        tags,
        summary: 'Read the event log, oldest first; pass nextCursor as `after` for the next page',
        security,
        querystring: Type.Object(
          {
            after: Type.Optional(Type.String({ pattern: idPattern('evt'), description: 'The id of the last event already read' })),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            type: Type.Optional(EventTypeNameSchema),
            credentialId: Type.Optional(Type.String({ pattern: idPattern('crd') })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            data: Type.Array(ref(EventSchema)),
            nextCursor: Type.Union([Type.String(), Type.Null()], {
              description:
                `null when this page reached the end of the log. A filtered page reads at most ${MAX_ENTRIES_READ_PER_PAGE.toLocaleString('en-US')} ` +
                'entries of the log, so it may hold fewer events than `limit`, even none, and still give a cursor: read on until it is null',
            }),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const page = await app.services.events.list(organizationOf(request), request.query);
      if (!page) throw errors.invalidParameter({ message: 'Unknown cursor: `after` must be the id of an event in the log', param: 'after' });
      return page;
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Get an event',
        security,
        params: Type.Object({ id: Type.String({ pattern: idPattern('evt') }) }),
        response: { 200: ref(EventSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const event = await app.services.events.get(organizationOf(request), request.params.id);
      if (!event) throw errors.notFound({ message: 'Event not found' });
      return event;
    },
  );
};

export default events;
