import { HAL_MEDIA_TYPE } from '../legacy/hal.ts';
import { API_VERSIONS } from './api-version.ts';

/**
 * What every operation has in common but no route schema says, added to the generated document so that a
 * client generated from it knows it without each route repeating it: the version headers (`api-version.ts`
 * reads them on every request) and the headers every answer carries (the rate limit's, where it counts); the
 * failures any route can answer with before its handler runs (an unknown version, a body too large or of another
 * type, a request that stalled or whose headers are too large, the rate limit, the store away, a bug); which
 * token each tree takes, and the challenge of its 401s; v1's HAL media type beside plain JSON (`labelHal`);
 * operation ids; and that a query parameter with a default may be left out (the route schemas list such
 * parameters as required, because Ajv fills them in).
 */

type Parameter = { name?: string; in?: string; required?: boolean; schema?: { default?: unknown } };
type Operation = {
  operationId?: string;
  parameters?: Parameter[];
  responses?: Record<string, unknown>;
  tags?: string[];
  security?: Record<string, string[]>[];
};
type Document = { paths?: Record<string, Record<string, Operation>>; components?: Record<string, Record<string, unknown>> };

const versionDescription = `Dated API version (${API_VERSIONS.join(', ')}); missing: the latest. An unknown one is a 400. The response says which version answered`;

const COMPONENTS = {
  parameters: {
    PlugVersion: { name: 'Plug-Version', in: 'header', required: false, schema: { type: 'string', enum: [...API_VERSIONS] }, description: versionDescription },
    ArcadiaVersion: { name: 'Arcadia-Version', in: 'header', required: false, schema: { type: 'string', enum: [...API_VERSIONS] }, description: 'Accepted in place of Plug-Version' },
  },
  headers: {
    PlugVersion: { description: 'The API version that answered', schema: { type: 'string' } },
    RequestId: { description: 'The id of this request in our logs (an X-Request-Id sent with the request, or a new one)', schema: { type: 'string' } },
    RetryAfter: { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } },
    IdempotentReplayed: { description: '"true" when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { type: 'string' } },
    PreferenceApplied: { description: 'The wait applied, e.g. wait=10, when the request sent Prefer: wait=N', schema: { type: 'string' } },
    BearerChallenge: {
      description:
        'RFC 6750 §3: Bearer error="invalid_token" when the bearer token sent is unknown, expired or revoked; Bearer when the request sent none (or a dashboard session cookie that failed)',
      schema: { type: 'string' },
    },
    BearerInvalidRequest: {
      description:
        'RFC 6750 §3.1: Bearer error="invalid_request" when the Authorization header names the Bearer scheme but is not Bearer <token> (PB_MALFORMED_AUTHORIZATION); other 400s carry none',
      schema: { type: 'string' },
    },
    BasicChallenge: {
      description: 'Basic realm="plugboard", charset="UTF-8" when the client sent HTTP Basic credentials (RFC 6749 §5.2); none when it sent its secret in the body',
      schema: { type: 'string' },
    },
    RateLimitLimit: {
      description: 'Requests allowed per minute: RATE_LIMIT_PER_MINUTE per caller, or TOKEN_RATE_LIMIT_PER_MINUTE per IP address where a password or client secret is checked',
      schema: { type: 'integer', minimum: 1 },
    },
    RateLimitRemaining: { description: 'Requests left in the current minute', schema: { type: 'integer', minimum: 0 } },
    RateLimitReset: { description: 'Seconds until the current minute ends and the count starts again', schema: { type: 'integer', minimum: 0 } },
  },
};

/** Access tokens for `/plug`; dashboard sessions (also v1's login tokens) for `/dashboard` and `/v1`. */
export const SECURITY_SCHEMES = {
  bearerAuth: { type: 'http', scheme: 'bearer', description: 'An access token from POST /oauth2/token (the /plug API)' },
  clientCredentials: {
    type: 'oauth2',
    description: 'The same access tokens, for tools that fetch them themselves',
    flows: { clientCredentials: { tokenUrl: '/oauth2/token', scopes: {} } },
  },
  clientBasic: { type: 'http', scheme: 'basic', description: 'client_id and client_secret as HTTP Basic credentials (POST /oauth2/token)' },
  sessionBearer: { type: 'http', scheme: 'bearer', description: 'A session token (pbd_…) from POST /dashboard/login or POST /v1/auth/login' },
  sessionCookie: { type: 'apiKey', in: 'cookie', name: 'plugboard_session', description: "The browser dashboard's session cookie" },
  metricsBearer: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, where the operator set one; without it /metrics is open' },
};

