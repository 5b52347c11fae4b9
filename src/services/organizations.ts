import { hashPassword, randomToken, verifyPassword } from '../crypto/hashing.ts';
import { errors } from '../errors.ts';
import { newId } from '../ids.ts';
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

export function createOrganizationService(ctx: ServiceContext, deps: { apiKeys: ApiKeyService; passwordAttempts: PasswordAttemptGuard }) {
  const { apiKeys, passwordAttempts } = deps;
  const { redis, keys } = ctx;

  async function getUser(organizationId: string, userId: string): Promise<UserRecord | null> {
    const raw = await redis.get(keys.org(organizationId).user(userId));
    return raw ? (JSON.parse(raw) as UserRecord) : null;
  }

  /** Which organization and user an email belongs to, without reading the user. */
  async function findUserRefByEmail(email: string): Promise<Pick<UserRecord, 'id' | 'organizationId'> | null> {
    const ref = await redis.get(keys.userEmail(normalizeEmail(email)));
    if (!ref) return null;
    const [organizationId, id] = ref.split(':') as [string, string];
    return { organizationId, id };
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
    const claimed = await redis.set(keys.userEmail(email), `${user.organizationId}:${user.id}`, 'NX');
    if (claimed !== 'OK') throw errors.conflict({ param: 'email', message: 'a user with this email already exists' });
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
      // A signed-in user re-entering their password: only the account's budget counts (the session is theirs).
      return stored !== null && (await passwordAttempts.compare(stored.email, null, () => verifyPassword(password, stored.passwordHash)));
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

    /** Removes the user record and frees its email. Sessions and two-factor data are their services' to end. */
    async deleteUser(organizationId: string, userId: string): Promise<UserRecord | null> {
      const orgKeys = keys.org(organizationId);
      const raw = await redis.get(orgKeys.user(userId));
      if (!raw) return null;
      const user = JSON.parse(raw) as UserRecord;
      await redis.multi().del(orgKeys.user(userId)).srem(orgKeys.users, userId).exec();
      await redis.del(keys.userEmail(user.email));
      return user;
    },
  };
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
