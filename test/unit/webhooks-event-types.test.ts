import t from 'tap';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { EVENT_TYPES, eventTypeCatalog, isEventType, type EventType } from '../../src/webhooks/event-types.ts';

// Stands in for the real credential schema, which lives with the credential routes.
const context = { Credential: Type.Object({ id: Type.String({ pattern: '^crd_' }) }) };

const specTypes = [
  'credential.created',
  'credential.status_changed',
  'credential.connected',
  'credential.mfa.method_required',
  'credential.mfa.code_required',
  'credential.mfa.code_rejected',
  'credential.mfa.timed_out',
  'credential.mfa.session_expiring',
  'credential.mfa.refresh_required',
  'credential.disabled',
  'credential.deleted',
  'webhook.test',
];
const operationalTypes = ['webhook.endpoint_disabled'];
const auditTypes = ['user.two_factor.enabled', 'user.two_factor.disabled', 'user.two_factor.recovery_code_used', 'user.two_factor.locked'];

const credential = { id: 'crd_01hq3v9xk2m4n6p8r0s2t4v6w8' };
const user = { id: 'usr_01hq3v9xk2m4n6p8r0s2t4v6w8', email: 'ada@example.com' };
const sampleData: Record<EventType, Record<string, unknown>> = {
  'credential.created': { credential },
  'credential.status_changed': {
    credential,
    previous: { status: 'CONNECTION_IN_PROGRESS', statusDetail: 'DATA_EXTRACTION_IN_PROGRESS' },
  },
  'credential.connected': { credential },
  'credential.mfa.method_required': { credential },
  'credential.mfa.code_required': { credential, expiresAt: '2026-11-01T10:10:00.000Z' },
  'credential.mfa.code_rejected': { credential, attemptsRemaining: 2 },
  'credential.mfa.timed_out': { credential, challengeId: 'mfa_01hq3v9xk2m4n6p8r0s2t4v6w8' },
  'credential.mfa.session_expiring': { credential, expiresAt: '2026-11-04T10:00:00.000Z' },
  'credential.mfa.refresh_required': { credential, reason: 'REVOKED' },
  'credential.disabled': { credential },
  'credential.deleted': { credential },
  'webhook.test': { endpointId: 'whe_01hq3v9xk2m4n6p8r0s2t4v6w8', message: 'Test event from Plugboard' },
  'webhook.endpoint_disabled': { endpointId: 'whe_01hq3v9xk2m4n6p8r0s2t4v6w8', disabledReason: 'The endpoint answered 410 Gone' },
  'user.two_factor.enabled': { user },
  'user.two_factor.disabled': { user },
  'user.two_factor.recovery_code_used': { user },
  'user.two_factor.locked': { user },
};

function envelope(type: EventType, data: Record<string, unknown> = sampleData[type]) {
  return { id: 'evt_01hq3v9xk2m4n6p8r0s2t4v6w8', type, timestamp: '2026-11-01T10:00:00.000Z', data };
}
const isValid = (type: EventType, value: unknown) => Value.Check(context, eventTypeCatalog[type].schema, value);

t.test('the catalog holds exactly the SPEC §5 types, the endpoint-disabled notice and the dashboard audit types', async (t) => {
  t.same([...EVENT_TYPES].sort(), [...specTypes, ...operationalTypes, ...auditTypes].sort());
  t.same(Object.keys(eventTypeCatalog).sort(), [...EVENT_TYPES].sort());
  t.ok(Object.isFrozen(EVENT_TYPES));
  for (const type of EVENT_TYPES) {
    const entry = eventTypeCatalog[type];
    t.equal(entry.type, type);
    t.match(entry.description, /\w{3,}.*\.$/, `${type} has a description`);
    t.match(entry.schema, { title: type, description: entry.description }, `${type}: the schema is self-describing`);
  }
});

t.test('isEventType', async (t) => {
  for (const type of EVENT_TYPES) t.equal(isEventType(type), true, type);
  for (const value of ['credential', 'credential.mfa', 'CREDENTIAL.CREATED', 'toString', 'constructor', '', 42, null, undefined]) {
    t.equal(isEventType(value), false, String(value));
  }
});

t.test('every schema accepts a well-formed envelope of its type', async (t) => {
  for (const type of EVENT_TYPES) t.ok(isValid(type, envelope(type)), type);
});

t.test('every schema rejects a malformed envelope', async (t) => {
  for (const type of EVENT_TYPES) {
    const good = envelope(type);
    const other = type === 'credential.created' ? 'credential.deleted' : 'credential.created';
    t.notOk(isValid(type, { ...good, type: other }), `${type}: another type`);
    t.notOk(isValid(type, { ...good, id: 'crd_1' }), `${type}: an id without evt_`);
    t.notOk(isValid(type, { ...good, timestamp: 'yesterday' }), `${type}: a timestamp that is not ISO-8601`);
    t.notOk(isValid(type, { ...good, data: {} }), `${type}: empty data`);
  }
});

t.test('credential events refer to the shared Credential schema', async (t) => {
  for (const type of EVENT_TYPES.filter((type) => type.startsWith('credential.'))) {
    t.notOk(isValid(type, envelope(type, { ...sampleData[type], credential: { id: 42 } })), `${type} validates data.credential`);
    t.notOk(Value.Check(eventTypeCatalog[type].schema, envelope(type)), `${type} cannot validate without the Credential schema`);
  }
  t.match(JSON.stringify(eventTypeCatalog['credential.created'].schema), '"credential":{"$ref":"Credential"}');
});

t.test('type-specific fields are required and typed', async (t) => {
  const without = (type: EventType, field: string) => {
    const { [field]: _dropped, ...rest } = sampleData[type];
    return envelope(type, rest);
  };
  t.notOk(isValid('credential.status_changed', without('credential.status_changed', 'previous')));
  t.notOk(isValid('credential.status_changed', envelope('credential.status_changed', { credential, previous: { status: 'CONNECTION_SUCCESS' } })));
  t.notOk(isValid('credential.mfa.code_required', without('credential.mfa.code_required', 'expiresAt')));
  t.notOk(isValid('credential.mfa.session_expiring', envelope('credential.mfa.session_expiring', { credential, expiresAt: 'soon' })));
  t.notOk(isValid('credential.mfa.code_rejected', without('credential.mfa.code_rejected', 'attemptsRemaining')));
  t.notOk(isValid('credential.mfa.code_rejected', envelope('credential.mfa.code_rejected', { credential, attemptsRemaining: -1 })));
  t.notOk(isValid('credential.mfa.code_rejected', envelope('credential.mfa.code_rejected', { credential, attemptsRemaining: 1.5 })));
  t.ok(isValid('credential.mfa.code_rejected', envelope('credential.mfa.code_rejected', { credential, attemptsRemaining: 0 })));
  t.notOk(isValid('webhook.test', without('webhook.test', 'endpointId')));
  t.notOk(isValid('user.two_factor.locked', envelope('user.two_factor.locked', { user: { id: user.id, email: 'not-an-email' } })));
  t.ok(isValid('credential.connected', envelope('credential.connected', { credential, addedLater: true })), 'unknown extra fields are tolerated');
});
