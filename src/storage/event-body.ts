import { deflateRawSync, inflateRawSync, type ZlibOptions } from 'node:zlib';

/**
 * How an event's envelope is stored: deflated against a preset dictionary of typical envelopes.
 *
 * Events are most of Redis's memory: every credential change writes one to three, each carrying the whole
 * credential (SPEC §5), kept 35 days. One envelope alone deflates poorly (≈ 1,030 → 580 bytes: too short
 * for deflate to find its own repeats), but nearly all of it — field names, enums, status messages — is
 * the same from one event to the next; against a dictionary of that it comes to ≈ 160 bytes, mostly the
 * random ids and timestamps. Deflating costs ≈ 25 µs per event, inflating ≈ 10 µs per delivery or read.
 *
 * A stored body starts with its format byte. The dictionary of a format is frozen the day it ships, since
 * the events written with it are read for the whole retention period (a test pins its hash): a better
 * dictionary is a new format byte, with the old one kept for reading. Bodies starting with `{` are plain
 * JSON, written before compression (or by hand, while debugging); they are read as they are.
 */

/** Format 1: raw deflate against DICTIONARY_V1. */
const DEFLATE_V1 = 0x01;
const OPEN_BRACE = 0x7b;

/**
 * What events usually say, rarest first: deflate codes a match by its distance back, so the text that
 * repeats most (a credential's view) sits at the end, closest to the body. The ids are prefixes only, the
 * random part of an id never repeats.
 */
export const DICTIONARY_V1 = Buffer.from(
  [
    '{"id":"evt_","type":"user.two_factor.enabled","timestamp":"","data":{"user":{"id":"usr_","email":"@example.com"}}}',
    '{"id":"evt_","type":"user.two_factor.disabled"}{"id":"evt_","type":"user.two_factor.recovery_code_used"}{"id":"evt_","type":"user.two_factor.locked"}',
    '{"id":"evt_","type":"webhook.test","timestamp":"","data":{"endpointId":"whe_","message":"A test event sent on request."}}',
    '"credential.disabled""credential.deleted""credential.mfa.session_expiring""credential.mfa.refresh_required""credential.mfa.code_rejected"',
    '"PROVIDER_WEBSITE_INACCESSIBLE","statusMessage":"The provider website cannot be reached; retrying."',
    '"INVALID_CREDENTIALS","statusMessage":"The provider rejected the username or password."',
    '"OTHER_ACCESS_LIMITATION","statusMessage":"The provider refuses access to this account."',
    '"MULTI_FACTOR_AUTHENTICATION_CODE_INVALID","statusMessage":"Too many wrong verification codes; refresh to start again."',
    '"MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED","statusMessage":"The provider session ended; refresh to log in again with a new code."',
    '"MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED","statusMessage":"Checking the verification code with the provider."',
    '{"id":"evt_","type":"credential.connected","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_SUCCESS","statusDetail":"LOGIN_AND_DATA_DISCOVERY_SUCCESS","statusMessage":"Connected.","isCustomerActionRequired":false,',
    '"isAccessible":true,"isActive":true,"mfa":null,"mfaSession":{"obtainedAt":"","expiresAt":""},"lastSyncedAt":"","nextSyncAt":"",',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system"}}}',
    '{"id":"evt_","type":"credential.mfa.code_required","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED",',
    '"statusMessage":"The provider sent a verification code; submit it before mfa.expiresAt.","isCustomerActionRequired":true,',
    '"isAccessible":false,"isActive":true,"mfa":{"challengeId":"mfa_","stage":"CODE_ENTRY","availableMethods":[{"id":"mth_","type":"APP","destination":null}],',
    '"selectedMethodId":"mth_","codeLength":6,"expiresAt":"","attemptsRemaining":3},"mfaSession":null,"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system"},"expiresAt":""}}',
    '{"id":"evt_","type":"credential.mfa.method_required","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED",',
    '"statusMessage":"The provider asks where to send a verification code.","isCustomerActionRequired":true,"isAccessible":false,"isActive":true,',
    '"mfa":{"challengeId":"mfa_","stage":"METHOD_SELECTION","availableMethods":[{"id":"mth_","type":"SMS","destination":"***-***-"},',
    '{"id":"mth_","type":"CALL","destination":"***-***-"},{"id":"mth_","type":"EMAIL","destination":"***@"}],"selectedMethodId":null,',
    '"codeLength":null,"expiresAt":"","attemptsRemaining":3},"mfaSession":null,"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system"}}}',
    '{"id":"evt_","type":"credential.mfa.timed_out","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_FAILURE","statusDetail":"MULTI_FACTOR_AUTHENTICATION_TIMED_OUT",',
    '"statusMessage":"No verification code arrived in time; refresh to start again.","isCustomerActionRequired":true,"isAccessible":false,',
    '"isActive":true,"mfa":null,"mfaSession":null,"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system"}}}',
    '{"id":"evt_","type":"credential.status_changed","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"DATA_EXTRACTION_IN_PROGRESS","statusMessage":"Logging in to the provider.",',
    '"isCustomerActionRequired":false,"isAccessible":false,"isActive":true,"mfa":null,"mfaSession":null,"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"key_"},',
    '"previous":{"status":"CONNECTION_IN_PROGRESS","statusDetail":"MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED"}}}',
    '"prv_sandboxgasxxxxxxxxxxxxxxxx""prv_sandboxenergyukxxxxxxxxxxx"',
    '{"id":"evt_","type":"credential.created","timestamp":"","data":{"credential":{"id":"crd_","providerId":"prv_sandboxelectricxxxxxxxxxxx","username":"",',
    '"correlationId":null,"status":"CONNECTION_IN_PROGRESS","statusDetail":"DATA_EXTRACTION_IN_PROGRESS","statusMessage":"Logging in to the provider.",',
    '"isCustomerActionRequired":false,"isAccessible":false,"isActive":true,"mfa":null,"mfaSession":null,"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"key_"}}}',
  ].join(''),
);

const V1_OPTIONS: ZlibOptions = {
  dictionary: DICTIONARY_V1,
  // An 8 KiB window holds the dictionary and the body together; the default 32 KiB window and memLevel
  // cost more to set up for every event than the deflating itself.
  windowBits: 13,
  memLevel: 2,
};

export function packEnvelope(envelope: string): Buffer {
  const deflated = deflateRawSync(envelope, V1_OPTIONS);
  const packed = Buffer.allocUnsafe(deflated.length + 1);
  packed[0] = DEFLATE_V1;
  deflated.copy(packed, 1);
  return packed;
}

/** The envelope's JSON text, exactly as it was packed (the bytes a webhook signs and sends). */
export function unpackEnvelope(body: Buffer): string {
  if (body[0] === DEFLATE_V1) return inflateRawSync(body.subarray(1), V1_OPTIONS).toString('utf8');
  if (body[0] === OPEN_BRACE) return body.toString('utf8');
  throw new Error(`unknown event body format ${String(body[0])}`);
}
