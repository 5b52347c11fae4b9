import { validate } from '@readme/openapi-parser';
import { Redis } from 'ioredis';
import t from 'tap';
import type { InjectOptions } from 'fastify';
import { Type } from 'typebox';
import { parse } from 'yaml';
import { generateOpenApiDocument, toYaml } from '../../src/cli/openapi.ts';
import { build, createOrganization } from '../helper.ts';

t.test('the generated document is valid OpenAPI 3.1 with stable component names', async (t) => {
  // A client that would fail any command: generation must not need Redis at all.
  const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
  const document = await generateOpenApiDocument(redis);
  t.equal(redis.status, 'end', 'the lazy client was never connected (closed from "wait")');

  t.equal(document.openapi, '3.1.0');
  const result = await validate(structuredClone(document) as never);
  t.ok(result.valid, result.valid ? 'valid' : JSON.stringify(result.errors, null, 2));

  const components = (document.components as { schemas: Record<string, unknown> }).schemas;
  for (const name of ['Error', 'AccessToken', 'Organization']) t.ok(components[name], `components.schemas.${name}`);
  t.notOk(
    Object.keys(components).some((name) => name.startsWith('def-')),
    'every component has a chosen name, not a generated one',
  );

  const yaml = toYaml(document);
  t.same(parse(yaml), document, 'YAML round-trips');
  t.equal(toYaml(await generateOpenApiDocument()), yaml, 'two runs give byte-identical files');
});

t.test('idempotent routes document the Idempotency-Key header', async (t) => {
  const app = await build(t, {
    routes: (app) => {
      app.post('/test-idempotent', { config: { idempotent: true }, schema: { summary: 'test', response: { 201: Type.Object({}) } } }, async () => ({}));
    },
  });
  type Operation = { parameters: { in: string; name: string }[]; responses: Record<string, unknown> };
  const operation = (app.swagger() as { paths: Record<string, { post: Operation }> }).paths['/test-idempotent']!.post;
  t.ok(operation.parameters.some((p) => p.in === 'header' && p.name === 'idempotency-key'));
  t.ok(operation.responses['409'], 'the 409 of a reused key is documented');
});

t.test('every operation documents the version headers and the failures any route can answer with', async (t) => {
  const document = (await generateOpenApiDocument()) as {
    paths: Record<string, Record<string, { parameters?: { $ref?: string }[]; requestBody?: unknown; responses: Record<string, { $ref?: string; headers?: object }>; tags?: string[] }>>;
    components: { responses: Record<string, { content: { 'application/json': { schema: { $ref: string } } } }> };
  };
  const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).map(([method, operation]) => ({ path, method, operation })));
  const errorSchemaOf = (response: { $ref?: string } | undefined) => document.components.responses[response?.$ref?.split('/').at(-1) ?? '']?.content['application/json'].schema.$ref;
  for (const { path, method, operation } of operations) {
    const name = `${method.toUpperCase()} ${path}`;
    const errorSchema = path.startsWith('/v1/') ? '#/components/schemas/V1Error' : '#/components/schemas/Error';
    // Node's parser answers these on the raw socket, before any route is chosen.
    for (const status of ['408', '431']) t.equal(errorSchemaOf(operation.responses[status]), errorSchema, `${name}: ${status}, in its tree's error shape`);
    t.ok(operation.parameters?.some((parameter) => parameter.$ref === '#/components/parameters/PlugVersion'), `${name}: Plug-Version`);
    const success = Object.entries(operation.responses).find(([status]) => status.startsWith('2'));
    t.ok(!success || 'Plug-Version' in (success[1].headers ?? {}), `${name}: the answer's Plug-Version`);
    if (!operation.tags?.includes('operations')) t.ok(operation.responses['429'] && operation.responses['503'], `${name}: 429 and 503`);
  }
  const operationIds = operations.map(({ operation }) => (operation as { operationId?: string }).operationId);
  t.equal(new Set(operationIds).size, operations.length, 'every operation has an id of its own');
  const queryRequired = operations.flatMap(({ path, operation }) =>
    ((operation.parameters ?? []) as { in?: string; name?: string; required?: boolean; schema?: { default?: unknown } }[])
      .filter((parameter) => parameter.in === 'query' && parameter.required && parameter.schema?.default !== undefined)
      .map((parameter) => `${path} ${parameter.name}`),
  );
  t.same(queryRequired, [], 'a query parameter with a default (page, size, limit) may be left out');
  const securityOf = (path: string, method: string) => (document.paths[path]?.[method] as { security?: unknown } | undefined)?.security;
  t.same(securityOf('/plug/credentials', 'get'), [{ bearerAuth: [] }, { clientCredentials: [] }], '/plug: access tokens');
  t.same(securityOf('/dashboard/me', 'get'), [{ sessionBearer: [] }, { sessionCookie: [] }], '/dashboard: sessions');
  t.same(securityOf('/v1/utility/credentials', 'get'), [{ sessionBearer: [] }], '/v1: its login token');
  t.same(securityOf('/oauth2/token', 'post'), [{}, { clientBasic: [] }], 'the token route: the body or HTTP Basic');
  t.same(securityOf('/dashboard/login', 'post'), [], 'logins are public');
  t.same(securityOf('/metrics', 'get'), [{}, { metricsBearer: [] }], '/metrics: METRICS_TOKEN where one is set');
  const tokenBody = (document.paths['/oauth2/token']?.post?.requestBody as { content: object }).content;
  t.same(Object.keys(tokenBody).sort(), ['application/json', 'application/x-www-form-urlencoded']);
  t.equal(errorSchemaOf(document.paths['/v1/auth/login']?.post?.responses['503']), '#/components/schemas/V1Error', 'v1 failures in its own shape');
  t.notOk(Object.keys(document.paths).some((path) => path.length > 1 && path.endsWith('/')), 'no path ends in a slash');
  t.equal(errorSchemaOf(document.paths['/plug/credentials']?.post?.responses['429']), '#/components/schemas/Error');
});

