import { hashPassword, randomToken, verifyPassword } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import { newId } from '../ids.ts';
import { execTransaction } from '../storage/redis.ts';
import type { ApiKeyService } from './api-keys.ts';
import type { ServiceContext } from './context.ts';
import type { PasswordAttemptGuard } from './password-attempts.ts';

export interface Organization {
  id: string;
  name: string;
  createdAt: string;
}

export type UserRole = 'admin' | 'member';

export interface UserRecord {
  id: string;
  organizationId: string;
  email: string;
  passwordHash: string;
  role: UserRole;
  createdAt: string;
}

export interface NewOrganization {
  organizationId: string;
  userId: string;
  keyId: string;
  clientId: string;
  clientSecret: string;
}

/** An email as stored and looked up: logins, sign-ups and password-guess counters all read it this way. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

const EMAIL = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
export const MIN_PASSWORD_LENGTH = 8;

function assertPasswordRules(password: string, param: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw errors.invalidParameter({ param, message: `${param} must have at least ${MIN_PASSWORD_LENGTH} characters` });
}

/**
 * An email's claim names its user and when it was made (`<orgId>:<userId>:<ms>`). One whose user does not exist
 * this long after it was made was abandoned (a sign-up or an organization's removal cut short, a user created
 * while their organization was being removed) and is free again; a younger one may belong to a sign-up still
 * writing its user.
 */
const ABANDONED_EMAIL_CLAIM_MS = 60_000;

/** An email's claim as stored; claims made before they carried a time count as made long ago. */
function parseEmailClaim(claim: string): { organizationId: string; userId: string; claimedAtMs: number } {
  const [organizationId = '', userId = '', claimedAt = '0'] = claim.split(':');
  return { organizationId, userId, claimedAtMs: Number(claimedAt) };
}

// KEYS: the email's claim. ARGV: the claim as read, the new one. Replaces it only if nobody changed it since.
const REPLACE_CLAIM_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

