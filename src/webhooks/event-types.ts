/**
 * The event type catalog (SPEC §5): what each event means and the JSON Schema of its envelope, which is
 * also the webhook body. Served by `GET /plug/webhooks/eventTypes` and used to validate subscriptions.
 *
 * `data.credential` points at the shared `Credential` schema (`$id: 'Credential'`) instead of copying it,
 * so a validator must have that schema registered. Envelopes allow extra properties on purpose: receivers
 * should ignore fields they do not know, and we want to be able to add some.
 */
import { Type, type TProperties, type TSchema } from 'typebox';

const credential = Type.Unsafe({ $ref: 'Credential' });

function credentialData(fields: TProperties = {}): TProperties {
  return { credential, ...fields };
}

const userData: TProperties = {
  // Not `format: 'email'`, which is ASCII only: a user may sign in as zoë@example.com (what sign-up accepts).
  user: Type.Object({ id: Type.String({ pattern: '^usr_' }), email: Type.String({ pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' }) }),
};

const definitions = {
  'credential.created': {
    description: 'A credential was accepted; its first login is under way.',
    data: credentialData(),
  },
  'credential.status_changed': {
    description: 'The status or statusDetail of a credential changed; data.previous holds the old pair.',
    data: credentialData({ previous: Type.Object({ status: Type.String(), statusDetail: Type.String() }) }),
  },
  'credential.connected': {
    description: 'The login succeeded, for the first time or after a repair.',
    data: credentialData(),
  },
  'credential.mfa.method_required': {
    description: 'The provider asks which delivery method (credential.mfa.availableMethods) to send a code to.',
    data: credentialData(),
  },
  'credential.mfa.code_required': {
    description: 'A code has been sent, or an authenticator-app code is needed; it must be submitted before data.expiresAt.',
    data: credentialData({ expiresAt: Type.String({ format: 'date-time' }) }),
  },
  'credential.mfa.code_rejected': {
    description: 'The submitted code was wrong; the challenge stays open with data.attemptsRemaining tries left.',
    data: credentialData({ attemptsRemaining: Type.Integer({ minimum: 0 }) }),
  },
  'credential.mfa.timed_out': {
    description: 'The challenge expired unanswered; a new code is required. data.challengeId names the challenge that ended.',
    data: credentialData({ challengeId: Type.String({ pattern: '^mfa_' }) }),
  },
  'credential.mfa.session_expiring': {
    description: 'Advance warning: the stored provider session ends at data.expiresAt, after which a new code is required.',
    data: credentialData({ expiresAt: Type.String({ format: 'date-time' }) }),
  },
  'credential.mfa.refresh_required': {
    description: 'The stored provider session expired (data.reason EXPIRED) or the provider stopped honouring it (REVOKED); a new code is required.',
    data: credentialData({ reason: Type.Union([Type.Literal('EXPIRED'), Type.Literal('REVOKED')]) }),
  },
  'credential.disabled': {
    description: 'The credential was disabled.',
    data: credentialData(),
  },
  'credential.deleted': {
    description: 'The credential was deleted; data.credential is its last state.',
    data: credentialData(),
  },
  'webhook.test': {
    description: 'Sent on request by POST /plug/webhooks/endpoints/{id}/test, to check an endpoint.',
    data: { endpointId: Type.String({ pattern: '^whe_' }), message: Type.String() },
  },
  'webhook.endpoint_disabled': {
    description:
      'Plugboard disabled a webhook endpoint (it answered 410 Gone, or every delivery failed for WEBHOOK_DISABLE_AFTER_SECONDS); sent to the organization\'s other endpoints. Enable it again, then recover what it missed.',
    // No URL: members of the organization read the event log, and only admins see endpoints (URLs often hold tokens).
    data: {
      endpointId: Type.String({ pattern: '^whe_' }),
      disabledReason: Type.String(),
    },
  },
  'user.two_factor.enabled': {
    description: 'A dashboard user turned on two-factor authentication.',
    data: userData,
  },
  'user.two_factor.disabled': {
    description: 'Two-factor authentication of a dashboard user was turned off.',
    data: userData,
  },
  'user.two_factor.recovery_code_used': {
    description: 'A dashboard user signed in with a recovery code, which also turned their two-factor authentication off.',
    data: userData,
  },
  'user.two_factor.locked': {
    description: 'Two-factor login of a dashboard user is locked after too many wrong codes, until a password reset.',
    data: userData,
  },
} satisfies Record<string, { description: string; data: TProperties }>;

export type EventType = keyof typeof definitions;

export type EventTypeEntry = {
  type: EventType;
  description: string;
  /** JSON Schema of the whole envelope `{ id, type, timestamp, data }`. */
  schema: TSchema;
};

export const EVENT_TYPES: readonly EventType[] = Object.freeze(Object.keys(definitions) as EventType[]);

export const eventTypeCatalog: Readonly<Record<EventType, EventTypeEntry>> = Object.freeze(
  Object.fromEntries(
    EVENT_TYPES.map((type) => {
      const { description, data } = definitions[type];
      return [type, { type, description, schema: envelopeSchema(type, description, data) }];
    }),
  ) as Record<EventType, EventTypeEntry>,
);

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && Object.hasOwn(definitions, value);
}

function envelopeSchema(type: EventType, description: string, data: TProperties): TSchema {
  return Type.Object(
    {
      id: Type.String({ pattern: '^evt_', description: 'Also the webhook-id header: stable across retries and resends.' }),
      type: Type.Literal(type),
      timestamp: Type.String({ format: 'date-time', description: 'When the event happened.' }),
      data: Type.Object(data),
    },
    { title: type, description },
  );
}
