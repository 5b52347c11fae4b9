/**
 * Every operation of the OpenAPI document, fed requests built from its own schemas and then broken on purpose
 * (a field of the wrong type, junk path ids, unknown fields, odd strings, whole bodies that are not objects),
 * answers in the documented error shape and never with a 500. Authenticated, and with real resource ids most of
 * the time, so that requests get past the schema checks into the services, where a 500 would hide. And every
 * operation on one resource, asked by one organization with another's ids, refuses (4xx), whatever the body.
 *
 * The generator is seeded: a failure names its seed, and `FUZZ_SEED=<n>` replays it (`FUZZ_REQUESTS` sets
 * how many requests each operation gets).
 */
import t from 'tap';
import type { InjectOptions } from 'fastify';
import type { App } from '../../src/app.ts';
import { build, createOrganization } from '../helper.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';

interface Schema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
}
interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'header';
  schema: Schema;
}
interface Operation {
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas?: Record<string, Schema>; parameters?: Record<string, Parameter> };
}

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const REQUESTS_PER_OPERATION = Number(process.env.FUZZ_REQUESTS ?? 20);

/** mulberry32: small, seedable, good enough to pick test inputs. */
function seededRandom(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

// Only literal loopback or private addresses: a hostname would be a DNS lookup, which tests never make.
const ODD_STRINGS = [
  '', ' ', 'x', 'x'.repeat(5000), '\u0000', 'a\u0000b', '💥'.repeat(200), '\ud800', 'ÿ'.repeat(70), '../../etc/passwd', '%00', '%2e%2e%2f',
  '<script>alert(1)</script>', '{{7*7}}', '${jndi:ldap://127.0.0.1/x}', '__proto__', 'constructor', "' OR 1=1 --", '*', '==', 'null', 'NaN',
  '2026-02-30T25:61:61Z', '1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z', 'a@b.c', '+15555550123', '+1', '000000', '12345678',
  'crd_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'prv_',
];
const ODD_URLS = [
  'http://127.0.0.1:9/hooks', 'http://127.0.0.1:9/h?token=x#f', 'http://user:pw@127.0.0.1:9/', 'http://10.0.0.1/', 'http://[::1]:9/x', 'http://0x7f000001/',
  'http://127.0.0.1:99999/', 'ftp://127.0.0.1/', 'javascript:alert(1)', 'http://', `http://127.0.0.1:9/${'x'.repeat(3000)}`,
];
const ODD_NUMBERS = [0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, Number.MIN_VALUE];
const JUNK: unknown[] = [null, true, false, [], [null], {}, { __proto__: { admin: true } }, { $gt: '' }, ...ODD_NUMBERS, ...ODD_STRINGS, ...ODD_URLS];

function generator(document: Document, random: () => number, realIds: string[]) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const resolve = (schema: Schema): Schema => (schema.$ref ? resolve(document.components.schemas![schema.$ref.split('/').at(-1)!]!) : schema);

  /** A value the schema would likely accept, drawn towards the edges it allows. */
  function plausible(raw: Schema, depth = 0): unknown {
    const schema = resolve(raw);
    if (schema.const !== undefined) return schema.const;
    if (schema.enum) return pick(schema.enum);
    const choices = schema.anyOf ?? schema.oneOf;
    if (choices) return plausible(pick(choices), depth);
    if (schema.allOf) return Object.assign({}, ...schema.allOf.map((part) => plausible(part, depth)));
    const type = Array.isArray(schema.type) ? pick(schema.type) : schema.type;
    switch (type) {
      case 'string': {
        if (schema.pattern) return pick([...realIds, pick(ODD_STRINGS)]);
        if (schema.format === 'uri') return pick(ODD_URLS);
        if (schema.format === 'date-time') return pick([new Date(Date.now() + (random() - 0.5) * 1e10).toISOString(), pick(ODD_STRINGS)]);
        const text = pick(ODD_STRINGS).slice(0, schema.maxLength ?? Infinity);
        return text.length >= (schema.minLength ?? 0) ? text : text.padEnd(schema.minLength!, 'p');
      }
      case 'integer':
      case 'number': {
        const bounded = ODD_NUMBERS.filter((n) => (type === 'number' || Number.isInteger(n)) && n >= (schema.minimum ?? -Infinity) && n <= (schema.maximum ?? Infinity));
        return pick([...bounded, schema.minimum, schema.maximum].filter((n) => n !== undefined));
      }
      case 'boolean':
        return random() < 0.5;
      case 'null':
        return null;
      case 'array': {
        if (depth > 3) return [];
        const length = Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 3, Math.floor(random() * 4)));
        return Array.from({ length }, () => plausible(schema.items ?? {}, depth + 1));
      }
      case 'object': {
        const object: Record<string, unknown> = {};
        if (depth > 3) return object;
        for (const [name, property] of Object.entries(schema.properties ?? {})) {
          if (schema.required?.includes(name) || random() < 0.5) object[name] = plausible(property, depth + 1);
        }
        return object;
      }
      default:
        return pick(JUNK);
    }
  }

  /** A plausible body, then broken in one of the ways a client's bug or an attacker would break it. */
  function body(schema: Schema): unknown {
    const base = plausible(schema);
    const isObject = typeof base === 'object' && base !== null && !Array.isArray(base);
    const fields = isObject ? Object.keys(base) : [];
    const way = random();
    if (way < 0.3 || !isObject) return way < 0.15 ? pick(JUNK) : base;
    const broken = { ...(base as Record<string, unknown>) };
    if (way < 0.6 && fields.length > 0) broken[pick(fields)] = pick(JUNK);
    else if (way < 0.75 && fields.length > 0) delete broken[pick(fields)];
    else broken[pick(['admin', 'organizationId', 'status', 'id', '__proto__', 'constructor'])] = pick(JUNK);
    return broken;
  }

  function queryValue(schema: Schema): string {
    const value = random() < 0.6 ? plausible(schema) : pick(JUNK);
    return typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  }

  return { pick, body, queryValue };
}