t.test('the rate limit headers are declared on the answers that carry them', async (t) => {
  type Response = { $ref?: string; headers?: Record<string, unknown> };
  const document = (await generateOpenApiDocument()) as {
    paths: Record<string, Record<string, { responses: Record<string, Response>; tags?: string[] }>>;
    components: { responses: Record<string, Response> };
  };
  const headersOf = (response: Response | undefined) => Object.keys((response?.$ref ? document.components.responses[response.$ref.split('/').at(-1)!] : response)?.headers ?? {});
  const rateLimitHeaders = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const name = `${method.toUpperCase()} ${path}`;
      if (operation.tags?.includes('operations')) {
        for (const [status, response] of Object.entries(operation.responses)) t.notOk(headersOf(response).some((header) => header.startsWith('X-RateLimit-')), `${name} ${status}: not limited`);
        continue;
      }
      for (const [status, response] of Object.entries(operation.responses).filter(([status]) => status.startsWith('2') || status === '429')) {
        t.same(rateLimitHeaders.filter((header) => headersOf(response).includes(header)), rateLimitHeaders, `${name} ${status}: the rate limit headers`);
      }
      t.ok(headersOf(operation.responses['429']).includes('Retry-After'), `${name} 429: Retry-After`);
      // Refused before the limit counts the request: on the raw socket, by redis-gate (a route's own 503, the SMS gateway away, comes after).
      for (const status of ['408', '431', '503']) {
        if (operation.responses[status]?.$ref) t.notOk(headersOf(operation.responses[status]).includes('X-RateLimit-Limit'), `${name} ${status}: not counted`);
      }
    }
  }
  t.notOk(headersOf(document.paths['/plug/credentials']?.get?.responses['401']).includes('X-RateLimit-Limit'), 'a token that fails is refused before it counts');
  t.ok(headersOf(document.paths['/oauth2/token']?.post?.responses['401']).includes('X-RateLimit-Limit'), 'a wrong client secret counts');
  t.ok(headersOf(document.paths['/plug/credentials/{id}/refresh']?.post?.responses['415']).includes('X-RateLimit-Limit'), 'a body refused by the parser counts');

  const app = await build(t);
  const org = await createOrganization(app);
  const carries = async (request: InjectOptions) => 'x-ratelimit-limit' in (await app.inject(request)).headers;
  t.notOk(await carries({ url: '/healthz' }), 'health: none');
  t.notOk(await carries({ url: '/metrics' }), 'metrics: none');
  t.ok(await carries({ url: '/plug/credentials', headers: org.headers }), 'a 200');
  t.notOk(await carries({ url: '/plug/credentials', headers: { authorization: 'Bearer not-a-token' } }), 'a 401 for a bad token: none');
  const wrongSecret = { grant_type: 'client_credentials', client_id: org.clientId, client_secret: 'wrong' };
  t.ok(await carries({ method: 'POST', url: '/oauth2/token', payload: wrongSecret }), 'a 401 for a wrong client secret');
  const notJson = { 'content-type': 'application/xml', ...org.headers };
  t.ok(await carries({ method: 'POST', url: '/plug/credentials/crd_aaaaaaaaaaaaaaaaaaaaaaaaaa/refresh', headers: notJson, payload: '<refresh/>' }), 'a 415');
});

