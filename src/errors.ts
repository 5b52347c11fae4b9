/**
 * Every error the API can answer with, declared once: a stable code (sent as `details.errorId`),
 * the envelope `type`, the HTTP status and the default message. Services throw these; the error
 * handler plugin turns them into SPEC §1's envelope. Nothing else decides a status code.
 *
 * SPEC §1 names a type per status; the statuses it does not name get a type of their own in the same
 * style, so `type` always tells the status: `requestTimeout` (408, a body that stopped arriving),
 * `headersTooLarge` (431) and `serviceUnavailable` (503, Redis or the SMS gateway away; retry later).
 */

export const ERROR_TYPES = [
  'invalidParameter',
  'unauthorized',
  'forbidden',
  'notFound',
  'conflict',
  'payloadTooLarge',
  'unsupportedMediaType',
  'tooManyRequests',
  'internalServerError',
  'requestTimeout',
  'headersTooLarge',
  'serviceUnavailable',
] as const;

export type ErrorType = (typeof ERROR_TYPES)[number];

interface ErrorDefinition {
  code: string;
  type: ErrorType;
  status: number;
  message: string;
}

export interface ErrorOptions {
  message?: string;
  param?: string;
  value?: unknown;
  /** Extra headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class PlugError extends Error {
  readonly code: string;
  readonly type: ErrorType;
  readonly statusCode: number;
  readonly param: string | undefined;
  readonly value: unknown;
  readonly headers: Record<string, string>;

  constructor(definition: ErrorDefinition, options: ErrorOptions = {}) {
    super(options.message ?? definition.message, { cause: options.cause });
    this.name = 'PlugError';
    this.code = definition.code;
    this.type = definition.type;
    this.statusCode = definition.status;
    this.param = options.param;
    this.value = options.value;
    this.headers = options.headers ?? {};
  }

  /** The same error with `headers` added: what only the HTTP layer knows, e.g. the challenge of a 401. */
  withHeaders(headers: Record<string, string>): PlugError {
    const definition = { code: this.code, type: this.type, status: this.statusCode, message: this.message };
    return new PlugError(definition, { param: this.param, value: this.value, headers: { ...this.headers, ...headers }, cause: this.cause });
  }
}

function define(code: string, type: ErrorType, status: number, message: string) {
  const definition: ErrorDefinition = { code, type, status, message };
  const make = (options?: ErrorOptions) => new PlugError(definition, options);
  return Object.assign(make, { definition });
}

