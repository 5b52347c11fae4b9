import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import t from 'tap';
import { ConfigError } from '../../src/config.ts';
import { EVENT_TYPES } from '../../src/webhooks/event-types.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { build, createOrganization, testConfig } from '../helper.ts';
import { newEvent } from '../../src/services/events.ts';
import { newId } from '../../src/ids.ts';
import { parseEndpointRecord } from '../../src/services/webhooks.ts';

const endpointsUrl = '/plug/webhooks/endpoints';

t.test('endpoint lifecycle: the secret is shown once and stored sealed', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const created = await app.inject({
    method: 'POST',
    url: endpointsUrl,
    headers: org.headers,
    payload: { url: 'https://hooks.example.com/plugboard', eventTypes: ['credential.mfa.code_required'], description: 'MFA' },
  });
  t.equal(created.statusCode, 201, created.body);
  const endpoint = created.json() as { id: string; secret: string };
  t.match(endpoint, {
    id: /^whe_/,
    secret: /^whsec_[A-Za-z0-9+/]+=*$/,
    url: 'https://hooks.example.com/plugboard',
    eventTypes: ['credential.mfa.code_required'],
    description: 'MFA',
    isEnabled: true,
    disabledReason: null,
    previousSecretExpiresAt: null,
  });
  t.equal(created.headers.location, `${endpointsUrl}/${endpoint.id}`);
  t.equal(created.headers['cache-control'], 'no-store', 'the secret is in no cache either');

  const fetched = await app.inject({ url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers });
  t.equal(fetched.statusCode, 200);
  t.notOk('secret' in fetched.json(), 'GET never shows the secret');

  const { keys, redis } = app.services.ctx;
  const orgKeys = keys.org(org.organizationId);
  const stored = [await redis.get(orgKeys.webhookEndpoint(endpoint.id)), await redis.get(orgKeys.webhookEndpointSecrets(endpoint.id))];
  t.notOk(stored.join(' ').includes(endpoint.secret.slice('whsec_'.length)), 'the secret is nowhere in clear text');
  t.equal(await app.services.ctx.secrets.read(orgKeys.webhookEndpointSecrets(endpoint.id), 'current'), endpoint.secret, 'but it opens');

  const patched = await app.inject({
    method: 'PATCH',
    url: `${endpointsUrl}/${endpoint.id}`,
    headers: org.headers,
    payload: { eventTypes: null, isEnabled: false },
  });
  t.equal(patched.statusCode, 200);
  t.match(patched.json(), { eventTypes: null, isEnabled: false, description: 'MFA' });

  await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url: 'https://second.example.com/' } });
  const list = await app.inject({ url: `${endpointsUrl}?size=1&sort=createdAt,asc`, headers: org.headers });
  t.match(list.json(), { data: [{ id: endpoint.id }], page: { number: 0, size: 1, totalElements: 2, totalPages: 2 } });

  const other = await createOrganization(app, 'Other org');
  t.equal((await app.inject({ url: `${endpointsUrl}/${endpoint.id}`, headers: other.headers })).statusCode, 404, 'invisible to other organizations');

  t.equal((await app.inject({ method: 'DELETE', url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers })).statusCode, 204);
  t.equal((await app.inject({ url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers })).statusCode, 404);
  t.equal(await redis.exists(orgKeys.webhookEndpointSecrets(endpoint.id)), 0, 'the secrets go with it');
});

t.test('concurrent changes to one endpoint all apply, none is refused for the contention', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const created = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url: 'https://hooks.example.com/plugboard' } });
  const { id } = created.json() as { id: string };
  const writers = 16;
  const answers = await Promise.all(
    Array.from({ length: writers }, (_, index) =>
      app.inject({ method: 'PATCH', url: `${endpointsUrl}/${id}`, headers: org.headers, payload: { description: `writer ${index}` } }),
    ),
  );
  t.same(answers.map((answer) => answer.statusCode), Array(writers).fill(200), answers.find((answer) => answer.statusCode !== 200)?.body ?? 'every one a 200');
  const record = JSON.parse((await app.services.ctx.redis.get(app.services.ctx.keys.org(org.organizationId).webhookEndpoint(id))) ?? '{}') as { version: number };
  t.equal(record.version, 1 + writers, 'each change made its own version');
});

