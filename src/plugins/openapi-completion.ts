import { API_VERSIONS } from './api-version.ts';

/**
 * What every operation has in common but no route schema says: the version headers (`api-version.ts` reads
 * them on every request) and the failures any route can answer with before its handler runs (an unknown
 * version, a body too large or of another type, the rate limit, the store away). Added to the generated
 * document, so that a client generated from it knows them without each route repeating them.
 */

type Operation = { parameters?: unknown[]; requestBody?: unknown; responses?: Record<string, unknown>; tags?: string[] };
type Document = { paths?: Record<string, Record<string, Operation>>; components?: Record<string, Record<string, unknown>> };

const versionDescription = `Dated API version (${API_VERSIONS.join(', ')}); missing: the latest. An unknown one is a 400. The response says which version answered`;

const COMPONENTS = {
  parameters: {
    PlugVersion: { name: 'Plug-Version', in: 'header', required: false, schema: { type: 'string', enum: [...API_VERSIONS] }, description: versionDescription },
    ArcadiaVersion: { name: 'Arcadia-Version', in: 'header', required: false, schema: { type: 'string', enum: [...API_VERSIONS] }, description: 'Accepted in place of Plug-Version' },
  },
  headers: {
    PlugVersion: { description: 'The API version that answered', schema: { type: 'string' } },
    RetryAfter: { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } },
  },
};

// The statuses added where a route does not declare them: when they apply, and their shared response's name.
const COMMON_FAILURES: { status: string; name: string; description: string; when: (operation: Operation) => boolean; retryAfter?: boolean }[] = [
  { status: '400', name: 'BadRequest', description: 'Invalid input, or an unknown Plug-Version', when: () => true },
  { status: '413', name: 'PayloadTooLarge', description: 'The body is larger than BODY_LIMIT_BYTES', when: (operation) => operation.requestBody !== undefined },
  {
    status: '415',
    name: 'UnsupportedMediaType',
    description: 'The body is not JSON (nor a form, where one is accepted)',
    when: (operation) => operation.requestBody !== undefined,
  },
  { status: '429', name: 'TooManyRequests', description: 'Rate limit reached', when: (operation) => !isOperations(operation), retryAfter: true },
  { status: '503', name: 'ServiceUnavailable', description: 'The store is unreachable for now', when: (operation) => !isOperations(operation), retryAfter: true },
];

/** Health and metrics answer without Redis and without a rate limit. */
function isOperations(operation: Operation): boolean {
  return operation.tags?.includes('operations') ?? false;
}

/** The shared failure responses, in the current API's error shape and in v1's. */
function failureResponses(): Record<string, unknown> {
  return Object.fromEntries(
    COMMON_FAILURES.flatMap(({ name, description, retryAfter }) =>
      [
        ['', 'Error'],
        ['V1', 'V1Error'],
      ].map(([prefix, schema]) => [
        `${prefix}${name}`,
        {
          description,
          headers: {
            'Plug-Version': { $ref: '#/components/headers/PlugVersion' },
            ...(retryAfter ? { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } : {}),
          },
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
        },
      ]),
    ),
  );
}

export function completeOperations(document: Document): Document {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    const prefix = path.startsWith('/v1/') ? 'V1' : '';
    for (const operation of Object.values(item)) {
      operation.parameters = [...(operation.parameters ?? []), { $ref: '#/components/parameters/PlugVersion' }, { $ref: '#/components/parameters/ArcadiaVersion' }];
      const responses = (operation.responses ??= {});
      for (const [status, response] of Object.entries(responses) as [string, { headers?: Record<string, unknown> }][]) {
        if (status.startsWith('2')) response.headers = { ...response.headers, 'Plug-Version': { $ref: '#/components/headers/PlugVersion' } };
      }
      for (const failure of COMMON_FAILURES) {
        if (responses[failure.status] === undefined && failure.when(operation)) responses[failure.status] = { $ref: `#/components/responses/${prefix}${failure.name}` };
      }
    }
  }
  document.components = { ...document.components, ...COMPONENTS, responses: failureResponses() };
  return document;
}