/**
 * Fastify reads a body sent with any of these methods, whether or not the route declares one, and refuses it
 * (413, 415) before `refuseBodyWhereNoneIsDeclared` can say the route takes none; it never reads one sent with GET.
 */
const BODY_READING_METHODS = new Set(['post', 'put', 'patch', 'delete']);

/** What @fastify/rate-limit adds to every answer of a route it limits, once it has counted the request. */
const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': { $ref: '#/components/headers/RateLimitLimit' },
  'X-RateLimit-Remaining': { $ref: '#/components/headers/RateLimitRemaining' },
  'X-RateLimit-Reset': { $ref: '#/components/headers/RateLimitReset' },
};

/** A status added where a route does not declare it: when it applies, and its shared response's name. */
interface CommonFailure {
  status: string;
  name: string;
  description: string;
  when: (operation: Operation, method: string) => boolean;
  retryAfter?: boolean;
  /** Answered before the rate limit counts the request, so never with its headers. */
  isBeforeRateLimit?: boolean;
}

const COMMON_FAILURES: CommonFailure[] = [
  { status: '400', name: 'BadRequest', description: 'Invalid input, or an unknown Plug-Version', when: () => true },
  { status: '413', name: 'PayloadTooLarge', description: 'The body is larger than BODY_LIMIT_BYTES', when: (_operation, method) => BODY_READING_METHODS.has(method) },
  {
    status: '415',
    name: 'UnsupportedMediaType',
    description: 'The body is not JSON (nor a form, where one is accepted)',
    when: (_operation, method) => BODY_READING_METHODS.has(method),
  },
  // Answered by Node's parser on the raw socket (error-envelope.ts, clientErrorHandler), whatever the route.
  {
    status: '408',
    name: 'RequestTimeout',
    description: 'The request did not arrive in full within REQUEST_TIMEOUT_MS',
    when: () => true,
    isBeforeRateLimit: true,
  },
  { status: '431', name: 'HeadersTooLarge', description: 'The request headers are too large', when: () => true, isBeforeRateLimit: true },
  { status: '429', name: 'TooManyRequests', description: 'Rate limit reached', when: (operation) => !isOperations(operation), retryAfter: true },
  // Refused by redis-gate.ts before the limit, which could not count it anyway (its counters are in Redis).
  {
    status: '503',
    name: 'ServiceUnavailable',
    description: 'The store is unreachable for now',
    when: (operation) => !isOperations(operation),
    retryAfter: true,
    isBeforeRateLimit: true,
  },
  // The route's own schema cannot say it: the workers' operations listener serves the same route without the shared schemas.
  {
    status: '401',
    name: 'MetricsUnauthorized',
    description: 'METRICS_TOKEN is set, and the request did not send it as its bearer token',
    when: (operation) => offersMetricsToken(operation),
    isBeforeRateLimit: true,
  },
  { status: '500', name: 'InternalServerError', description: 'A fault on our side; the body never holds internals', when: () => true },
];

/** Health and metrics answer without Redis and without a rate limit. */
function isOperations(operation: Operation): boolean {
  return operation.tags?.includes('operations') ?? false;
}

/**
 * Whether every way to call `operation` needs a token: an authentication hook, which runs before the rate limit
 * counts the request, refuses one without a valid token.
 */
function needsToken(operation: Operation): boolean {
  const security = operation.security ?? [];
  return security.length > 0 && security.every((requirement) => Object.keys(requirement).length > 0);
}

function offersMetricsToken(operation: Operation): boolean {
  return operation.security?.some((requirement) => 'metricsBearer' in requirement) ?? false;
}

/** Whether `operation` reads a bearer token (bearer-auth.ts): where one is needed, and `/metrics` once METRICS_TOKEN is set. */
function readsBearerToken(operation: Operation): boolean {
  return needsToken(operation) || offersMetricsToken(operation);
}

/**
 * The challenge an answer of `operation` with `status` carries: a 401's is Bearer where a bearer token is read,
 * Basic on the token route; where a bearer token is read, a 400 may be a malformed one's invalid_request.
 */
function challengeOf(operation: Operation, status: string): Record<string, unknown> {
  if (status === '400') return readsBearerToken(operation) ? { 'WWW-Authenticate': { $ref: '#/components/headers/BearerInvalidRequest' } } : {};
  if (status !== '401') return {};
  if (readsBearerToken(operation)) return { 'WWW-Authenticate': { $ref: '#/components/headers/BearerChallenge' } };
  if (operation.security?.some((requirement) => 'clientBasic' in requirement)) return { 'WWW-Authenticate': { $ref: '#/components/headers/BasicChallenge' } };
  return {};
}

