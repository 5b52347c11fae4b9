import { Type, type TSchema } from 'typebox';
import { idPattern } from '../ids.ts';
import { EVENT_TYPES, eventTypeCatalog, type EventType } from '../webhooks/event-types.ts';
import { CredentialSchema } from './credentials.ts';
import { NO_CONTROL_CHARACTERS_BUT_LINE_BREAKS } from './text.ts';

export const EventTypeNameSchema = Type.Unsafe<EventType>({ type: 'string', enum: [...EVENT_TYPES] });

const endpointFields = {
  url: Type.String({ maxLength: 2048, description: 'https URL (plain http only for targets the operator allow-lists)' }),
  eventTypes: Type.Union([Type.Array(EventTypeNameSchema, { minItems: 1, uniqueItems: true }), Type.Null()], {
    description: 'Event types to receive; null or omitted: all of them',
  }),
  description: Type.String({ maxLength: 500, pattern: NO_CONTROL_CHARACTERS_BUT_LINE_BREAKS, description: 'No control characters other than line breaks and tabs' }),
  isEnabled: Type.Boolean(),
};

export const WebhookEndpointInputSchema = Type.Object(
  {
    url: endpointFields.url,
    eventTypes: Type.Optional(endpointFields.eventTypes),
    description: Type.Optional(endpointFields.description),
    isEnabled: Type.Optional(endpointFields.isEnabled),
  },
  { additionalProperties: false },
);

export const WebhookEndpointPatchSchema = Type.Partial(WebhookEndpointInputSchema, { additionalProperties: false, minProperties: 1 });

export const WebhookEndpointSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('whe') }),
    ...endpointFields,
    disabledReason: Type.Union([Type.String(), Type.Null()], { description: 'Why Plugboard disabled the endpoint, if it did' }),
    previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'Until when the secret before the last rotation still signs deliveries',
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'WebhookEndpoint' },
);

export const DeliveryAttemptSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('att') }),
    eventId: Type.String({ pattern: idPattern('evt') }),
    endpointId: Type.String({ pattern: idPattern('whe') }),
    url: Type.String(),
    attemptNumber: Type.Integer({ minimum: 1, description: 'Counts the attempts of one delivery; a resend or recover starts again at 1' }),
    trigger: Type.Union([Type.Literal('event'), Type.Literal('resend'), Type.Literal('recover')]),
    attemptedAt: Type.String({ format: 'date-time' }),
    outcome: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
    responseStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'null when no response came back' }),
    latencyMs: Type.Integer({ minimum: 0 }),
    responseBody: Type.Union([Type.String(), Type.Null()], { description: 'The first 4 KiB of the response body' }),
    isResponseBodyTruncated: Type.Boolean(),
    error: Type.Union([Type.String(), Type.Null()], { description: 'Why no usable response came back (timeout, refused target, …)' }),
    nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null when this was the last attempt' }),
  },
  { $id: 'DeliveryAttempt' },
);

const SIGNATURE_HEADERS = [
  { name: 'webhook-id', description: 'The event id: the same on every retry and resend, so deduplicate on it' },
  { name: 'webhook-timestamp', description: 'Unix seconds of this attempt; reject values far from your clock' },
  { name: 'webhook-signature', description: 'Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per active secret' },
].map((header) => ({ in: 'header', required: true, schema: { type: 'string' }, ...header }));

/** The shared schemas the event type catalog refers to by `$id`. */
const CATALOG_REFERENCES: Record<string, TSchema> = { Credential: CredentialSchema };

/** The schema with each `$ref` to a shared schema's `$id` (the catalog's style) rewritten by `toRef`. */
function withRefs(schema: unknown, toRef: (id: string) => string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema), (key, value: unknown) => (key === '$ref' && typeof value === 'string' && !value.startsWith('#') ? toRef(value) : value));
}

/**
 * An event type's envelope schema that validates on its own (`GET /plug/webhooks/eventTypes`): the shared
 * schemas it refers to travel along in its `$defs`.
 */
export function standaloneEventSchema(type: EventType): Record<string, unknown> {
  const used = new Set<string>();
  const schema = withRefs(eventTypeCatalog[type].schema, (id) => {
    if (!CATALOG_REFERENCES[id]) throw new Error(`event type ${type} refers to ${id}, which is not in CATALOG_REFERENCES`);
    used.add(id);
    return `#/$defs/${id}`;
  });
  if (used.size === 0) return schema;
  const definitions = [...used].map((id) => {
    const { $id: _id, ...definition } = withRefs(CATALOG_REFERENCES[id], (nested) => `#/$defs/${nested}`);
    return [id, definition];
  });
  return { ...schema, $defs: Object.fromEntries(definitions) };
}

/** `credential.mfa.code_required` → `CredentialMfaCodeRequiredEvent`, its envelope's name among the components. */
function componentNameOf(type: EventType): string {
  return `${type
    .split(/[._]/)
    .map((word) => `${word.charAt(0).toUpperCase()}${word.slice(1)}`)
    .join('')}Event`;
}

const componentRefOf = (type: EventType) => `#/components/schemas/${componentNameOf(type)}`;

/**
 * Each event type's envelope as a component, and `Event` (the event log's items, whose route schema lets any
 * `data` through) as their union told apart by `type`: a generated client gets typed `data` in both places.
 * The catalog refers to shared schemas by `$id` (e.g. `Credential`); the document needs component paths.
 */
export function openApiEventComponents(): Record<string, unknown> {
  const envelopes = EVENT_TYPES.map((type) => [componentNameOf(type), withRefs(eventTypeCatalog[type].schema, (id) => `#/components/schemas/${id}`)]);
  return {
    ...Object.fromEntries(envelopes),
    Event: {
      description: 'An event of the log, and the body of its webhook: `data` depends on `type`.',
      oneOf: EVENT_TYPES.map((type) => ({ $ref: componentRefOf(type) })),
      discriminator: { propertyName: 'type', mapping: Object.fromEntries(EVENT_TYPES.map((type) => [type, componentRefOf(type)])) },
    },
  };
}

/** The OpenAPI 3.1 `webhooks` section: one POST per event type whose body is that type's envelope component. */
export function openApiWebhooks(): Record<string, unknown> {
  return Object.fromEntries(
    EVENT_TYPES.map((type) => {
      const { description } = eventTypeCatalog[type];
      const operation = {
        summary: type,
        description,
        tags: ['webhooks'],
        parameters: SIGNATURE_HEADERS,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: componentRefOf(type) } } } },
        responses: {
          '2XX': { description: 'Received. Any 2xx within the timeout counts; answer first, process later.' },
          '410': { description: 'Gone: Plugboard disables the endpoint.' },
        },
      };
      return [type, { post: operation }];
    }),
  );
}