t.test('every 401 declares the challenge it carries: Bearer where a token is read, Basic on the token route, none on a login', async (t) => {
  type Response = { $ref?: string; headers?: Record<string, { $ref?: string }> };
  type Operation = { security: Record<string, string[]>[]; responses: Record<string, Response> };
  const document = (await generateOpenApiDocument()) as { paths: Record<string, Record<string, Operation>>; components: { responses: Record<string, Response> } };
  const resolved = (response: Response) => (response.$ref ? document.components.responses[response.$ref.split('/').at(-1)!] : response);
  const tokenSchemes = new Set(['bearerAuth', 'clientCredentials', 'sessionBearer', 'sessionCookie']);
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, { security, responses }] of Object.entries(item)) {
      if (!responses['401']) continue;
      const needsToken = security.length > 0 && security.every((requirement) => Object.keys(requirement).some((scheme) => tokenSchemes.has(scheme)));
      const readsToken = needsToken || path === '/metrics';
      const expected = readsToken ? '#/components/headers/BearerChallenge' : path === '/oauth2/token' ? '#/components/headers/BasicChallenge' : undefined;
      t.equal(resolved(responses['401'])?.headers?.['WWW-Authenticate']?.$ref, expected, `${method.toUpperCase()} ${path}: ${expected ?? 'no challenge'}`);
    }
  }
  t.ok(document.paths['/metrics']?.get?.responses['401'], "/metrics declares the 401 of a scrape without METRICS_TOKEN's token");
});

t.test("where a bearer token is read, the 400 declares the invalid_request challenge of a malformed one; nowhere else", async (t) => {
  type Response = { $ref?: string; headers?: Record<string, { $ref?: string }> };
  type Operation = { security: Record<string, string[]>[]; responses: Record<string, Response> };
  const document = (await generateOpenApiDocument()) as { paths: Record<string, Record<string, Operation>>; components: { responses: Record<string, Response> } };
  const resolved = (response: Response | undefined) => (response?.$ref ? document.components.responses[response.$ref.split('/').at(-1)!] : response);
  const tokenSchemes = new Set(['bearerAuth', 'clientCredentials', 'sessionBearer', 'sessionCookie']);
  let readers = 0;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, { security, responses }] of Object.entries(item)) {
      const readsToken = path === '/metrics' || (security.length > 0 && security.every((requirement) => Object.keys(requirement).some((scheme) => tokenSchemes.has(scheme))));
      if (readsToken) readers += 1;
      const expected = readsToken ? '#/components/headers/BearerInvalidRequest' : undefined;
      t.equal(resolved(responses['400'])?.headers?.['WWW-Authenticate']?.$ref, expected, `${method.toUpperCase()} ${path}: ${expected ?? 'no challenge'}`);
    }
  }
  t.ok(readers > 40, 'every tree that reads a bearer token was looked at');
});