/** A shared failure response, in the current API's error shape or in v1's (`prefix` V1). */
function failureResponse({ description, retryAfter }: CommonFailure, prefix: string, withRateLimit: boolean, challenge: Record<string, unknown>) {
  return {
    description,
    headers: {
      'Plug-Version': { $ref: '#/components/headers/PlugVersion' },
      'X-Request-Id': { $ref: '#/components/headers/RequestId' },
      ...(retryAfter ? { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : {}),
      ...(withRateLimit ? RATE_LIMIT_HEADERS : {}),
      ...challenge,
    },
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${prefix}Error` } } },
  };
}

export function completeOperations(document: Document): Document {
  const sharedResponses: Record<string, unknown> = {};
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    const prefix = path.startsWith('/v1/') ? 'V1' : '';
    for (const [method, operation] of Object.entries(item)) {
      operation.operationId ??= operationIdOf(method, path);
      operation.security = securityOf(path, operation.security);
      const isRateLimited = !isOperations(operation);
      for (const parameter of operation.parameters ?? []) {
        if (parameter.in === 'query' && parameter.schema?.default !== undefined) parameter.required = false;
      }
      const headerNames = new Set((operation.parameters ?? []).map((parameter) => parameter.name?.toLowerCase()));
      operation.parameters = [...(operation.parameters ?? []), { $ref: '#/components/parameters/PlugVersion' }, { $ref: '#/components/parameters/ArcadiaVersion' }] as Parameter[];
      const responses = (operation.responses ??= {});
      for (const [status, response] of Object.entries(responses) as [string, { $ref?: string; headers?: Record<string, unknown>; content?: Record<string, unknown> }][]) {
        if (response.$ref !== undefined) continue;
        const isSuccess = status.startsWith('2');
        const json = response.content?.['application/json'];
        if (isSuccess && json !== undefined && path.startsWith('/v1/utility/')) response.content = { ...response.content, [HAL_MEDIA_TYPE]: json };
        response.headers = {
          ...response.headers,
          'Plug-Version': { $ref: '#/components/headers/PlugVersion' },
          'X-Request-Id': { $ref: '#/components/headers/RequestId' },
          ...(status === '429' ? { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : {}),
          ...challengeOf(operation, status),
          ...(isRateLimited && !(status === '401' && needsToken(operation)) ? RATE_LIMIT_HEADERS : {}),
          ...(isSuccess && headerNames.has('idempotency-key') ? { 'Idempotent-Replayed': { $ref: '#/components/headers/IdempotentReplayed' } } : {}),
          ...(isSuccess && headerNames.has('prefer') ? { 'Preference-Applied': { $ref: '#/components/headers/PreferenceApplied' } } : {}),
        };
      }
      for (const failure of COMMON_FAILURES) {
        if (responses[failure.status] !== undefined || !failure.when(operation, method)) continue;
        const withRateLimit = isRateLimited && !failure.isBeforeRateLimit;
        // Health and metrics fail like the rest, but without the rate limit's headers.
        const challenge = challengeOf(operation, failure.status);
        const name = `${prefix}${failure.name}${withRateLimit || failure.isBeforeRateLimit ? '' : 'WithoutRateLimit'}${Object.keys(challenge).length > 0 ? 'WithChallenge' : ''}`;
        sharedResponses[name] ??= failureResponse(failure, prefix, withRateLimit, challenge);
        responses[failure.status] = { $ref: `#/components/responses/${name}` };
      }
    }
  }
  document.components = { ...document.components, ...COMPONENTS, responses: sharedResponses };
  return document;
}

/** `POST /plug/credentials/{id}/refresh` → `postPlugCredentialsIdRefresh`: stable, and unique as paths are. */
function operationIdOf(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method + words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('');
}

/** Which credentials a tree takes; public operations say so with an empty list. */
function securityOf(path: string, declared: Operation['security']): Operation['security'] {
  if (path === '/oauth2/token') return [{}, { clientBasic: [] }];
  // Open unless the operator set METRICS_TOKEN: the document is the same for every deployment.
  if (path === '/metrics') return [{}, { metricsBearer: [] }];
  if (declared === undefined || declared.length === 0) return [];
  if (path.startsWith('/dashboard/')) return [{ sessionBearer: [] }, { sessionCookie: [] }];
  if (path.startsWith('/v1/')) return [{ sessionBearer: [] }];
  return [{ bearerAuth: [] }, { clientCredentials: [] }];
}
