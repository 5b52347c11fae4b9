import { Type, type Static, type TSchema } from 'typebox';
import { ERROR_TYPES } from '../errors.ts';
import { AccessTokenSchema, OrganizationSchema } from './auth.ts';
import { AccountSchema, CredentialSchema, EventSchema, ProviderSchema } from './credentials.ts';
import { DeliveryAttemptSchema, WebhookEndpointSchema } from './webhooks.ts';

/** The SPEC §1 error envelope, referenced by every route's 4xx/5xx responses. */
export const ErrorEnvelopeSchema = Type.Object(
  {
    errors: Type.Array(
      Type.Object({
        type: Type.String({ description: `The status in words: ${ERROR_TYPES.join(', ')}` }),
        message: Type.String(),
        param: Type.Optional(Type.String()),
        details: Type.Object({ errorId: Type.String(), value: Type.Optional(Type.Unknown()) }),
      }),
    ),
  },
  { $id: 'Error' },
);

/** Shared schemas registered once with `app.addSchema`; routes point at them with `ref()`. */
export const sharedSchemas: TSchema[] = [ErrorEnvelopeSchema, AccessTokenSchema, OrganizationSchema, WebhookEndpointSchema, DeliveryAttemptSchema,
  ProviderSchema, CredentialSchema, AccountSchema, EventSchema];

/** A `$ref` to a shared schema that still carries its static type for the type provider. */
export function ref<T extends TSchema & { $id?: string }>(schema: T) {
  return Type.Unsafe<Static<T>>({ $ref: schema.$id as string });
}

/**
 * A 201's body, and the `Location` header naming what it created: @fastify/swagger renders a response schema's
 * `headers` as the response's headers (and the serializer ignores them).
 */
export function createdWithLocation<T extends TSchema>(schema: T, location: string): T {
  return { ...schema, headers: { Location: { type: 'string', format: 'uri-reference', description: location } } };
}

/** Standard error responses to spread into a route's `response`. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, ref(ErrorEnvelopeSchema)]));
}
