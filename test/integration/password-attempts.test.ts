import t from 'tap';
import { sha256Hex } from '../../src/crypto/hashing.ts';
import { PASSWORD_FAILURE_WINDOW_MS } from '../../src/services/password-attempts.ts';
import { sessionHeaders } from '../dashboard-helper.ts';
import { build, createOrganization, keysMatching } from '../helper.ts';

type App = Awaited<ReturnType<typeof build>>;

function limits(perAccount: number, perAccountAndAddress: number) {
  return {
    env: {
      PASSWORD_FAILURES_PER_ACCOUNT: String(perAccount),
      PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS: String(perAccountAndAddress),
      // The per-IP limit on password routes is not what these tests are about.
      TOKEN_RATE_LIMIT_PER_MINUTE: '1000',
    },
  };
}

const dashboardLogin = (app: App, email: string, password: string, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: '/dashboard/login', remoteAddress, payload: { email, password } });

const v1Login = (app: App, email: string, password: string, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress, payload: { username: email, password } });

t.test('one address past its share of wrong passwords is refused for the account; the owner elsewhere is not', async (t) => {
  const app = await build(t, limits(100, 3));
  const org = await createOrganization(app);

  for (let i = 0; i < 3; i += 1) t.equal((await dashboardLogin(app, org.email, 'wrong password', '203.0.113.7')).statusCode, 401);
  const refused = await dashboardLogin(app, org.email, org.password, '203.0.113.7');
  t.equal(refused.statusCode, 429, 'the right password too: otherwise the refusal would tell a guesser which one was right');
  t.equal(refused.json().errors[0].type, 'tooManyRequests');
  t.equal(refused.json().errors[0].details.errorId, 'PB_TOO_MANY_WRONG_PASSWORDS');
  const retryAfter = Number(refused.headers['retry-after']);
  t.ok(retryAfter > 0 && retryAfter <= PASSWORD_FAILURE_WINDOW_MS / 1000, `Retry-After is the rest of the window (${retryAfter} s)`);

  t.equal((await dashboardLogin(app, org.email, org.password, '198.51.100.20')).statusCode, 200, 'the owner, from another address, logs in');
  const otherOrg = await createOrganization(app);
  t.equal((await dashboardLogin(app, otherOrg.email, otherOrg.password, '203.0.113.7')).statusCode, 200, 'that address, for another account, too');
  t.equal((await v1Login(app, org.email, org.password, '203.0.113.7')).statusCode, 429, 'v1 logins count against the same budget');
});

t.test('wrong passwords from many addresses together lock the account until the window ends', async (t) => {
  const app = await build(t, limits(4, 10));
  const org = await createOrganization(app);

  for (let i = 0; i < 4; i += 1) t.equal((await dashboardLogin(app, org.email, 'wrong password', `203.0.113.${i + 1}`)).statusCode, 401);
  const refused = await dashboardLogin(app, org.email, org.password, '198.51.100.20');
  t.equal(refused.statusCode, 429, 'a fifth address, even with the right password');
  const v1Refused = await v1Login(app, org.email, org.password, '198.51.100.21');
  t.equal(v1Refused.statusCode, 429);
  t.same(Object.keys(v1Refused.json()).sort(), ['message', 'status'], "in v1's error shape");

  const counters = await keysMatching(app.services.ctx.redis, `${app.services.ctx.config.keyPrefix}:{password-failures:*`);
  t.ok(counters.length > 0, 'the counters are in Redis, shared by every API process');
  t.notOk(counters.some((key) => key.includes(org.email)), 'named by a hash of the email, not the email');
  for (const key of counters) {
    const msLeft = await app.services.ctx.redis.pttl(key);
    t.ok(msLeft > 0 && msLeft <= PASSWORD_FAILURE_WINDOW_MS, `${key} ends with its window (${msLeft} ms)`);
  }

  await Promise.all(counters.map((key) => app.services.ctx.redis.pexpire(key, 1)));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal((await dashboardLogin(app, org.email, org.password, '198.51.100.20')).statusCode, 200, 'a new window, a new budget');
});

t.test('an unknown email is counted and refused like a known one', async (t) => {
  const app = await build(t, limits(100, 2));
  const org = await createOrganization(app);
  const statusesFor = async (email: string) => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await dashboardLogin(app, email, 'wrong password')).statusCode);
    return statuses;
  };
  t.same(await statusesFor('nobody@example.com'), await statusesFor(org.email), 'the same answers for both');
  t.same(await statusesFor('NOBODY2@example.com '), [401, 401, 429]);
  t.equal((await dashboardLogin(app, 'nobody2@example.com', 'wrong password')).statusCode, 429, 'counted by the email as a login reads it (trimmed, any case)');
});