export const errors = {
  invalidParameter: define('PB_INVALID_PARAMETER', 'invalidParameter', 400, 'A request parameter is invalid'),
  malformedJson: define('PB_MALFORMED_JSON', 'invalidParameter', 400, 'The request body is not valid JSON'),
  emptyJsonBody: define('PB_EMPTY_JSON_BODY', 'invalidParameter', 400, 'The request body is empty but its content type is JSON'),
  unknownVersion: define('PB_UNKNOWN_VERSION', 'invalidParameter', 400, 'Unknown Plug-Version'),
  malformedAuthorization: define(
    'PB_MALFORMED_AUTHORIZATION',
    'invalidParameter',
    400,
    'The Authorization header is malformed: send Authorization: Bearer <token>, with one token of letters, digits and -._~+/ (RFC 6750 §2.1)',
  ),
  unauthorized: define('PB_UNAUTHORIZED', 'unauthorized', 401, 'Missing or invalid credentials'),
  invalidClient: define('PB_INVALID_CLIENT', 'unauthorized', 401, 'Unknown client or wrong client secret'),
  tokenExpired: define('PB_TOKEN_INVALID', 'unauthorized', 401, 'The access token is invalid, expired or revoked'),
  forbidden: define('PB_FORBIDDEN', 'forbidden', 403, 'You are not allowed to do this'),
  loginFailed: define('PB_LOGIN_FAILED', 'unauthorized', 401, 'Wrong email or password'),
  sessionInvalid: define('PB_SESSION_INVALID', 'unauthorized', 401, 'The dashboard session is invalid, expired or ended; log in again'),
  passwordIncorrect: define('PB_PASSWORD_INCORRECT', 'forbidden', 403, 'The password is incorrect'),
  loginChallengeInvalid: define('PB_LOGIN_CHALLENGE_INVALID', 'unauthorized', 401, 'The login challenge is unknown, expired or ended; log in again'),
  twoFactorCodeInvalid: define('PB_TWO_FACTOR_CODE_INVALID', 'unauthorized', 401, 'The code is wrong, expired or already used'),
  // Signed in, like a wrong password re-check: a 401 would read as "the session ended" to a client.
  enrollmentCodeInvalid: define('PB_ENROLLMENT_CODE_INVALID', 'forbidden', 403, 'The code is wrong or expired'),
  twoFactorLocked: define(
    'PB_TWO_FACTOR_LOCKED',
    'forbidden',
    403,
    'Two-factor login is locked after too many wrong codes; reset your password to unlock it',
  ),
  twoFactorUnsupported: define(
    'PB_TWO_FACTOR_UNSUPPORTED',
    'forbidden',
    403,
    'This user has two-factor authentication on, which the v1 API cannot ask for. Use the current API with an ' +
      'organization API key instead: create one under /dashboard/apiKeys and get a token from POST /oauth2/token.',
  ),
  connectLinkInvalid: define('PB_CONNECT_LINK_INVALID', 'unauthorized', 401, 'This link has expired or was revoked; ask for a new one'),
  crossOriginRequest: define('PB_CROSS_ORIGIN_REQUEST', 'forbidden', 403, 'This request must come from a Plugboard page (its Origin is missing or foreign)'),
  notFound: define('PB_NOT_FOUND', 'notFound', 404, 'Resource not found'),
  routeNotFound: define('PB_ROUTE_NOT_FOUND', 'notFound', 404, 'No such route'),
  conflict: define('PB_CONFLICT', 'conflict', 409, 'The request conflicts with the current state'),
  idempotencyMismatch: define(
    'PB_IDEMPOTENCY_KEY_REUSED',
    'conflict',
    409,
    'This Idempotency-Key was already used with a different request',
  ),
  idempotencyInFlight: define(
    'PB_IDEMPOTENCY_KEY_IN_FLIGHT',
    'conflict',
    409,
    'A request with this Idempotency-Key is still being processed',
  ),
  payloadTooLarge: define('PB_PAYLOAD_TOO_LARGE', 'payloadTooLarge', 413, 'The request body is too large'),
  headersTooLarge: define('PB_HEADERS_TOO_LARGE', 'headersTooLarge', 431, 'The request headers are too large'),
  requestTimeout: define('PB_REQUEST_TIMEOUT', 'requestTimeout', 408, 'The request took too long to arrive'),
  unsupportedMediaType: define('PB_UNSUPPORTED_MEDIA_TYPE', 'unsupportedMediaType', 415, 'Unsupported content type'),
  tooManyRequests: define('PB_TOO_MANY_REQUESTS', 'tooManyRequests', 429, 'Too many requests; retry later'),
  passwordAttemptsExceeded: define(
    'PB_TOO_MANY_WRONG_PASSWORDS',
    'tooManyRequests',
    429,
    'Too many wrong passwords for this account; try again after the time Retry-After gives',
  ),
  internal: define('PB_INTERNAL', 'internalServerError', 500, 'Something went wrong on our side'),
  unavailable: define('PB_UNAVAILABLE', 'serviceUnavailable', 503, 'The service is temporarily unavailable'),
  storeUnavailable: define('PB_STORE_UNAVAILABLE', 'serviceUnavailable', 503, 'The service cannot reach its data store; try again shortly'),
} as const;

/** With `storeUnavailable`: ioredis tries to reconnect every 2 s at most, so a few seconds is a fair wait. */
export const STORE_RETRY_AFTER_HEADERS = { 'Retry-After': '5' };
