/**
 * Dashboard sessions (SPEC §8): a login with email and password, then the second factor when the user has one.
 *
 * A session token is `pbd_` + 256 random bits, handed out once; Redis keeps only its SHA-256 (like access
 * tokens), with the session's owner and expiry. Each user's token hashes are also listed in a sorted set under
 * the organization, so every session of a user can be ended at once (recovery-code login, user deletion).
 */
import { hashPassword, randomToken, sha256Hex, verifyPassword } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import type { ServiceContext } from './context.ts';
import type { OrganizationService, UserRecord } from './organizations.ts';
import type { PasswordAttemptGuard } from './password-attempts.ts';
import type { LoginChallengeView, LoginProof, TwoFactorService } from './two-factor.ts';

export const DASHBOARD_SESSION_TTL_SECONDS = 12 * 60 * 60;
const SESSION_TOKEN_PREFIX = 'pbd_';

export interface DashboardSessionRecord {
  userId: string;
  organizationId: string;
  createdAt: string;
  expiresAt: string;
}

export interface SessionGrant {
  token: string;
  expiresAt: string;
}

export type LoginResult = { session: SessionGrant } | { twoFactorRequired: true; challenge: LoginChallengeView };

/** A user whose password was just checked, and how many times their sessions had been ended before the check. */
export interface CheckedLogin {
  user: UserRecord;
  sessionsEndedBefore: string;
}

/**
 * Moves the sessions-ended mark forward; returns it before and after. The mark expires with the sessions it
 * guards, and starts again from the clock, never from 1: a mark a login saw before the expiry is never seen again.
 * KEYS: the mark. ARGV: now ms, TTL ms.
 */
const MOVE_ENDED_MARK_SCRIPT = `
local before = redis.call('GET', KEYS[1]) or '0'
local after = string.format('%d', math.max(tonumber(before) + 1, tonumber(ARGV[1])))
redis.call('SET', KEYS[1], after, 'PX', ARGV[2])
return { before, after }`;

/**
 * Lists a new session unless the user's sessions were ended since its login was checked (the mark moved):
 * a password reset or two-factor turned on must not be outlived by a login that passed the old checks.
 * KEYS: the user's session list, their sessions-ended mark. ARGV: now ms, expiry ms, token hash, list TTL ms,
 * the mark the login saw.
 */
