/**
 * A credential's secrets are one sealed map, so a commit that writes or drops some of them writes the whole
 * map; the record's version guard is what keeps a concurrent commit's secrets from being lost.
 */
import t, { type Test } from 'tap';
import type { CredentialRecord } from '../../src/domain/credential-state.ts';
import { createCredentialStore, SYSTEM_ACTOR } from '../../src/services/credential-store.ts';
import { writeLegacySecrets } from '../fixtures/legacy-secrets.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { build, createOrganization } from '../helper.ts';

async function setup(t: Test, secrets: Record<string, string> = { password: 'pw', extraFields: '{"memorable":"word"}' }) {
  const app = await build(t);
  const { ctx, events, queues } = app.services;
  const { organizationId } = await createOrganization(app);
  const store = createCredentialStore(ctx, events, queues);
  const credential = await store.create({ id: 'crd_secrets', organizationId, providerId: SANDBOX_PROVIDER, username: 'user', correlationId: null }, 'test', {
    secrets,
  });
  if (!credential) throw new Error('a new id is free');
  return { ctx, store, queues, credential, key: store.secretsKey(organizationId, credential.id) };
}

t.test('a commit writing one secret keeps the others, and secrets of a finished state are dropped', async (t) => {
  const { ctx, store, credential, key } = await setup(t);
  const { organizationId, id } = credential;
  const applied = await store.transition(
    organizationId,
    id,
    (current: CredentialRecord) => ({ kind: 'method_required', stepId: current.step?.id ?? '', methods: [{ id: 'm1', type: 'SMS', destination: null }], expiresAt: null }),
    SYSTEM_ACTOR,
    { secrets: { loginState: 'state-1' } },
  );
  t.equal(applied.outcome, 'applied');
  t.same(await ctx.secrets.readAll(key), { password: 'pw', extraFields: '{"memorable":"word"}', loginState: 'state-1' });

  const sealed = await ctx.redis.getBuffer(key);
  t.equal((await store.transition(organizationId, id, { kind: 'update', correlationId: 'c1', login: 'untouched' }, 'test')).outcome, 'applied');
  t.same(await ctx.redis.getBuffer(key), sealed, 'a commit without secret changes leaves the sealed value as it is');

  t.equal((await store.transition(organizationId, id, { kind: 'disable' }, 'test')).outcome, 'applied');
  t.same(await ctx.secrets.readAll(key), { password: 'pw', extraFields: '{"memorable":"word"}' }, 'the login state ends with the challenge');

  t.equal((await store.transition(organizationId, id, { kind: 'delete' }, 'test')).outcome, 'applied');
  t.equal(await ctx.redis.exists(key), 0, 'the secrets go with the credential');
});

t.test('a commit on secrets still in the legacy layout keeps them, in the new layout', async (t) => {
  const { ctx, store, credential, key } = await setup(t);
  await ctx.redis.del(key);
  await writeLegacySecrets(ctx, key, { password: 'legacy-pw' });
  // A change of its own to commit (a commit of nothing but a secret is no update the API makes).
  const additional = { kind: 'update', login: 'untouched', correlationId: 'c2' } as const;
  t.equal((await store.transition(credential.organizationId, credential.id, additional, 'test', { secrets: { 'additional.password2': 'pw2' } })).outcome, 'applied');
  t.equal(await ctx.redis.type(key), 'string');
  t.same(await ctx.secrets.readAll(key), { password: 'legacy-pw', 'additional.password2': 'pw2' });
});

t.test('concurrent commits each writing a secret lose none of them', async (t) => {
  const { ctx, store, credential, key } = await setup(t);
  const names = Array.from({ length: 10 }, (_, i) => `additional.password${i}`);
  const results = await Promise.all(
    names.map((name) =>
      store.transition(credential.organizationId, credential.id, { kind: 'update', login: 'untouched', correlationId: name }, 'test', { secrets: { [name]: `value of ${name}` } }),
    ),
  );
  t.same(results.map((result) => result.outcome), names.map(() => 'applied'));
  t.same(await ctx.secrets.readAll(key), {
    password: 'pw',
    extraFields: '{"memorable":"word"}',
    ...Object.fromEntries(names.map((name) => [name, `value of ${name}`])),
  });
});

t.test('a provider session ends with the state that held it: gone from the sealed secrets once the credential is disabled', async (t) => {
  const { ctx, store, credential, key } = await setup(t, { password: 'pw' });
  const { organizationId, id } = credential;
  const connected = await store.transition(
    organizationId,
    id,
    (current: CredentialRecord) => ({ kind: 'connected', stepId: current.step?.id ?? '', sessionExpiresAt: null }),
    SYSTEM_ACTOR,
    { secrets: { session: 'provider-session-cookie' } },
  );
  t.equal(connected.outcome, 'applied');
  t.same(await ctx.secrets.readAll(key), { password: 'pw', session: 'provider-session-cookie' });
  t.equal((await store.transition(organizationId, id, { kind: 'disable' }, 'test')).outcome, 'applied');
  t.same(await ctx.secrets.readAll(key), { password: 'pw' }, 'the session is not kept once no state needs it');
});

t.test('a step superseded before it ran leaves the queue', async (t) => {
  const { store, queues, credential } = await setup(t, { password: 'pw' });
  const stepId = credential.step?.id ?? '';
  const jobId = `step-${credential.id}-${stepId}`;
  t.ok(await queues.credentialSteps.getJob(jobId), 'the login step is queued');
  t.equal((await store.transition(credential.organizationId, credential.id, { kind: 'disable' }, 'test')).outcome, 'applied');
  t.notOk(await queues.credentialSteps.getJob(jobId), 'disabling took the step out instead of leaving a stale job to run');
});
