/**
 * The legacy v1 wire shapes (SPEC §7) as JSON schemas: response validation/serialisation and the OpenAPI
 * document use them, and the translation code takes its types from them, so the two cannot drift apart.
 * Each has its own `$id` (all starting with V1) and is registered by the v1 route tree.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { ref } from '../schemas/index.ts';
import { V1_STATUSES, type V1StatusDetail } from './status-mapping.ts';

const V1_STATUS_DETAILS: V1StatusDetail[] = [
  'NO_ACTION_REQUIRED',
  'UNDER_REVIEW',
  'WEBSITE_DOWN',
  'LOGIN_FAILURE',
  'ACCOUNT_LOCKED',
  'MULTI_FACTOR_AUTH_FAILURE',
  'DISABLED',
];

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const V1ErrorSchema = Type.Object(
  { status: Type.Integer({ description: 'The HTTP status, repeated' }), message: Type.String() },
  { $id: 'V1Error', description: 'Every v1 failure, validation included' },
);

export const V1LinkSchema = Type.Object(
  {
    href: Type.String({ format: 'uri' }),
    name: Type.Optional(Type.String({ description: 'Which of several links with one relation this is' })),
    title: Type.Optional(Type.String({ description: 'How to call it' })),
  },
  { $id: 'V1Link' },
);

export const V1LoginSchema = Type.Object(
  {
    status: Type.Integer(),
    message: Type.String(),
    type: Type.Literal('Bearer'),
    token: Type.String({ description: 'Send as Authorization: Bearer <token> on every other v1 call' }),
    expires: Timestamp,
  },
  { $id: 'V1Login' },
);

export const V1ProviderSchema = Type.Object(
  {
    entityId: Type.String(),
    providerName: Type.String(),
    country: Type.String({ description: 'ISO 3166-1 alpha-2' }),
    _links: Type.Object({ self: ref(V1LinkSchema) }),
  },
  { $id: 'V1Provider' },
);

export const V1CredentialSchema = Type.Object(
  {
    entityId: Type.String(),
    username: Type.String(),
    correlationId: Nullable(Type.String()),
    providerName: Type.String(),
    providerId: Type.String(),
    enabled: Type.Boolean(),
    status: Type.Unsafe<(typeof V1_STATUSES)[number]>({ type: 'string', enum: [...V1_STATUSES] }),
    statusDetail: Type.Unsafe<V1StatusDetail>({ type: 'string', enum: V1_STATUS_DETAILS }),
    created: Timestamp,
    lastModified: Timestamp,
    createdBy: Type.String(),
    lastModifiedBy: Type.String(),
    mock: Type.Boolean({ description: 'True for sandbox providers' }),
    _links: Type.Object({
      self: ref(V1LinkSchema),
      accounts: ref(V1LinkSchema),
      mfa: Type.Optional(
        Type.Array(ref(V1LinkSchema), {
          description:
            'Only with MULTI_FACTOR_AUTH_FAILURE: the current API calls that resolve the MFA, named credential, connectLink, verificationMethod, oneTimePasscode and refresh (those that fit the current stage). They need an access token of the current API.',
        }),
      ),
    }),
  },
  { $id: 'V1Credential' },
);

export const V1AccountSchema = Type.Object(
  {
    entityId: Type.String(),
    credentialId: Type.String(),
    providerId: Type.String(),
    providerName: Type.String(),
    accountNumber: Type.String(),
    name: Type.String(),
    serviceAddress: Type.String(),
    type: Type.String({ description: 'ELECTRIC, GAS, WATER or OTHER' }),
    enabled: Type.Boolean({ description: 'False once the provider no longer shows the account' }),
    created: Timestamp,
    lastModified: Timestamp,
    mock: Type.Boolean(),
    _links: Type.Object({ self: ref(V1LinkSchema), credential: ref(V1LinkSchema) }),
  },
  { $id: 'V1Account' },
);

export const V1PageMetadataSchema = Type.Object(
  { size: Type.Integer(), totalElements: Type.Integer(), totalPages: Type.Integer(), number: Type.Integer({ description: 'Zero-based' }) },
  { $id: 'V1PageMetadata' },
);

export const V1PageLinksSchema = Type.Object(
  {
    self: ref(V1LinkSchema),
    next: Type.Optional(ref(V1LinkSchema)),
    prev: Type.Optional(ref(V1LinkSchema)),
    last: ref(V1LinkSchema),
  },
  { $id: 'V1PageLinks' },
);

/** A HAL collection page: the items under `_embedded.<relation>`, navigation links and the page numbers. */
function pageSchema<Embedded extends TSchema>(embedded: Embedded, $id: string) {
  return Type.Object({ _embedded: embedded, _links: ref(V1PageLinksSchema), page: ref(V1PageMetadataSchema) }, { $id });
}

export const V1ProviderPageSchema = pageSchema(Type.Object({ providers: Type.Array(ref(V1ProviderSchema)) }), 'V1ProviderPage');
export const V1CredentialPageSchema = pageSchema(Type.Object({ credentials: Type.Array(ref(V1CredentialSchema)) }), 'V1CredentialPage');
export const V1AccountPageSchema = pageSchema(Type.Object({ accounts: Type.Array(ref(V1AccountSchema)) }), 'V1AccountPage');

/** Registered once by the v1 route tree, in dependency order. */
export const v1Schemas: TSchema[] = [
  V1ErrorSchema,
  V1LinkSchema,
  V1LoginSchema,
  V1ProviderSchema,
  V1CredentialSchema,
  V1AccountSchema,
  V1PageMetadataSchema,
  V1PageLinksSchema,
  V1ProviderPageSchema,
  V1CredentialPageSchema,
  V1AccountPageSchema,
];

export type V1Link = Static<typeof V1LinkSchema>;
export type V1Provider = Static<typeof V1ProviderSchema>;
export type V1Credential = Static<typeof V1CredentialSchema>;
export type V1Account = Static<typeof V1AccountSchema>;
export type V1PageMetadata = Static<typeof V1PageMetadataSchema>;
export type V1PageLinks = Static<typeof V1PageLinksSchema>;