t.test('a right password gives its attempt back, so frequent logins never run into the limit', async (t) => {
  const app = await build(t, limits(100, 2));
  const org = await createOrganization(app);
  for (let i = 0; i < 6; i += 1) t.equal((await v1Login(app, org.email, org.password)).statusCode, 200, `login ${i + 1}`);
  t.equal((await dashboardLogin(app, org.email, 'typo')).statusCode, 401);
  t.equal((await dashboardLogin(app, org.email, org.password)).statusCode, 200, 'one typo, then the right password');
  t.equal((await dashboardLogin(app, org.email, 'typo again')).statusCode, 401);
  t.equal((await dashboardLogin(app, org.email, org.password)).statusCode, 429, 'two typos spend this address’s share');
});

t.test("an address past its share spends nothing of the account's budget while it is refused", async (t) => {
  const app = await build(t, limits(3, 2));
  const org = await createOrganization(app);
  const guesser = '203.0.113.66';
  t.same(
    [(await dashboardLogin(app, org.email, 'guess 1', guesser)).statusCode, (await dashboardLogin(app, org.email, 'guess 2', guesser)).statusCode],
    [401, 401],
  );
  for (let i = 0; i < 10; i += 1) t.equal((await dashboardLogin(app, org.email, `guess ${i + 3}`, guesser)).statusCode, 429);
  t.equal((await dashboardLogin(app, org.email, org.password, '198.51.100.20')).statusCode, 200, 'one address alone cannot lock the owner out');
});

t.test('concurrent wrong passwords cannot slip past the limit while hashes are computed', async (t) => {
  const app = await build(t, limits(100, 3));
  const org = await createOrganization(app);
  const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => dashboardLogin(app, org.email, `guess ${i}`)));
  const statuses = responses.map((response) => response.statusCode).sort();
  t.same(statuses, [...Array<number>(3).fill(401), ...Array<number>(17).fill(429)], 'exactly three were compared');
});

t.test("a locked account still lets in its owner: from an address of theirs, and from a session re-entering the password", async (t) => {
  const app = await build(t, limits(3, 10));
  const org = await createOrganization(app);
  const home = '198.51.100.20';
  t.equal((await dashboardLogin(app, org.email, org.password, home)).statusCode, 200, 'the owner logs in from home once');
  const headers = await sessionHeaders(app, org.email, org.password);
  const recheck = (password: string) => app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers, payload: { password } });

  for (let i = 0; i < 3; i += 1) t.equal((await dashboardLogin(app, org.email, `guess ${i}`, `203.0.113.${i + 1}`)).statusCode, 401);
  t.equal((await dashboardLogin(app, org.email, org.password, '192.0.2.99')).statusCode, 429, 'locked for an address the password never came from');
  t.equal((await dashboardLogin(app, org.email, org.password, home)).statusCode, 200, 'not for the owner at home');
  t.equal((await recheck(org.password)).statusCode, 200, 'nor for their session, which can change the password meanwhile');
});

t.test("signed-in password re-checks have one address's share, for all the account's sessions together", async (t) => {
  const app = await build(t, limits(100, 2));
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const other = await sessionHeaders(app, org.email, org.password);
  const recheck = (session: typeof headers, password: string) => app.inject({ method: 'POST', url: '/dashboard/me/two-factor/view', headers: session, payload: { password } });

  t.equal((await recheck(headers, org.password)).statusCode, 200, 'the right password, given back');
  t.equal((await recheck(headers, 'guess 1')).statusCode, 403);
  t.equal((await recheck(other, 'guess 2')).statusCode, 403);
  const refused = await recheck(headers, org.password);
  t.equal(refused.statusCode, 429, 'a stolen session cannot go on guessing the password that turns two-factor off');
  t.equal(refused.json().errors[0].details.errorId, 'PB_TOO_MANY_WRONG_PASSWORDS');
  t.equal((await dashboardLogin(app, org.email, org.password, '198.51.100.20')).statusCode, 200, 'logins are counted apart');
});

t.test('a booking given back after its window ended leaves no counter behind', async (t) => {
  const app = await build(t, limits(100, 10));
  const { redis, config } = app.services.ctx;
  const pattern = `${config.keyPrefix}:{password-failures:*`;
  const isRight = await app.services.passwordAttempts.compare('someone@example.com', { address: 'ip:192.0.2.1' }, async () => {
    const booked = await keysMatching(redis, pattern);
    t.equal(booked.length, 2, 'booked on the account and on the address before the compare');
    // The window ends while the hash is computed.
    await Promise.all(booked.map((key) => redis.del(key)));
    return true;
  });
  t.equal(isRight, true);
  const left = await keysMatching(redis, pattern);
  t.same(left, [app.services.ctx.keys.passwordAttempts(sha256Hex('someone@example.com'), '').ownerAddresses], 'no counter at -1 without an expiry, which would give the account extra guesses for good');
  t.ok((await redis.pttl(left[0] ?? '')) > 0, 'the owner addresses expire');
});