function isErrorShape(path: string, status: number, payload: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return false;
  }
  if (path.startsWith('/v1/')) {
    const { status: said, message } = parsed as { status?: unknown; message?: unknown };
    return said === status && typeof message === 'string' && message.length > 0;
  }
  const errors = (parsed as { errors?: { type?: unknown; message?: unknown }[] }).errors;
  return Array.isArray(errors) && errors.length > 0 && errors.every((error) => typeof error.type === 'string' && typeof error.message === 'string');
}

/**
 * An organization with one resource of each kind a path names, and the headers each API reads its caller from.
 * Its dashboard session, v1 token and API key stay valid whatever the requests do: a user and an API key of
 * their own are there to be deleted.
 */
async function tenant(app: App) {
  const org = await createOrganization(app);
  const dashboardToken = (await app.inject({ method: 'POST', url: '/dashboard/login', payload: { email: org.email, password: org.password } })).json().session.token as string;
  const v1Token = (await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: org.email, password: org.password } })).json().token as string;
  const asDashboard = { authorization: `Bearer ${dashboardToken}` };
  const created = async (url: string, headers: Record<string, string>, payload: object) => {
    const response = await app.inject({ method: 'POST', url, headers, payload });
    if (response.statusCode !== 201) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    return response.json().id as string;
  };
  const credentialId = await created('/plug/credentials', org.headers, { providerId: SANDBOX_PROVIDER, username: 'fuzz', password: 'pass_good' });
  const endpointId = await created('/plug/webhooks/endpoints', org.headers, { url: 'http://127.0.0.1:9/hooks' });
  const memberId = await created('/dashboard/users', asDashboard, { email: `member-${org.email}`, password: 'member-password-1' });
  const spareKeyId = await created('/dashboard/apiKeys', asDashboard, { name: 'fuzz spare' });
  const eventId = (await app.inject({ url: '/plug/events', headers: org.headers })).json().data[0].id as string;
  return {
    ids: [credentialId, endpointId, eventId, memberId, spareKeyId],
    idFor: (path: string): string =>
      path.includes('/credentials/') ? credentialId
      : path.includes('/webhooks/endpoints/') ? endpointId
      : path.includes('/events/') ? eventId
      : path.includes('/users/') ? memberId
      : path.includes('/apiKeys/') ? spareKeyId
      : path.includes('/providers/') ? SANDBOX_PROVIDER
      : 'acc_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    headersFor: (path: string): Record<string, string> =>
      path.startsWith('/dashboard/') ? asDashboard
      : path.startsWith('/v1/') ? { authorization: `Bearer ${v1Token}` }
      : path.startsWith('/plug/') ? org.headers
      : {},
  };
}

function operationsOf(document: Document) {
  return Object.entries(document.paths)
    .flatMap(([path, item]) => Object.entries(item).map(([method, operation]) => [path, method, operation] as const))
    .sort((a, b) => order([a[0], a[1]]) - order([b[0], b[1]]));
}

const UNLIMITED = { RATE_LIMIT_PER_MINUTE: '1000000', TOKEN_RATE_LIMIT_PER_MINUTE: '1000000' };

/** Destructive operations go last, so that the others find their resources and sessions still there. */
function order([path, method]: [string, string]): number {
  if (path.endsWith('/logout') || path === '/oauth2/revoke') return 2;
  return method === 'delete' ? 1 : 0;
}