// KEYS: the email's claim. ARGV: '<orgId>:<userId>'. Deletes it only while it is still that user's (claims
// made before they carried a time hold just that).
const RELEASE_CLAIM_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] or (held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ':') then return redis.call('DEL', KEYS[1]) end
return 0`;

export function createOrganizationService(ctx: ServiceContext, deps: { apiKeys: ApiKeyService; passwordAttempts: PasswordAttemptGuard }) {
  const { apiKeys, passwordAttempts } = deps;
  const { redis, keys } = ctx;

  async function getUser(organizationId: string, userId: string): Promise<UserRecord | null> {
    const raw = await redis.get(keys.org(organizationId).user(userId));
    return raw ? (JSON.parse(raw) as UserRecord) : null;
  }

  /** Which organization and user an email belongs to, without reading the user. */
  async function findUserRefByEmail(email: string): Promise<Pick<UserRecord, 'id' | 'organizationId'> | null> {
    const claim = await redis.get(keys.userEmail(normalizeEmail(email)));
    if (!claim) return null;
    const { organizationId, userId } = parseEmailClaim(claim);
    return { organizationId, id: userId };
  }

  async function claimEmail(email: string, user: Pick<UserRecord, 'id' | 'organizationId'>): Promise<boolean> {
    const key = keys.userEmail(email);
    const nowMs = ctx.now().getTime();
    const claim = `${user.organizationId}:${user.id}:${nowMs}`;
    if ((await redis.set(key, claim, 'NX')) === 'OK') return true;
    const held = await redis.get(key);
    if (held === null) return (await redis.set(key, claim, 'NX')) === 'OK';
    const { organizationId, userId, claimedAtMs } = parseEmailClaim(held);
    if (nowMs - claimedAtMs < ABANDONED_EMAIL_CLAIM_MS || (await getUser(organizationId, userId))) return false;
    return (await redis.eval(REPLACE_CLAIM_SCRIPT, 1, key, held, claim)) === 1;
  }

  async function createUser(input: { organizationId: string; email: string; password: string; role: UserRole }): Promise<UserRecord> {
    const email = normalizeEmail(input.email);
    if (!EMAIL.test(email)) throw errors.invalidParameter({ param: 'email', message: 'email is not a valid address' });
    assertPasswordRules(input.password, 'password');
    const user: UserRecord = {
      id: newId('usr'),
      organizationId: input.organizationId,
      email,
      passwordHash: await hashPassword(input.password),
      role: input.role,
      createdAt: ctx.now().toISOString(),
    };
    // The email index is claimed first and atomically, so two sign-ups with one address cannot both win.
    if (!(await claimEmail(email, user))) throw errors.conflict({ param: 'email', message: 'a user with this email already exists' });
    const orgKeys = keys.org(user.organizationId);
    await redis.multi().set(orgKeys.user(user.id), JSON.stringify(user)).sadd(orgKeys.users, user.id).exec();
    return user;
  }

  return {
    createUser,

    async createOrganization(input: { name: string; email: string; password: string }): Promise<NewOrganization> {
      const name = input.name.trim();
      if (name.length === 0 || name.length > 200) throw errors.invalidParameter({ param: 'name', message: 'name must have 1 to 200 characters' });
      const organization: Organization = { id: newId('org'), name, createdAt: ctx.now().toISOString() };
      // The admin first: a refused email or password then leaves no organization record behind.
      const user = await createUser({ organizationId: organization.id, email: input.email, password: input.password, role: 'admin' });
      await redis.set(keys.org(organization.id).record, JSON.stringify(organization));
      await redis.sadd(keys.organizations, organization.id);
      const key = await apiKeys.create(organization.id, { name: 'Default key', createdBy: user.id });
      return { organizationId: organization.id, userId: user.id, keyId: key.id, clientId: key.clientId, clientSecret: key.clientSecret };
    },

    /**
     * On a first start with no organization, creates a demo one. The NX claim makes it happen once even
     * when several API processes start together against an empty Redis.
     */
    async bootstrapDemo(): Promise<(NewOrganization & { email: string; password: string }) | null> {
      if ((await redis.scard(keys.organizations)) > 0) return null;
      const claimed = await redis.set(keys.bootstrapDemoClaim, ctx.now().toISOString(), 'NX');
      if (claimed !== 'OK') return null;
      const email = 'demo@plugboard.local';
      const password = randomToken(12);
      const created = await this.createOrganization({ name: 'Demo organization', email, password });
      return { ...created, email, password };
    },

    async get(organizationId: string): Promise<Organization | null> {
      const raw = await redis.get(keys.org(organizationId).record);
      return raw ? (JSON.parse(raw) as Organization) : null;
    },

    async count(): Promise<number> {
      return redis.scard(keys.organizations);
    },

    async listIds(): Promise<string[]> {
      return redis.smembers(keys.organizations);
    },

    findUserRefByEmail,

    async findUserByEmail(email: string): Promise<UserRecord | null> {
      const ref = await findUserRefByEmail(email);
      return ref && getUser(ref.organizationId, ref.id);
    },

    getUser,

    /** Whether `password` is the user's, by the stored hash (re-read: a password changed since a session began counts). */
    async isPasswordOf(user: Pick<UserRecord, 'id' | 'organizationId'>, password: string): Promise<boolean> {
      const stored = await getUser(user.organizationId, user.id);
      return stored !== null && (await passwordAttempts.compare(stored.email, 'signed-in', () => verifyPassword(password, stored.passwordHash)));
    },

    /** Replaces the user's password; null when the user does not exist (a deleted one is not brought back). */
    async setPassword(user: Pick<UserRecord, 'id' | 'organizationId'>, password: string, param = 'password'): Promise<UserRecord | null> {
      assertPasswordRules(password, param);
      const stored = await getUser(user.organizationId, user.id);
      if (!stored) return null;
      const updated: UserRecord = { ...stored, passwordHash: await hashPassword(password) };
      const written = await redis.set(keys.org(user.organizationId).user(user.id), JSON.stringify(updated), 'XX');
      return written === 'OK' ? updated : null;
    },

    async listUsers(organizationId: string): Promise<UserRecord[]> {
      const orgKeys = keys.org(organizationId);
      const ids = await redis.smembers(orgKeys.users);
      const raws = ids.length > 0 ? await redis.mget(ids.map((id) => orgKeys.user(id))) : [];
      return raws
        .filter((raw): raw is string => raw !== null)
        .map((raw) => JSON.parse(raw) as UserRecord)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    /**
     * Removes the user record and frees its email. Sessions and two-factor data are their services' to end.
     * Null when there was no such user, or another delete removed it first: of deletes at once, one removes it
     * and the others get the answer of a delete after it.
     */
    async deleteUser(organizationId: string, userId: string): Promise<UserRecord | null> {
      const orgKeys = keys.org(organizationId);
      const raw = await redis.get(orgKeys.user(userId));
      if (!raw) return null;
      const user = JSON.parse(raw) as UserRecord;
      const [removed] = (await execTransaction(redis.multi().del(orgKeys.user(userId)).srem(orgKeys.users, userId), 'deleteUser')) as [number, number];
      if (removed === 0) return null;
      // Only while the claim is still this user's: once their record is gone, a sign-up may take the email over.
      await redis.eval(RELEASE_CLAIM_SCRIPT, 1, keys.userEmail(user.email), `${organizationId}:${userId}`);
      return user;
    },
  };
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
