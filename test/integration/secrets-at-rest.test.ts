/**
 * Nothing secret is readable in Redis: dump every key of the prefix, of every type, after creating
 * organizations, extra API keys, tokens, idempotent responses and sealed secrets, and look for the
 * clear values.
 */
import t from 'tap';
import { build, createOrganization, dumpKeys } from '../helper.ts';

t.test('no client secret, access token, password or sealed secret is readable in Redis', async (t) => {
  const app = await build(t, {
    routes: (app) => {
      // Like a route that creates an API key: the response holds a secret shown once, and it is idempotent.
      app.post('/plug/test-keys', { config: { idempotent: true }, preHandler: app.requireAccessToken }, async (request) => {
        const principal = request.principal!;
        return app.services.apiKeys.create(principal.organizationId, { name: 'extra', createdBy: 'test' });
      });
    },
  });
  const { redis, keys, secrets } = app.services.ctx;
  const orgs = [await createOrganization(app, 'First'), await createOrganization(app, 'Second')];
  const secretsToFind: string[] = [];
  for (const org of orgs) {
    secretsToFind.push(org.clientSecret, org.accessToken, org.password);
    const created = await app.inject({ method: 'POST', url: '/plug/test-keys', headers: { ...org.headers, 'idempotency-key': 'k1' } });
    t.equal(created.statusCode, 200);
    secretsToFind.push(created.json().clientSecret);
    const sealedKey = keys.org(org.organizationId).credentialSecrets('crd_at_rest');
    const providerPassword = `provider-pw-${org.organizationId}`;
    await secrets.write(sealedKey, { password: providerPassword });
    secretsToFind.push(providerPassword);
  }
  // Some events and a queued job, so streams/zsets/lists of the prefix are in the dump too.
  await app.services.queues.timers.add('probe', { organizationId: orgs[0]!.organizationId }, { delay: 60_000 });

  const dump = await dumpKeys(redis, [`${keys.prefix}:*`, `${keys.queuePrefix}*`]);
  t.ok(dump.includes(orgs[0]!.organizationId), 'the dump does contain the data (sanity check)');
  t.notMatch(dump, /unhandled type/);
  for (const secret of secretsToFind) {
    t.notOk(dump.includes(secret), `secret ${secret.slice(0, 4)}… is not in Redis`);
  }
  t.notMatch(dump, /pbs_[A-Za-z0-9_-]{20,}/, 'no client secret shape at all');
});