t.test(`every operation answers broken requests in the error shape, never with a 500 (FUZZ_SEED=${SEED})`, async (t) => {
  const app = await build(t, { env: UNLIMITED });
  const { ids, idFor, headersFor } = await tenant(app);

  const document = app.swagger() as unknown as Document;
  const random = seededRandom(SEED);
  const generate = generator(document, random, [...ids, SANDBOX_PROVIDER]);
  const operations = operationsOf(document);
  t.ok(operations.length > 50, `${operations.length} operations`);

  let requests = 0;
  for (const [path, method, operation] of operations) {
    const parameters = (operation.parameters ?? []).map((parameter) => (parameter.$ref ? document.components.parameters![parameter.$ref.split('/').at(-1)!]! : parameter));
    const bodySchema = operation.requestBody?.content['application/json']?.schema ?? operation.requestBody?.content['application/x-www-form-urlencoded']?.schema;
    const batch = Array.from({ length: REQUESTS_PER_OPERATION }, (): InjectOptions => {
      const url = path.replaceAll(/\{(\w+)\}/g, () => encodeURIComponent(Buffer.from(random() < 0.7 ? idFor(path) : generate.queryValue({})).toString()));
      const query = new URLSearchParams();
      for (const parameter of parameters.filter((p) => p.in === 'query')) {
        if (random() < 0.6) query.append(parameter.name, generate.queryValue(parameter.schema));
      }
      if (random() < 0.15) query.append(generate.pick(['unknown', 'page', 'sort', '__proto__']), generate.queryValue({}));
      const headers: Record<string, string> = { ...headersFor(path), ...(bodySchema ? { 'content-type': 'application/json' } : {}) };
      for (const parameter of parameters.filter((p) => p.in === 'header')) {
        // A few shared Idempotency-Keys, so that requests of one batch also race for the same key.
        if (random() < 0.3) headers[parameter.name] = /idempotency/i.test(parameter.name) && random() < 0.7 ? generate.pick(['fuzz-a', 'fuzz-b']) : generate.queryValue(parameter.schema);
      }
      return {
        method: method.toUpperCase() as InjectOptions['method'],
        url: query.size > 0 ? `${url}?${query}` : url,
        headers,
        ...(bodySchema ? { payload: JSON.stringify(generate.body(bodySchema)) ?? 'null' } : {}),
      };
    });
    // Built first, so the seed alone decides them; then sent together, as a client's retries and bursts arrive.
    const responses = await Promise.all(batch.map((request) => app.inject(request)));
    requests += responses.length;
    const failures = responses.flatMap((response, i) => {
      const isServerFault = response.statusCode >= 500 && response.statusCode !== 503;
      // /readyz's 503 ("not ready", as a loaded machine's stalled Redis reads) has the probes' own documented shape.
      const hasOwnShape = operation.tags?.includes('operations') && response.statusCode === 503;
      const isUnshapedRefusal = response.statusCode >= 400 && !hasOwnShape && !isErrorShape(path, response.statusCode, response.body);
      return isServerFault || isUnshapedRefusal ? [`${response.statusCode} ${batch[i]!.url} ${String(batch[i]!.payload ?? '').slice(0, 300)} → ${response.body.slice(0, 300)}`] : [];
    });
    t.same(failures, [], `${method.toUpperCase()} ${path}`);
  }
  t.ok(requests >= operations.length * REQUESTS_PER_OPERATION, `${requests} requests`);
});

t.test(`no operation acts on another organization's resources, whatever the request says (FUZZ_SEED=${SEED})`, async (t) => {
  const app = await build(t, { env: UNLIMITED });
  const caller = await tenant(app);
  const other = await tenant(app);
  const document = app.swagger() as unknown as Document;
  const random = seededRandom(SEED);
  const generate = generator(document, random, [...caller.ids, ...other.ids]);
  // Providers are the same catalog for everyone.
  const operations = operationsOf(document).filter(([path]) => path.includes('{') && !path.includes('/providers/'));
  t.ok(operations.length > 25, `${operations.length} operations on one resource`);
  for (const [path, method, operation] of operations) {
    const bodySchema = operation.requestBody?.content['application/json']?.schema;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        app.inject({
          method: method.toUpperCase() as InjectOptions['method'],
          url: path.replaceAll(/\{\w+\}/g, other.idFor(path)),
          headers: { ...caller.headersFor(path), ...(bodySchema ? { 'content-type': 'application/json' } : {}) },
          ...(bodySchema ? { payload: JSON.stringify(generate.body(bodySchema)) ?? 'null' } : {}),
        }),
      ),
    );
    const statuses = answers.map((answer) => answer.statusCode);
    t.ok(statuses.every((status) => status >= 400 && status < 500), `${method.toUpperCase()} ${path}: ${statuses.join(' ')}`);
  }
  // The other organization's resources are all still there, unchanged by the attempts.
  for (const path of ['/plug/credentials/{id}', '/plug/webhooks/endpoints/{id}', '/plug/events/{id}']) {
    const response = await app.inject({ url: path.replace('{id}', other.idFor(path)), headers: other.headersFor(path) });
    t.equal(response.statusCode, 200, `${path} of the other organization is still there`);
  }
});
