/**
 * The preset dictionaries of `packed-json.ts`, one per format. Each is what values of its kind usually
 * say, rarest first: deflate codes a match by its distance back, so the text that repeats most sits at the
 * end, closest to the value. Ids are prefixes only, the random part of an id never repeats.
 *
 * FROZEN: values packed with a dictionary are read for as long as they are kept (events and delivery attempts
 * 35 days, credential records for the credential's life), and `test/unit/packed-json.test.ts` pins each one's hash. A better
 * dictionary is a new format, with the old one kept for reading.
 */

/** What event envelopes usually say. */
export const EVENT_DICTIONARY_V1 = Buffer.from(
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

/** What a credential's stored record usually says (`CredentialRecord`). */
export const CREDENTIAL_DICTIONARY_V1 = Buffer.from(
  [
    '"PROVIDER_WEBSITE_INACCESSIBLE","statusMessage":"The provider website cannot be reached; retrying."',
    '"INVALID_CREDENTIALS","statusMessage":"The provider rejected the username or password."',
    '"OTHER_ACCESS_LIMITATION","statusMessage":"The provider refuses access to this account."',
    '"MULTI_FACTOR_AUTHENTICATION_CODE_INVALID","statusMessage":"Too many wrong verification codes; refresh to start again."',
    '"MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED","statusMessage":"The provider session ended; refresh to log in again with a new code."',
    '"MULTI_FACTOR_AUTHENTICATION_TIMED_OUT","statusMessage":"No verification code arrived in time; refresh to start again."',
    '"MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED","statusMessage":"Checking the verification code with the provider."',
    '"step":{"id":"","kind":"submit_code","requestedAt":""}"step":{"id":"","kind":"choose_method","requestedAt":"","methodId":"mth_","isResubmission":false}',
    '{"id":"crd_","organizationId":"org_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED",',
    '"statusMessage":"The provider sent a verification code; submit it before mfa.expiresAt.","isActive":true,',
    '"mfa":{"challengeId":"mfa_","stage":"CODE_ENTRY","availableMethods":[{"id":"mth_","type":"APP","destination":null,"providerMethodId":""}],',
    '"selectedMethodId":"mth_","codeLength":6,"expiresAt":"","attemptsRemaining":3},"session":null,"step":null,',
    '"lastSyncedAt":null,"nextSyncAt":null,"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system","version":',
    '{"id":"crd_","organizationId":"org_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_SUCCESS","statusDetail":"LOGIN_AND_DATA_DISCOVERY_SUCCESS","statusMessage":"Connected.","isActive":true,"mfa":null,',
    '"session":{"id":"","obtainedAt":"","expiresAt":"","isMfa":true,"warnedAt":null},"step":null,',
    '"lastSyncedAt":"","nextSyncAt":"","createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system","version":',
    '{"id":"crd_","organizationId":"org_","providerId":"prv_","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED",',
    '"statusMessage":"The provider asks where to send a verification code.","isActive":true,',
    '"mfa":{"challengeId":"mfa_","stage":"METHOD_SELECTION","availableMethods":[{"id":"mth_","type":"SMS","destination":"***-***-","providerMethodId":""},',
    '{"id":"mth_","type":"CALL","destination":"***-***-","providerMethodId":""},{"id":"mth_","type":"EMAIL","destination":"***@","providerMethodId":""}],',
    '"selectedMethodId":null,"codeLength":null,"expiresAt":"","attemptsRemaining":3},"session":null,"step":null,',
    '"lastSyncedAt":null,"nextSyncAt":null,"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"system","version":',
    '"prv_sandboxgasxxxxxxxxxxxxxxxx""prv_sandboxenergyukxxxxxxxxxxx"',
    '{"id":"crd_","organizationId":"org_","providerId":"prv_sandboxelectricxxxxxxxxxxx","username":"","correlationId":null,',
    '"status":"CONNECTION_IN_PROGRESS","statusDetail":"DATA_EXTRACTION_IN_PROGRESS","statusMessage":"Logging in to the provider.","isActive":true,',
    '"mfa":null,"session":null,"step":{"id":"","kind":"login","requestedAt":""},"lastSyncedAt":null,"nextSyncAt":null,',
    '"createdAt":"","createdBy":"key_","lastModifiedAt":"","lastModifiedBy":"key_","version":1}',
  ].join(''),
);

/** What a delivery attempt of the event's attempt log usually says (`DeliveryAttempt`). */
export const ATTEMPT_DICTIONARY_V1 = Buffer.from(
  [
    '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>',
    '"error":"ECONNRESET: socket hang up""error":"connect ECONNREFUSED 127.0.0.1:""error":"refused: "',
    '"error":"ETIMEDOUT: no complete answer within 15000 ms"',
    '{"id":"att_","eventId":"evt_","endpointId":"whe_","url":"https://","attemptNumber":2,"trigger":"recover",',
    '"attemptedAt":"","outcome":"failed","responseStatus":503,"latencyMs":,"responseBody":"Service Unavailable",',
    '"isResponseBodyTruncated":false,"error":null,"nextAttemptAt":""}',
    '{"id":"att_","eventId":"evt_","endpointId":"whe_","url":"https://","attemptNumber":1,"trigger":"resend",',
    '"attemptedAt":"","outcome":"failed","responseStatus":500,"latencyMs":,"responseBody":"Internal Server Error",',
    '"isResponseBodyTruncated":false,"error":null,"nextAttemptAt":""}',
    '{"received":true}{"ok":true}OK',
    '{"id":"att_","eventId":"evt_","endpointId":"whe_","url":"https://","attemptNumber":1,"trigger":"event",',
    '"attemptedAt":"","outcome":"succeeded","responseStatus":204,"latencyMs":,"responseBody":"",',
    '"isResponseBodyTruncated":false,"error":null,"nextAttemptAt":null}',
    '{"id":"att_","eventId":"evt_","endpointId":"whe_","url":"https://","attemptNumber":1,"trigger":"event",',
    '"attemptedAt":"","outcome":"succeeded","responseStatus":200,"latencyMs":,"responseBody":"",',
    '"isResponseBodyTruncated":false,"error":null,"nextAttemptAt":null}',
  ].join(''),
);