t.test('413 and 415 are declared by exactly the operations that answer them: all that read a body, whether they declare one or not', async (t) => {
  const app = await build(t, { env: { BODY_LIMIT_BYTES: '1024' } });
  const org = await createOrganization(app);
  const dashboard = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password } });
  const v1 = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } });
  // Authenticated, so that each request gets as far as its body.
  const tokenFor = (path: string) => (path.startsWith('/dashboard/') ? dashboard.json().session.token : path.startsWith('/v1/') ? v1.json().token : org.accessToken);
  const document = (await generateOpenApiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, { responses }] of Object.entries(item)) {
      const send = async (contentType: string, payload: string) => {
        const url = path.replaceAll(/\{\w+\}/g, 'crd_aaaaaaaaaaaaaaaaaaaaaaaaaa');
        const headers = { authorization: `Bearer ${tokenFor(path)}`, 'content-type': contentType };
        return (await app.inject({ method: method.toUpperCase() as 'POST', url, headers, payload })).statusCode;
      };
      const name = `${method.toUpperCase()} ${path}`;
      const notJson = await send('application/xml', '<credential/>');
      t.equal('415' in responses, notJson === 415, `${name}: answers ${notJson} to an XML body and ${'415' in responses ? 'declares' : 'does not declare'} 415`);
      const tooLarge = await send('application/json', JSON.stringify({ name: 'x'.repeat(2048) }));
      t.equal('413' in responses, tooLarge === 413, `${name}: answers ${tooLarge} to a body over the limit and ${'413' in responses ? 'declares' : 'does not declare'} 413`);
    }
  }
});

t.test('a 201 declares Location exactly when it sends one', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const dashboard = await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password } });
  const v1 = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } });
  const login = { providerId: 'prv_sandboxelectricxxxxxxxxxxx', username: 'alice', password: 'pass_good' };
  const credentialId = (await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: login })).json().id;
  const creations: Record<string, { url: string; token: string; payload?: object }> = {
    'POST /plug/credentials': { url: '/plug/credentials', token: org.accessToken, payload: login },
    'POST /plug/credentials/{id}/connectLink': { url: `/plug/credentials/${credentialId}/connectLink`, token: org.accessToken },
    'POST /plug/webhooks/endpoints': { url: '/plug/webhooks/endpoints', token: org.accessToken, payload: { url: 'http://127.0.0.1:9/hooks' } },
    'POST /dashboard/users': { url: '/dashboard/users', token: dashboard.json().session.token, payload: { email: `member-${org.email}`, password: 'member-password-1' } },
    'POST /dashboard/apiKeys': { url: '/dashboard/apiKeys', token: dashboard.json().session.token, payload: { name: 'Billing sync' } },
    'POST /v1/utility/credentials': { url: '/v1/utility/credentials', token: v1.json().token, payload: login },
  };
  const document = (await generateOpenApiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>> };
  const createdHeaders = Object.fromEntries(
    Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, { responses }]) => (responses['201'] ? [[`${method.toUpperCase()} ${path}`, responses['201'].headers ?? {}]] : [])),
    ),
  );
  t.same(Object.keys(createdHeaders).sort(), Object.keys(creations).sort(), 'every operation that answers 201 is tried below');
  const locations: Record<string, string | undefined> = {};
  for (const [name, { url, token, payload }] of Object.entries(creations)) {
    const response = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    t.equal(response.statusCode, 201, `${name}: created`);
    locations[name] = response.headers.location as string | undefined;
    t.equal('Location' in createdHeaders[name]!, locations[name] !== undefined, `${name}: ${locations[name] ? `sends Location ${locations[name]}` : 'sends no Location'}`);
  }
  t.match(locations['POST /plug/credentials'], /^\/plug\/credentials\/crd_/);
  t.match(locations['POST /v1/utility/credentials'], /^http:\/\/[^/]+\/v1\/utility\/credentials\/crd_/, "v1's is an absolute URL");
  t.match(locations['POST /dashboard/users'], /^\/dashboard\/users\/usr_\w+$/);
  t.match(locations['POST /dashboard/apiKeys'], /^\/dashboard\/apiKeys\/key_\w+$/);
  // No GET there, but the URL is the resource's: DELETE acts on what the Location names.
  const session = { authorization: `Bearer ${dashboard.json().session.token}` };
  for (const name of ['POST /dashboard/users', 'POST /dashboard/apiKeys']) {
    t.equal((await app.inject({ method: 'DELETE', url: locations[name] ?? '/no-location-sent', headers: session })).statusCode, 204, `${name}: DELETE at its Location`);
  }
});

t.test('Swagger UI is served at /docs', async (t) => {
  const app = await build(t);
  const page = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  const spec = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(spec.statusCode, 200);
  t.equal(spec.json().openapi, '3.1.0');
});
