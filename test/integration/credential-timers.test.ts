/**
 * Credential timers live in each organization's timer index and fire through claim → run → release:
 * the index's own rules, and what firing does with timers that are stale, unreadable or that throw.
 * A wake-up stops between batches when its worker closes.
 * (That challenges and sessions time out on time end to end is credentials-sessions' subject.)
 */
import t from 'tap';
import { timerId } from '../../src/domain/credential-jobs.ts';
import { TIMER_LEASE_MS } from '../../src/services/credential-store.ts';
import { createTimerIndex } from '../../src/storage/timer-index.ts';
import { createCredential, hasDetail, mfaOf, waitForCredential } from '../credentials-helper.ts';
import { build, buildStack } from '../helper.ts';
import { waitFor } from '../process-helper.ts';
import { startTimerWorker } from '../../workers/timers.ts';
import { closeWorker } from '../../workers/worker-options.ts';

const ORG = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';

t.test('the timer index: a claim takes due timers for a lease; release ends only what that lease still holds', async (t) => {
  const app = await build(t);
  const { redis, keys } = app.services.ctx;
  const index = createTimerIndex(redis, keys);
  const key = keys.org(ORG).timers;
  const now = 1_800_000_000_000;
  await redis.zadd(key, now - 2, 'a', now, 'b', now + 1, 'later');

  const claim = await index.claimDue(ORG, now, 5_000, 10);
  t.same(claim, { ids: ['a', 'b'], leaseUntilMs: now + 5_000 }, 'due ones only, oldest first');
  t.same(await redis.zrange(key, 0, -1, 'WITHSCORES'), ['later', String(now + 1), 'a', String(now + 5_000), 'b', String(now + 5_000)]);
  t.same((await index.claimDue(ORG, now + 1, 5_000, 10)).ids, ['later'], 'claimed ones are not claimed again during the lease');
  t.same((await index.claimDue(ORG, now + 2, 5_000, 1)).ids, [], 'nothing else is due');

  await redis.zadd(key, now + 60_000, 'b'); // b's run moved it, as a sync does with its next sync time
  await index.release(ORG, claim, ['a', 'b']);
  t.same(await redis.zrange(key, 0, -1, 'WITHSCORES'), ['later', String(now + 5_001), 'b', String(now + 60_000)], 'a is done, the moved b stays');

  t.same((await index.claimDue(ORG, now + 5_001, 5_000, 10)).ids, ['later'], 'a lease that ended (its holder died) makes the timer due again');
  t.same(await index.missing(ORG, ['later', 'a', 'b']), ['a']);
  await index.addMissing(ORG, [
    { id: 'a', runAtMs: now },
    { id: 'b', runAtMs: now },
  ]);
  t.equal(await redis.zscore(key, 'b'), String(now + 60_000), 'adding a pending timer leaves it as it is');
  t.equal(await redis.zscore(key, 'a'), String(now));
  t.equal(await index.nextDueMs(ORG, -Infinity, now + 60_000), now);
  t.equal(await index.nextDueMs(ORG, now, now + 60_000), now + 10_001, 'after is exclusive');
  t.equal(await index.nextDueMs(ORG, now + 10_001, now + 59_999), null, 'until is a bound');
});

t.test('firing: stale and unreadable timers are dropped, a timer that throws stays claimed until its lease ends', async (t) => {
  const stack = await buildStack(t, { env: { MFA_CHALLENGE_TTL_SECONDS: '600' } });
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  await stack.stopWorkers();
  const { services } = stack.app.container;
  const { redis, keys } = services.ctx;
  const orgId = stack.org.organizationId;
  const key = keys.org(orgId).timers;
  const current = timerId({ kind: 'challenge_expiry', credentialId: created.id, ref: mfaOf(asked).challengeId });
  t.ok(Number(await redis.zscore(key, current)) > Date.now(), 'the open challenge has its timer, not due');

  const stale = timerId({ kind: 'challenge_expiry', credentialId: created.id, ref: 'mfa_aaaaaaaaaaaaaaaaaaaaaaaaaa' });
  const gone = timerId({ kind: 'session_expiry', credentialId: 'crd_aaaaaaaaaaaaaaaaaaaaaaaaaa', ref: 'ses' });
  await redis.zadd(key, Date.now() - 1000, stale, Date.now() - 1000, gone, Date.now() - 1000, 'reminder:of:nothing');
  t.same(await services.connections.fireDueTimers(orgId), { fired: 3, failed: 0 });
  t.same(await redis.zrange(key, 0, -1), [current], 'only the current challenge’s timer is left');
  t.match(await services.credentials.get(orgId, created.id), { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' }, 'the stale timer changed nothing');

  // A credential record that cannot be read makes its timer throw: it must not be dropped with the others.
  const broken = timerId({ kind: 'session_expiry', credentialId: 'crd_bbbbbbbbbbbbbbbbbbbbbbbbbb', ref: 'ses' });
  await redis.set(keys.org(orgId).credential('crd_bbbbbbbbbbbbbbbbbbbbbbbbbb'), '{not json');
  await redis.zadd(key, Date.now() - 1000, broken);
  const before = Date.now();
  t.same(await services.connections.fireDueTimers(orgId), { fired: 0, failed: 1 });
  const heldUntil = Number(await redis.zscore(key, broken));
  t.ok(heldUntil >= before + TIMER_LEASE_MS, 'it stays claimed for the lease, then comes due again');
  const wakes = await services.queues.timers.getDelayed();
  t.ok(
    wakes.some((job) => job.data.organizationId === orgId && job.timestamp + job.delay >= heldUntil),
    'and a wake-up job is there for when the lease ends',
  );
});

t.test('closing the timer worker ends a long wake-up between batches and wakes the rest of its timers again', async (t) => {
  const app = await build(t);
  const { redis, keys } = app.services.ctx;
  const key = keys.org(ORG).timers;
  const backlog = 20_000;
  const dueAt = Date.now() - 1000;
  // Timers that name nothing are dropped when they fire: a backlog that takes seconds, with no credentials behind it.
  for (let start = 0; start < backlog; start += 1000) {
    await redis.zadd(key, ...Array.from({ length: 1000 }, (_, index) => [dueAt, `nothing:${start + index}`]).flat());
  }
  const worker = startTimerWorker(app.container);
  t.teardown(() => closeWorker(worker));
  await app.services.queues.timers.add('wake', { organizationId: ORG });
  await waitFor('the first batches to fire', async () => ((await redis.zcard(key)) < backlog ? true : undefined), 10_000);

  await closeWorker(worker);
  const left = await redis.zcard(key);
  t.ok(left > backlog / 2, `closed before the backlog was fired (${left} of ${backlog} left)`);
  const wakes = await app.services.queues.timers.getJobs(['wait', 'delayed']);
  t.ok(
    wakes.some((job) => job.data.organizationId === ORG && job.timestamp + job.delay <= Date.now()),
    'a wake-up job is there for the timers left, due now',
  );
});