t.test('private, link-local and mapped loopback targets are refused at creation', async (t) => {
  const app = await build(t, { env: { WEBHOOK_ALLOWED_TARGETS: '' } });
  const org = await createOrganization(app);
  const refused = [
    ['http://10.0.0.1/hooks', /private/],
    ['http://169.254.169.254/latest/meta-data', /metadata/],
    ['http://[::ffff:127.0.0.1]/hooks', /IPv4-mapped.*loopback/],
    ['https://127.0.0.1/hooks', /loopback/],
    ['https://localhost/hooks', /loopback/],
    ['http://hooks.example.com/', /use https/],
    ['ftp://hooks.example.com/', /http and https/],
    ['https://user:pw@hooks.example.com/', /credentials/],
    [' https://hooks.example.com/', /spaces or control characters/],
    ['https://hooks.exam\tple.com/a b', /spaces or control characters/],
    ['https://hooks.example.com/\n', /spaces or control characters/],
  ] as const;
  for (const [url, reason] of refused) {
    const response = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url } });
    t.equal(response.statusCode, 400, url);
    t.match(response.json(), { errors: [{ type: 'invalidParameter', param: 'url', message: reason }] }, url);
  }
  for (const url of ['https://user:pw-in-url@hooks.example.com/', 'https:user:pw-in-url@hooks.example.com/', 'https:\\\\user:pw-in-url@hooks.example.com/']) {
    const response = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url } });
    t.equal(response.json().errors[0].details.value, 'https://%5Bredacted%5D@hooks.example.com/', `${url} is echoed without its credentials`);
  }
  for (const url of ['https://user:pw-in-url@hooks.example.com/ with space', 'https://user:pw-in/url@']) {
    const response = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url } });
    t.equal(response.statusCode, 400);
    t.notMatch(response.body, /pw-in/, `${url}: its password is not echoed`);
  }
  const plain = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url: 'http://10.0.0.1/a@b' } });
  t.equal(plain.json().errors[0].details.value, 'http://10.0.0.1/a@b', 'an @ after the host is no credential');
  const patch = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url: 'https://hooks.example.com/' } });
  const moved = await app.inject({
    method: 'PATCH',
    url: `${endpointsUrl}/${(patch.json() as { id: string }).id}`,
    headers: org.headers,
    payload: { url: 'http://10.0.0.1/' },
  });
  t.equal(moved.statusCode, 400, 'a PATCH cannot move an endpoint to a refused target either');
});

t.test('an organization has at most WEBHOOK_MAX_ENDPOINTS endpoints; deleting one makes room', async (t) => {
  const app = await build(t, { env: { WEBHOOK_MAX_ENDPOINTS: '2' } });
  const org = await createOrganization(app);
  const create = () => app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url: 'http://127.0.0.1:9/hook', eventTypes: ['webhook.test'] } });
  const first = await create();
  t.equal(first.statusCode, 201);
  t.equal((await create()).statusCode, 201);
  const third = await create();
  t.equal(third.statusCode, 409);
  t.match(third.json(), { errors: [{ type: 'conflict', message: /at most 2 webhook endpoints/ }] });
  const other = await createOrganization(app);
  t.equal((await app.inject({ method: 'POST', url: endpointsUrl, headers: other.headers, payload: { url: 'http://127.0.0.1:9/hook' } })).statusCode, 201, 'per organization');
  t.equal((await app.inject({ method: 'DELETE', url: `${endpointsUrl}/${first.json().id as string}`, headers: org.headers })).statusCode, 204);
  t.equal((await create()).statusCode, 201, 'a deleted endpoint makes room');
});