const LIST_SESSION_SCRIPT = `
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

export interface CompletedLogin {
  session: SessionGrant;
  /** A recovery code was used: two-factor is now off and the user's other sessions have ended. */
  twoFactorDisabled: boolean;
}

export interface AuthenticatedSession {
  user: UserRecord;
  session: DashboardSessionRecord;
  /** What names the session in the user's list (its token's hash). */
  tokenHash: string;
}

export function createDashboardSessionService(
  ctx: ServiceContext,
  deps: { organizations: OrganizationService; twoFactor: TwoFactorService; passwordAttempts: PasswordAttemptGuard },
) {
  const { redis, keys } = ctx;
  let decoyHash: Promise<string> | undefined;

  async function start({ user, sessionsEndedBefore }: CheckedLogin): Promise<SessionGrant> {
    const token = `${SESSION_TOKEN_PREFIX}${randomToken(32)}`;
    const tokenHash = sha256Hex(token);
    const now = ctx.now();
    const expiresAt = new Date(now.getTime() + DASHBOARD_SESSION_TTL_SECONDS * 1000);
    const record: DashboardSessionRecord = {
      userId: user.id,
      organizationId: user.organizationId,
      createdAt: now.toISOString(),
      expiresAt: expiresAt.toISOString(),
    };
    const orgKeys = keys.org(user.organizationId);
    const userSessions = orgKeys.userSessions(user.id);
    const sessionKey = keys.dashboardSession(tokenHash);
    const ttlMs = DASHBOARD_SESSION_TTL_SECONDS * 1000;
    const keysAndArgs = [userSessions, orgKeys.userSessionsEnded(user.id), now.getTime(), expiresAt.getTime(), tokenHash, ttlMs, sessionsEndedBefore];
    if ((await redis.eval(LIST_SESSION_SCRIPT, 2, ...keysAndArgs)) !== 1) throw errors.sessionInvalid();
    // The list and the session key are in different hash slots, so no transaction holds both. Listed first,
    // then created, then checked to be still listed: a session that ending the user's sessions (which unlists
    // before it deletes) took off the list meanwhile is deleted here, and one it did not see stays listed.
    await redis.set(sessionKey, JSON.stringify(record), 'EX', DASHBOARD_SESSION_TTL_SECONDS);
    if ((await redis.zscore(userSessions, tokenHash)) === null) {
      await redis.del(sessionKey);
      throw errors.sessionInvalid();
    }
    return { token, expiresAt: record.expiresAt };
  }

  async function sessionsEndedMark(user: Pick<UserRecord, 'id' | 'organizationId'>): Promise<string> {
    return (await redis.get(keys.org(user.organizationId).userSessionsEnded(user.id))) ?? '0';
  }

  /**
   * Ends every session of the user (v1 tokens included), but the one named by `exceptTokenHash`. Returns the
   * sessions-ended mark before and after this end.
   */
  async function endAllForUser(user: Pick<UserRecord, 'id' | 'organizationId'>, exceptTokenHash?: string): Promise<{ before: string; after: string }> {
    const orgKeys = keys.org(user.organizationId);
    const userSessions = orgKeys.userSessions(user.id);
    // Marked first: a login checked before this point cannot list a session after it (see `start`).
    const [before, after] = (await redis.eval(MOVE_ENDED_MARK_SCRIPT, 1, orgKeys.userSessionsEnded(user.id), ctx.now().getTime(), DASHBOARD_SESSION_TTL_SECONDS * 1000)) as [
      string,
      string,
    ];
    const tokenHashes = (await redis.zrange(userSessions, 0, -1)).filter((tokenHash) => tokenHash !== exceptTokenHash);
    if (tokenHashes.length === 0) return { before, after };
    // Unlisted before deleted: see `start`, which is being run concurrently by other logins.
    await redis.zrem(userSessions, ...tokenHashes);
    // Session keys live outside the organization's hash tag: one DEL each keeps this Redis Cluster safe.
    await Promise.all(tokenHashes.map((tokenHash) => redis.del(keys.dashboardSession(tokenHash))));
    return { before, after };
  }

  /**
   * The user with this email and password, or null; a 429 once the email's wrong passwords (from `address`, or
   * from everywhere) are too many (see password-attempts). Unknown emails cost a password hash and count as
   * known ones do, so neither response times nor refusals reveal which addresses have accounts. The
   * sessions-ended mark is read before the record whose password hash is checked, so a password reset
   * between the two cannot let the old password in.
   */
  async function checkPassword(email: string, password: string, address: string): Promise<CheckedLogin | null> {
    const found = await deps.organizations.findUserRefByEmail(email);
    const sessionsEndedBefore = found ? await sessionsEndedMark(found) : '0';
    const user = found && (await deps.organizations.getUser(found.organizationId, found.id));
    decoyHash ??= hashPassword(randomToken(16));
    const passwordHash = user ? user.passwordHash : await decoyHash;
    const matches = await deps.passwordAttempts.compare(email, { address }, () => verifyPassword(password, passwordHash));
    return user && matches ? { user, sessionsEndedBefore } : null;
  }

  /**
   * A new password: two-factor login unlocked (the SPEC's remedy for a lock), and every session ended but
   * `exceptTokenHash`'s, since whoever reset it may have lost the old one to someone.
   */
  async function resetPassword(user: Pick<UserRecord, 'id' | 'organizationId'>, password: string, exceptTokenHash?: string, param?: string): Promise<void> {
    if (!(await deps.organizations.setPassword(user, password, param))) throw errors.notFound({ message: 'User not found' });
    await deps.twoFactor.clearLockout(user);
    await endAllForUser(user, exceptTokenHash);
  }

  async function authenticate(token: string): Promise<AuthenticatedSession> {
    if (!token.startsWith(SESSION_TOKEN_PREFIX)) throw errors.sessionInvalid();
    const tokenHash = sha256Hex(token);
    const raw = await redis.get(keys.dashboardSession(tokenHash));
    const session = raw ? (JSON.parse(raw) as DashboardSessionRecord) : null;
    if (!session || Date.parse(session.expiresAt) <= ctx.now().getTime()) throw errors.sessionInvalid();
    const user = await deps.organizations.getUser(session.organizationId, session.userId);
    if (!user) throw errors.sessionInvalid();
    return { user, session, tokenHash };
  }

  /** Where no second factor can be asked (v1), users with two-factor on are refused. */
  async function refuseTwoFactorUsers(user: UserRecord): Promise<void> {
    if (await deps.twoFactor.isEnabled(user)) throw errors.twoFactorUnsupported();
  }

  return {
    checkPassword,

    /** The last step of every login below, once all it asks for is checked; on its own only in tests of its races. */
    startSession: start,

    /**
     * A session from the password alone, for a login that cannot ask for a second factor (v1's
     * `POST /v1/auth/login`): users with two-factor on are refused, after the password check, so the refusal
     * tells a guesser nothing.
     */
    async loginWithPasswordOnly(email: string, password: string, address: string): Promise<SessionGrant> {
      const checked = await checkPassword(email, password, address);
      if (!checked) throw errors.loginFailed();
      await refuseTwoFactorUsers(checked.user);
      return start(checked);
    },

    /** Step 1: a session, or a two-factor challenge to answer with `verifyLogin`. */
    async login(email: string, password: string, address: string): Promise<LoginResult> {
      const checked = await checkPassword(email, password, address);
      if (!checked) throw errors.loginFailed();
      const challenge = await deps.twoFactor.startLoginChallenge(checked.user, checked.sessionsEndedBefore);
      if (challenge) return { twoFactorRequired: true, challenge };
      return { session: await start(checked) };
    },

    /**
     * Step 2: the app or SMS code, or a recovery code. A recovery code turns two-factor off (as the help article
     * this product follows describes) and ends the user's other sessions, since whoever lost their phone may
     * have lost it to someone.
     */
    async verifyLogin(challengeId: string, proof: LoginProof): Promise<CompletedLogin> {
      const verified = await deps.twoFactor.verifyLogin(challengeId, proof);
      const user = await deps.organizations.getUser(verified.organizationId, verified.userId);
      if (!user) throw errors.loginChallengeInvalid();
      // Sessions ended since the password was checked (a reset, a recovery-code login on another challenge) end
      // this login too, as they do a password-only one: `start` compares the mark the password check saw.
      let { sessionsEndedBefore } = verified;
      if (verified.usedRecoveryCode) {
        const ended = await endAllForUser(user);
        // This end is the login's own; any other since the password check still voids it.
        if (ended.before !== sessionsEndedBefore) throw errors.sessionInvalid();
        sessionsEndedBefore = ended.after;
      }
      return { session: await start({ user, sessionsEndedBefore }), twoFactorDisabled: verified.usedRecoveryCode };
    },

    authenticate,

    /** `authenticate` for sessions from `loginWithPasswordOnly`: two-factor may have been turned on since. */
    async authenticatePasswordOnly(token: string): Promise<AuthenticatedSession> {
      const authenticated = await authenticate(token);
      await refuseTwoFactorUsers(authenticated.user);
      return authenticated;
    },

    /** Ends one session. Unknown or expired tokens are fine: the outcome is the same. */
    async logout(token: string): Promise<void> {
      const tokenHash = sha256Hex(token);
      const raw = await redis.get(keys.dashboardSession(tokenHash));
      if (!raw) return;
      const session = JSON.parse(raw) as DashboardSessionRecord;
      await redis.del(keys.dashboardSession(tokenHash));
      await redis.zrem(keys.org(session.organizationId).userSessions(session.userId), tokenHash);
    },

    endAllForUser,

    /**
     * Confirms an app or SMS enrollment, which turns two-factor on; the user's other sessions, opened with the
     * password alone, end (an attacker holding one could otherwise turn it off again with the password).
     */
    async confirmTwoFactor(current: AuthenticatedSession, method: 'APP' | 'SMS', code: string): Promise<{ recoveryCodes: string[] }> {
      const confirmed =
        method === 'APP' ? await deps.twoFactor.confirmAppEnrollment(current.user, code) : await deps.twoFactor.confirmSmsEnrollment(current.user, code);
      await endAllForUser(current.user, current.tokenHash);
      return confirmed;
    },

    /** The signed-in user changes their password; this session stays, the others end. */
    async changePassword(current: AuthenticatedSession, currentPassword: string, newPassword: string): Promise<void> {
      if (!(await deps.organizations.isPasswordOf(current.user, currentPassword))) throw errors.passwordIncorrect({ param: 'currentPassword' });
      await resetPassword(current.user, newPassword, current.tokenHash, 'newPassword');
    },

    /** An admin (or the operator's CLI) sets a user's password: every session of the user ends. */
    async resetPassword(user: Pick<UserRecord, 'id' | 'organizationId'>, password: string): Promise<void> {
      await resetPassword(user, password);
    },
  };
}

export type DashboardSessionService = ReturnType<typeof createDashboardSessionService>;
