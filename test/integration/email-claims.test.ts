import t from 'tap';
import { manualClock } from '../dashboard-helper.ts';
import { build, createOrganization } from '../helper.ts';

const newUser = (email: string) => ({ email, password: 'long enough', role: 'member' as const });

t.test("an email whose user was never written is free again once its claim is a minute old, not before", async (t) => {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const { redis, keys } = app.services.ctx;
  const { organizations } = app.services;
  const email = 'left-behind@example.com';
  // What a delete-org cut short (or a user created while their organization was removed) leaves: a claim, no user.
  await redis.set(keys.userEmail(email), `org_gone:usr_gone:${clock.now().getTime()}`);

  await t.rejects(organizations.createUser({ organizationId: org.organizationId, ...newUser(email) }), { code: 'PB_CONFLICT' }, 'a young claim may be a sign-up still writing its user');
  clock.advance(60_000);
  const user = await organizations.createUser({ organizationId: org.organizationId, ...newUser(email) });
  t.match(await organizations.findUserRefByEmail(email), { organizationId: org.organizationId, id: user.id }, 'the email is taken over');
  await t.rejects(organizations.createUser({ organizationId: org.organizationId, ...newUser(email) }), { code: 'PB_CONFLICT' }, 'and is then taken');
});

t.test('claims made before they carried a time: old when abandoned, released when their user is deleted', async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { redis, keys } = app.services.ctx;
  const { organizations } = app.services;
  await redis.set(keys.userEmail('old-orphan@example.com'), 'org_gone:usr_gone');
  t.ok(await organizations.createUser({ organizationId: org.organizationId, ...newUser('old-orphan@example.com') }), 'an abandoned one is free');

  await redis.set(keys.userEmail(org.email), `${org.organizationId}:${org.userId}`);
  await t.rejects(organizations.createUser({ organizationId: org.organizationId, ...newUser(org.email) }), { code: 'PB_CONFLICT' }, 'one whose user exists is not');
  await organizations.deleteUser(org.organizationId, org.userId);
  t.equal(await redis.exists(keys.userEmail(org.email)), 0, 'deleting the user releases it');
});

t.test("deleting a user leaves alone the claim someone else took over after the user's record went", async (t) => {
  const app = await build(t);
  const org = await createOrganization(app);
  const { redis, keys } = app.services.ctx;
  const other = await createOrganization(app, 'Other');
  // The other organization's sign-up took the email over between the record's deletion and the claim's release.
  const takenOver = `${other.organizationId}:usr_newowner:${Date.now()}`;
  const deleteRecord = redis.multi.bind(redis);
  t.teardown(() => {
    redis.multi = deleteRecord;
  });
  redis.multi = ((...args: Parameters<typeof redis.multi>) => {
    const transaction = deleteRecord(...args);
    const exec = transaction.exec.bind(transaction);
    transaction.exec = (async () => {
      const results = await exec();
      await redis.set(keys.userEmail(org.email), takenOver);
      return results;
    }) as typeof transaction.exec;
    return transaction;
  }) as typeof redis.multi;
  await app.services.organizations.deleteUser(org.organizationId, org.userId);
  redis.multi = deleteRecord;
  t.equal(await redis.get(keys.userEmail(org.email)), takenOver);
});