t.test('malformed endpoint bodies are 400s', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  for (const payload of [
    { url: 'https://hooks.example.com/', eventTypes: ['credential.unknown'] },
    { url: 'https://hooks.example.com/', eventTypes: [] },
    { url: 'https://hooks.example.com/', secret: 'whsec_mine' },
    { url: 42 },
    {},
  ]) {
    const response = await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload });
    t.equal(response.statusCode, 400, JSON.stringify(payload));
  }
  t.equal((await app.inject({ url: `${endpointsUrl}/not-an-id`, headers: org.headers })).statusCode, 400);
  t.equal((await app.inject({ url: `${endpointsUrl}?sort=url,sideways`, headers: org.headers })).statusCode, 400);
  // A leap second is a valid RFC 3339 date-time, and one that Date cannot hold (it reached Redis as NaN: a 500).
  for (const since of ['yesterday', '2026-12-31T23:59:60Z', '2026-06-30T18:59:60-05:00']) {
    const response = await app.inject({
      method: 'POST',
      url: `${endpointsUrl}/whe_aaaaaaaaaaaaaaaaaaaaaaaaaa/recover`,
      headers: org.headers,
      payload: { since },
    });
    t.equal(response.statusCode, 400, since);
    t.equal(response.json().errors[0].param, 'since');
  }
});

t.test('the event type catalog, in the API and in the OpenAPI webhooks section', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const response = await app.inject({ url: '/plug/webhooks/eventTypes', headers: org.headers });
  t.equal(response.statusCode, 200);
  const { data } = response.json() as { data: { type: string; description: string; schema: { properties: object } }[] };
  t.same(
    data.map((entry) => entry.type),
    [...EVENT_TYPES],
  );
  t.ok(data.every((entry) => entry.description.length > 0 && 'data' in entry.schema.properties));
  // Each schema validates on its own, in a validator that knows nothing else.
  const ajv = addFormats.default(new Ajv2020({ strict: false }));
  const credential = (
    await app.inject({ method: 'POST', url: '/plug/credentials', headers: org.headers, payload: { providerId: SANDBOX_PROVIDER, username: 'ada', password: 'pass_good' } })
  ).json() as { status: string };
  const event = { id: 'evt_aaaaaaaaaaaaaaaaaaaaaaaaaa', type: 'credential.connected', timestamp: new Date().toISOString(), data: { credential } };
  const connected = data.find((entry) => entry.type === 'credential.connected');
  t.equal(ajv.validate(connected?.schema ?? {}, event), true, 'a real credential.connected body validates');
  t.equal(ajv.validate(connected?.schema ?? {}, { ...event, data: { credential: { ...credential, status: 'NOPE' } } }), false, 'the credential is checked');
  t.ok(data.every((entry) => ajv.compile(entry.schema)), 'every schema compiles alone');
  const enabled = data.find((entry) => entry.type === 'user.two_factor.enabled');
  const userEvent = { ...event, type: 'user.two_factor.enabled', data: { user: { id: 'usr_aaaaaaaaaaaaaaaaaaaaaaaaaa', email: 'zoë@example.com' } } };
  t.equal(ajv.validate(enabled?.schema ?? {}, userEvent), true, 'an email sign-up accepts validates in the event about its user');

  const document = app.swagger() as {
    webhooks: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
    components: { schemas: Record<string, unknown> };
  };
  t.same(Object.keys(document.webhooks), [...EVENT_TYPES]);
  const codeRequiredBody = document.webhooks['credential.mfa.code_required']?.post.requestBody.content['application/json']?.schema;
  t.same(codeRequiredBody, { $ref: '#/components/schemas/CredentialMfaCodeRequiredEvent' }, "each webhook's body is its event type's component");
  t.match(JSON.stringify(document.components.schemas.CredentialMfaCodeRequiredEvent), /"\$ref":"#\/components\/schemas\/Credential"/, 'the credential is a component reference');
  // The event log's items (`Event`): the union of those components, told apart by `type`.
  const logItem = ajv.compile({ $id: 'https://plugboard.test/openapi', components: document.components, $ref: '#/components/schemas/Event' });
  t.equal(logItem(event), true, 'a real credential.connected event is an Event');
  t.equal(logItem({ ...event, type: 'credential.mfa.code_rejected' }), false, 'its data is checked against its type: code_rejected needs attemptsRemaining');
  t.equal(logItem({ ...event, type: 'credential.mfa.code_rejected', data: { ...event.data, attemptsRemaining: 2 } }), true);
  t.equal(logItem({ ...event, type: 'credential.nope' }), false, 'an unknown type is none of them');
});

