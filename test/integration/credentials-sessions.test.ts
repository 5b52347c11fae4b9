/** Challenge expiry, provider session lifetimes, syncs and the sandbox session helpers. */
import t from 'tap';
import type { CredentialView } from '../../src/domain/credential-state.ts';
import { SECRET_FIELDS } from '../../src/services/credential-store.ts';
import { call, chooseFirstMethod, connectWithMfa, createCredential, describe, eventsOf, hasDetail, mfaOf, SUCCESS, WAIT, waitForCredential } from '../credentials-helper.ts';
import { buildStack } from '../helper.ts';

t.test('an unanswered challenge times out within 1 s of expiresAt; refresh starts a new one', async (t) => {
  const stack = await buildStack(t, { env: { MFA_CHALLENGE_TTL_SECONDS: '2' } });
  const created = await createCredential(stack, 'pass_mfa');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const expiresAt = Date.parse(mfaOf(asked).expiresAt);
  t.ok(expiresAt - Date.parse(asked.lastModifiedAt) <= 2000, 'MFA_CHALLENGE_TTL_SECONDS caps the provider’s 10 minutes');

  const timedOut = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_TIMED_OUT'), 5000);
  t.match(timedOut, { status: 'CONNECTION_FAILURE', mfa: null, isCustomerActionRequired: true });
  const event = (await eventsOf(stack, created.id)).find((e) => e.type === 'credential.mfa.timed_out');
  const lateness = Date.parse(event?.timestamp ?? '') - expiresAt;
  t.ok(lateness >= 0 && lateness <= 1000, `timed_out ${lateness} ms after expiresAt`);
  t.equal(event?.data.challengeId, mfaOf(asked).challengeId, 'the event names the challenge that ended');
  t.equal((await chooseFirstMethod(stack, asked)).statusCode, 409, 'the old challenge is gone');

  const refreshed = await call<CredentialView>(stack, 'POST', `/plug/credentials/${created.id}/refresh`, undefined, WAIT);
  t.equal(refreshed.statusCode, 202);
  t.match(refreshed.body, { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED' });
  t.not(refreshed.body.mfa?.challengeId, mfaOf(asked).challengeId, 'a new challenge');
  const again = await call(stack, 'POST', `/plug/credentials/${created.id}/refresh`);
  t.equal(again.statusCode, 202, 'refresh also abandons an open challenge');
});

t.test('pass_mfa_short: session_expiring, then refresh_required when the session ends', async (t) => {
  const stack = await buildStack(t, { env: { SANDBOX_SHORT_SESSION_SECONDS: '3', SESSION_WARNING_SECONDS: '2' } });
  const connected = await connectWithMfa(stack, 'pass_mfa_short');
  const sessionEnd = Date.parse(connected.mfaSession?.expiresAt ?? '');
  t.ok(sessionEnd - Date.now() <= 3000, 'the short session');
  const ended = await waitForCredential(stack, connected.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 6000);
  t.match(ended, { status: 'CONNECTION_FAILURE', mfaSession: null, isAccessible: false });
  const events = await eventsOf(stack, connected.id);
  t.same(describe(events).slice(-3), ['mfa.session_expiring', '→ MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'mfa.refresh_required']);
  const warning = events.find((event) => event.type === 'credential.mfa.session_expiring');
  t.equal(warning?.data.expiresAt, connected.mfaSession?.expiresAt);
  t.ok(Date.parse(warning?.timestamp ?? '') <= sessionEnd - 1000, 'the warning comes ahead of the end');
  const ending = events.find((event) => event.type === 'credential.mfa.refresh_required');
  t.ok(Math.abs(Date.parse(ending?.timestamp ?? '') - sessionEnd) <= 1000, 'the end comes on time');
  t.equal(ending?.data.reason, 'EXPIRED');
});

t.test('a sandbox helper that finds the session ended since it read the credential answers 409, not 500', async (t) => {
  const stack = await buildStack(t);
  const credential = await createCredential(stack, 'pass_good');
  await waitForCredential(stack, credential.id, hasDetail(SUCCESS));
  // What a concurrent helper call leaves between this one's two reads: the record still names the session,
  // its secret is gone (removed by the commit that ended it).
  const { ctx } = stack.app.services;
  const secretsKey = ctx.keys.org(stack.org.organizationId).credentialSecrets(credential.id);
  const { [SECRET_FIELDS.session]: session, ...others } = await ctx.secrets.readAll(secretsKey);
  t.type(session, 'string', 'the connected credential holds a session');
  await ctx.secrets.write(secretsKey, others);
  for (const helper of ['expireSession', 'revokeSession']) {
    const answer = await call(stack, 'POST', `/plug/sandbox/credentials/${credential.id}/${helper}`);
    t.match(answer, { statusCode: 409, body: { errors: [{ type: 'conflict', message: 'The credential holds no provider session' }] } }, helper);
  }
});

t.test('sandbox helpers: expireSession ends the session now, revokeSession is found by the next sync', async (t) => {
  const stack = await buildStack(t, { env: { SYNC_INTERVAL_SECONDS: '1' } });
  const expiring = await connectWithMfa(stack, 'pass_mfa');
  const expired = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${expiring.id}/expireSession`);
  t.match(expired, { statusCode: 200, body: { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED' } });
  t.equal((await eventsOf(stack, expiring.id)).at(-1)?.data.reason, 'EXPIRED', 'an expiry, as the helper says');
  t.equal((await call(stack, 'POST', `/plug/sandbox/credentials/${expiring.id}/expireSession`)).statusCode, 409, 'no session left');

  const revoking = await connectWithMfa(stack, 'pass_mfa');
  const accountsBefore = await call<{ data: { id: string }[] }>(stack, 'GET', `/plug/credentials/${revoking.id}/accounts`);
  const synced = await waitForCredential(stack, revoking.id, (c) => c.lastSyncedAt !== revoking.lastSyncedAt, 4000);
  t.equal(synced.statusDetail, SUCCESS, 'a sync with a live session changes nothing but the sync times');
  const accountsAfter = await call<{ data: { id: string }[] }>(stack, 'GET', `/plug/credentials/${revoking.id}/accounts`);
  t.same(accountsAfter.body.data.map((a) => a.id), accountsBefore.body.data.map((a) => a.id), 'account ids are stable across syncs');

  const revoked = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${revoking.id}/revokeSession`);
  t.match(revoked, { statusCode: 200, body: { statusDetail: SUCCESS } }, 'nothing shows until the next sync');
  await waitForCredential(stack, revoking.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 4000);
  const revokedEvents = await eventsOf(stack, revoking.id);
  t.same(describe(revokedEvents).slice(-2), ['→ MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED', 'mfa.refresh_required']);
  t.equal(revokedEvents.at(-1)?.data.reason, 'REVOKED', 'revoked, not expired');

  const plain = await createCredential(stack, 'pass_good');
  await waitForCredential(stack, plain.id, hasDetail(SUCCESS));
  await call(stack, 'POST', `/plug/sandbox/credentials/${plain.id}/revokeSession`);
  const deadline = Date.now() + 4000;
  let connections = 1;
  while (connections < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    connections = (await eventsOf(stack, plain.id)).filter((event) => event.type === 'credential.connected').length;
  }
  t.equal(connections, 2, 'a session without MFA is replaced by logging in again, no customer needed');
  t.notOk(describe(await eventsOf(stack, plain.id)).includes('mfa.refresh_required'));
});

t.test('refresh of a working MFA connection syncs with its stored session: no new login, no new code', async (t) => {
  const stack = await buildStack(t);
  const connected = await connectWithMfa(stack, 'pass_mfa');
  const eventsBefore = describe(await eventsOf(stack, connected.id));
  const refreshed = await call<CredentialView>(stack, 'POST', `/plug/credentials/${connected.id}/refresh`, undefined, WAIT);
  t.match(refreshed, { statusCode: 202, body: { statusDetail: SUCCESS, mfa: null } });
  t.notOk(refreshed.headers['preference-applied'], 'a sync is not waited for, and the answer does not claim it was');
  const synced = await waitForCredential(stack, connected.id, (c) => c.lastSyncedAt !== connected.lastSyncedAt, 5000);
  t.equal(synced.statusDetail, SUCCESS, 'still connected, synced just now');
  t.ok(Date.parse(synced.nextSyncAt ?? '') > Date.now() + 3_600_000, 'the next sync is a sync interval away again');
  t.same(describe(await eventsOf(stack, connected.id)), eventsBefore, 'no login, no challenge, no event');

  await call(stack, 'POST', `/plug/sandbox/credentials/${connected.id}/revokeSession`);
  await call(stack, 'POST', `/plug/credentials/${connected.id}/refresh`);
  await waitForCredential(stack, connected.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 5000);
  t.pass('a session the provider dropped is found by the refresh: a new code is required');
  const relogin = await call<CredentialView>(stack, 'POST', `/plug/credentials/${connected.id}/refresh`, undefined, WAIT);
  t.equal(relogin.body.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED', 'and the next refresh logs in for it');
});

t.test('the sandbox helpers take an Idempotency-Key like every acting POST: a retry gets the first answer', async (t) => {
  const stack = await buildStack(t);
  const connected = await connectWithMfa(stack, 'pass_mfa');
  const key = { 'Idempotency-Key': `expire-${connected.id}` };
  const first = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${connected.id}/expireSession`, undefined, key);
  t.match(first, { statusCode: 200, body: { statusDetail: 'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED' } });
  const retried = await call<CredentialView>(stack, 'POST', `/plug/sandbox/credentials/${connected.id}/expireSession`, undefined, key);
  t.equal(retried.statusCode, 200, 'replayed, not the 409 of a session already gone');
  t.equal(retried.headers['idempotent-replayed'], 'true');
});

t.test('a sync the provider does not answer keeps the session: still connected, tried again at the next sync', async (t) => {
  let isDown = false;
  const stack = await buildStack(t, {
    site: (site) =>
      site.addHook('onRequest', async (request, reply) => {
        if (isDown && request.url === '/accounts') await reply.status(503).send({ error: 'maintenance' });
      }),
  });
  const connected = await connectWithMfa(stack, 'pass_mfa');
  const eventsBefore = describe(await eventsOf(stack, connected.id));
  isDown = true;
  await call<CredentialView>(stack, 'POST', `/plug/credentials/${connected.id}/refresh`);
  // Settled: sync_failed moves the next sync a sync interval away; the refresh itself had made it due now.
  const settled = (c: CredentialView) => c.statusDetail !== SUCCESS || (c.nextSyncAt !== connected.nextSyncAt && Date.parse(c.nextSyncAt ?? '') > Date.now() + 3_600_000);
  const after = await waitForCredential(stack, connected.id, settled, 5000);
  t.equal(after.statusDetail, SUCCESS, 'an outage is not a revoked session: no new code is asked of the customer');
  t.not(after.mfaSession, null, 'the session is kept');
  t.equal(after.lastSyncedAt, connected.lastSyncedAt, 'no sync happened');
  t.same(describe(await eventsOf(stack, connected.id)), eventsBefore, 'no event');
  isDown = false;
});
