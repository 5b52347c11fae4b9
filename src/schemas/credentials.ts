/** Response schemas of providers, credentials, accounts and events (SPEC §3–§5). */
import { Type } from 'typebox';
import { STATUS_DETAIL_NAMES, STATUSES } from '../domain/credential-state.ts';
import { idPattern } from '../ids.ts';
import { NO_CONTROL_CHARACTERS } from './text.ts';

const Timestamp = Type.String({ format: 'date-time' });
const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
const literals = <const T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });

export const MfaMethodType = literals(['SMS', 'CALL', 'EMAIL', 'APP']);
export const CredentialStatus = literals(STATUSES);
export const CredentialStatusDetail = literals(STATUS_DETAIL_NAMES);

/** Request fields shared by every API version that takes a login (/plug/credentials and /v1/utility/credentials). */
export const Username = Type.String({ minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS, description: 'No control characters' });
export const Password = Type.String({ minLength: 1, maxLength: 1024, description: 'Encrypted at rest; never returned' });
export const CorrelationId = Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: NO_CONTROL_CHARACTERS }), Type.Null()], {
  description: 'Your own reference, e.g. your customer id; filterable. No control characters',
});

export const CredentialParams = Type.Object({ id: Type.String({ pattern: idPattern('crd') }) });

/** The MFA answers, the same from the API and from the hosted page (`/connect`). */
export const VerificationMethodBody = Type.Object(
  {
    challengeId: Type.String({ pattern: idPattern('mfa') }),
    methodId: Type.String({ pattern: idPattern('mth') }),
    isResubmission: Type.Optional(Type.Boolean({ description: 'Ask for a new code on the same challenge' })),
  },
  { additionalProperties: false },
);

export const OneTimePasscodeBody = Type.Object(
  {
    challengeId: Type.String({ pattern: idPattern('mfa') }),
    code: Type.String({
      minLength: 1,
      maxLength: 64,
      description:
        "Sent to the provider without whitespace and with digits of any script as ASCII digits (full-width, Arabic-Indic), otherwise as typed; never stored in clear. One whose length is not the challenge's codeLength, or that holds other non-ASCII characters, is a 400 and costs no attempt",
    }),
  },
  { additionalProperties: false },
);

export const ProviderSchema = Type.Object(
  {
    id: Type.String({ pattern: '^prv_' }),
    name: Type.String(),
    country: Type.String({ description: 'ISO 3166-1 alpha-2' }),
    loginFields: Type.Array(
      Type.Object({
        name: Type.String({ description: '`username`, `password`, or the key of a value in `extraFields`' }),
        label: Type.String(),
        isSecret: Type.Boolean(),
        isRequired: Type.Boolean(),
      }),
    ),
    mfaMethods: Type.Array(MfaMethodType),
    sessionLifetimeSeconds: nullable(Type.Integer()),
    isSandbox: Type.Boolean(),
  },
  { $id: 'Provider' },
);

export const CredentialSchema = Type.Object(
  {
    id: Type.String({ pattern: '^crd_' }),
    providerId: Type.String(),
    username: Type.String(),
    correlationId: nullable(Type.String()),
    status: CredentialStatus,
    statusDetail: CredentialStatusDetail,
    statusMessage: nullable(Type.String()),
    isCustomerActionRequired: Type.Boolean(),
    isAccessible: Type.Boolean({ description: 'A login succeeded and its session still works' }),
    isActive: Type.Boolean({ description: 'False once disabled' }),
    mfa: nullable(
      Type.Object({
        challengeId: Type.String({ pattern: '^mfa_' }),
        stage: literals(['METHOD_SELECTION', 'CODE_ENTRY']),
        availableMethods: Type.Array(
          Type.Object({ id: Type.String({ pattern: '^mth_' }), type: MfaMethodType, destination: nullable(Type.String()) }),
        ),
        selectedMethodId: nullable(Type.String()),
        codeLength: nullable(Type.Integer()),
        expiresAt: Timestamp,
        attemptsRemaining: Type.Integer({ minimum: 0 }),
      }),
    ),
    mfaSession: nullable(Type.Object({ obtainedAt: Timestamp, expiresAt: nullable(Timestamp) })),
    lastSyncedAt: nullable(Timestamp),
    nextSyncAt: nullable(Timestamp),
    createdAt: Timestamp,
    createdBy: Type.String(),
    lastModifiedAt: Timestamp,
    lastModifiedBy: Type.String(),
  },
  { $id: 'Credential' },
);

export const AccountSchema = Type.Object(
  {
    id: Type.String({ pattern: '^acc_' }),
    credentialId: Type.String(),
    providerId: Type.String(),
    providerAccountId: Type.String({ description: "The provider's own id; our id stays the same for as long as it does" }),
    accountNumber: Type.String(),
    name: Type.String(),
    serviceAddress: Type.String(),
    type: literals(['ELECTRIC', 'GAS', 'WATER', 'OTHER']),
    isActive: Type.Boolean({ description: 'False once the provider no longer shows the account' }),
    createdAt: Timestamp,
    lastSyncedAt: Timestamp,
  },
  { $id: 'Account' },
);

/** The event envelope, also the webhook body. `data` depends on `type` (GET /plug/webhooks/eventTypes). */
export const EventSchema = Type.Object(
  {
    id: Type.String({ pattern: '^evt_' }),
    type: Type.String(),
    timestamp: Timestamp,
    data: Type.Object({}, { additionalProperties: true }),
  },
  { $id: 'Event' },
);