t.test('a bad WEBHOOK_ALLOWED_TARGETS or WEBHOOK_RETRY_SCHEDULE stops start-up, naming the variable', async (t) => {
  t.throws(() => testConfig({ WEBHOOK_ALLOWED_TARGETS: '10.0.0.0/33' }), ConfigError);
  t.throws(() => testConfig({ WEBHOOK_ALLOWED_TARGETS: 'example.com' }), /WEBHOOK_ALLOWED_TARGETS/);
  t.throws(() => testConfig({ WEBHOOK_RETRY_SCHEDULE: '5,soon' }), /WEBHOOK_RETRY_SCHEDULE/);
  t.same(testConfig({ WEBHOOK_RETRY_SCHEDULE: '1, 2,3' }).webhookRetryScheduleSeconds, [1, 2, 3]);
});


async function setUp(t: Parameters<typeof build>[0]) {
  const app = await build(t);
  const org = await createOrganization(app);
  const create = async (url: string) =>
    (await app.inject({ method: 'POST', url: endpointsUrl, headers: org.headers, payload: { url } })).json() as { id: string };
  const patch = (id: string, payload: object) => app.inject({ method: 'PATCH', url: `${endpointsUrl}/${id}`, headers: org.headers, payload });
  return { app, org, create, patch, orgKeys: app.services.ctx.keys.org(org.organizationId), redis: app.services.ctx.redis };
}

t.test('recover sends only what gave up since `since`; older failures stay for a recover that reaches back to them', async (t) => {
  const { app, org, create, orgKeys, redis } = await setUp(t);
  const endpoint = await create('https://hooks.example.com/recover');
  const now = Date.now();
  await redis.zadd(orgKeys.webhookEndpointFailed(endpoint.id), now - 3_600_000, 'evt_old', now - 1_000, 'evt_recent');
  const recover = async (since: number) =>
    (await app.inject({ method: 'POST', url: `${endpointsUrl}/${endpoint.id}/recover`, headers: org.headers, payload: { since: new Date(since).toISOString() } })).json() as { eventIds: string[] };
  t.same((await recover(now - 60_000)).eventIds, ['evt_recent']);
  t.same(await redis.zrange(orgKeys.webhookEndpointFailed(endpoint.id), 0, -1), ['evt_old'], 'the older one is left');
  t.same((await recover(now - 7_200_000)).eventIds, ['evt_old']);
});

t.test('resend goes to enabled endpoints only', async (t) => {
  const { app, org, create, patch } = await setUp(t);
  const enabled = await create('https://hooks.example.com/on');
  const paused = await create('https://hooks.example.com/off');
  await patch(paused.id, { isEnabled: false });
  const event = newEvent('credential.created', { credential: { id: 'crd_test' } }, new Date());
  await app.services.events.commit({ organizationId: org.organizationId, mutations: [], events: [event] });
  const resent = await app.inject({ method: 'POST', url: `/plug/events/${event.id}/resend`, headers: org.headers });
  t.equal(resent.statusCode, 202);
  t.same((resent.json() as { endpointIds: string[] }).endpointIds, [enabled.id]);
});

t.test('enabling an endpoint Plugboard disabled clears its reason, its failure streak and its breaker', async (t) => {
  const { app, org, create, patch, orgKeys, redis } = await setUp(t);
  const endpoint = await create('https://hooks.example.com/gone');
  const seen = parseEndpointRecord(await redis.get(orgKeys.webhookEndpoint(endpoint.id)));
  t.equal(await app.services.webhooks.disableEndpoint(org.organizationId, endpoint.id, 'answered 410 Gone', seen!), true);
  const health = orgKeys.webhookEndpointHealth(endpoint.id);
  await redis.hset(health, 'failures', '7', 'openUntil', String(Date.now() + 600_000), 'failingSince', String(Date.now() - 4 * 86_400_000));
  const enabled = await patch(endpoint.id, { isEnabled: true });
  t.match(enabled.json(), { isEnabled: true, disabledReason: null });
  t.equal(await redis.exists(health), 0, 'no open breaker, no 4-day-old streak that would disable it again at the next failure');
});

t.test('a disabled endpoint cannot be tested', async (t) => {
  const { app, org, create, patch } = await setUp(t);
  const endpoint = await create('https://hooks.example.com/test');
  await patch(endpoint.id, { isEnabled: false });
  const tested = await app.inject({ method: 'POST', url: `${endpointsUrl}/${endpoint.id}/test`, headers: org.headers });
  t.equal(tested.statusCode, 409);
  t.match(tested.json(), { errors: [{ type: 'conflict' }] });
});

t.test('a rotation whose endpoint is deleted while it runs is the 404 of a deleted endpoint, wherever the deletion lands', async (t) => {
  const { app, org, create, orgKeys } = await setUp(t);
  const { secrets } = app.services.ctx;
  const readAll = secrets.readAll.bind(secrets);
  t.teardown(() => {
    secrets.readAll = readAll;
  });
  const deleteEndpoint = (id: string) => app.inject({ method: 'DELETE', url: `${endpointsUrl}/${id}`, headers: org.headers });
  // The rotation reads the record, then its secrets, then commits both under the record's version.
  const interleavings = {
    'after the record was read, before its secrets': async (id: string, key: string) => {
      t.equal((await deleteEndpoint(id)).statusCode, 204);
      return readAll(key);
    },
    'after the secrets were read, before the commit': async (id: string, key: string) => {
      const read = await readAll(key);
      t.equal((await deleteEndpoint(id)).statusCode, 204);
      return read;
    },
  };
  for (const [when, deleteAndRead] of Object.entries(interleavings)) {
    const endpoint = await create('https://hooks.example.com/rotating');
    let isArmed = true;
    secrets.readAll = (key) => {
      if (!isArmed || key !== orgKeys.webhookEndpointSecrets(endpoint.id)) return readAll(key);
      isArmed = false;
      return deleteAndRead(endpoint.id, key);
    };
    const rotated = await app.inject({ method: 'POST', url: `${endpointsUrl}/${endpoint.id}/rotateSecret`, headers: org.headers, payload: {} });
    secrets.readAll = readAll;
    t.notOk(isArmed, `${when}: the deletion ran inside the rotation`);
    const gone = await app.inject({ url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers });
    t.equal(rotated.statusCode, 404, `${when}: not a 500`);
    t.same(rotated.json(), gone.json(), `${when}: the 404 any request for a deleted endpoint gets`);
  }
});

t.test('a change that read an endpoint deleted and created again under its id before the change committed is the 404 of the deleted one', async (t) => {
  const { app, org, orgKeys } = await setUp(t);
  const { events, webhooks } = app.services;
  const commit = events.commit.bind(events);
  t.teardown(() => {
    events.commit = commit;
  });
  const url = 'https://hooks.example.com/recreated';
  // What an Idempotency-Key names: the same id on every creation under it.
  const naming = { id: newId('whe'), isIdempotent: true };
  const changes = {
    PATCH: () => app.inject({ method: 'PATCH', url: `${endpointsUrl}/${naming.id}`, headers: org.headers, payload: { description: 'meant for the first one' } }),
    rotateSecret: () => app.inject({ method: 'POST', url: `${endpointsUrl}/${naming.id}/rotateSecret`, headers: org.headers, payload: {} }),
  };
  for (const [name, change] of Object.entries(changes)) {
    await webhooks.createEndpoint(org.organizationId, { url }, naming);
    let recreated: { secret: string } | null = null;
    // Both at version 1: only the incarnation tells the change's endpoint from the one it would commit over.
    events.commit = async (pending) => {
      if (recreated === null && pending.guard?.key === orgKeys.webhookEndpoint(naming.id) && pending.guard.expectedVersion === 1) {
        events.commit = commit;
        t.equal((await app.inject({ method: 'DELETE', url: `${endpointsUrl}/${naming.id}`, headers: org.headers })).statusCode, 204);
        recreated = await webhooks.createEndpoint(org.organizationId, { url }, naming);
      }
      return commit(pending);
    };
    const changed = await change();
    events.commit = commit;
    t.ok(recreated, `${name}: the endpoint was re-created inside the change`);
    t.equal(changed.statusCode, 404, `${name}: ${changed.body}`);
    t.match(changed.json(), { errors: [{ type: 'notFound' }] });
    const record = JSON.parse((await app.services.ctx.redis.get(orgKeys.webhookEndpoint(naming.id))) ?? '{}') as { version: number; description: string };
    t.match(record, { version: 1, description: '' }, `${name}: the re-created endpoint is as it was created`);
    const signing = await webhooks.signingSecrets(org.organizationId, record as Parameters<typeof webhooks.signingSecrets>[1]);
    t.same(signing, [recreated!.secret], `${name}: it signs with its own secret alone`);
    t.equal((await app.inject({ method: 'DELETE', url: `${endpointsUrl}/${naming.id}`, headers: org.headers })).statusCode, 204);
  }
});

t.test('deletes of one endpoint at once: one 204, the others the 404 a delete after it gets', async (t) => {
  const { app, org, create } = await setUp(t);
  const endpoint = await create('https://hooks.example.com/deleted-at-once');
  const deletes = 30;
  const answers = await Promise.all(
    Array.from({ length: deletes }, () => app.inject({ method: 'DELETE', url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers })),
  );
  const statuses = answers.map((answer) => answer.statusCode);
  t.same(statuses.filter((status) => status === 204).length, 1, `one deletes it (${statuses.join(' ')})`);
  t.same(statuses.filter((status) => status === 404).length, deletes - 1, 'the others find it gone');
  const after = await app.inject({ method: 'DELETE', url: `${endpointsUrl}/${endpoint.id}`, headers: org.headers });
  t.same(answers.find((answer) => answer.statusCode === 404)?.json(), after.json(), 'the same 404 as a delete after them all');
});

t.test('a delete that loses to a change deletes the changed endpoint; one that loses to a re-creation under its id is a 404', async (t) => {
  const { app, org, orgKeys, patch } = await setUp(t);
  const { events, webhooks } = app.services;
  const commit = events.commit.bind(events);
  t.teardown(() => {
    events.commit = commit;
  });
  const naming = { id: newId('whe'), isIdempotent: true };
  const url = 'https://hooks.example.com/deleted';
  const deleteEndpoint = () => app.inject({ method: 'DELETE', url: `${endpointsUrl}/${naming.id}`, headers: org.headers });
  /** Runs `meanwhile` between the delete's read of the record and its commit. */
  const deleteWith = async (meanwhile: () => Promise<void>) => {
    let isArmed = true;
    events.commit = async (pending) => {
      if (isArmed && pending.guard?.key === orgKeys.webhookEndpoint(naming.id) && pending.mutations.some((mutation) => mutation.op === 'del')) {
        isArmed = false;
        await meanwhile();
      }
      return commit(pending);
    };
    const deleted = await deleteEndpoint();
    events.commit = commit;
    t.notOk(isArmed, 'the change ran inside the delete');
    return deleted;
  };

  await webhooks.createEndpoint(org.organizationId, { url }, naming);
  const deleted = await deleteWith(async () => {
    t.equal((await patch(naming.id, { description: 'changed meanwhile' })).statusCode, 200);
  });
  t.equal(deleted.statusCode, 204, 'a change meanwhile does not keep it');
  t.equal(await app.services.ctx.redis.exists(orgKeys.webhookEndpoint(naming.id)), 0);

  await webhooks.createEndpoint(org.organizationId, { url }, naming);
  const lost = await deleteWith(async () => {
    t.equal((await deleteEndpoint()).statusCode, 204);
    await webhooks.createEndpoint(org.organizationId, { url }, naming);
  });
  t.equal(lost.statusCode, 404, 'the endpoint it was asked to delete is gone');
  t.equal((await app.inject({ url: `${endpointsUrl}/${naming.id}`, headers: org.headers })).statusCode, 200, 'the re-created one stays');
});
