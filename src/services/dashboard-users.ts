/**
 * What an organization's admins do with its dashboard users (SPEC §8). Two-factor settings are deliberately
 * absent: only the user themselves can see or change those.
 */
import { errors } from '../errors.ts';
import type { DashboardSessionService } from './dashboard-sessions.ts';
import type { OrganizationService, UserRecord, UserRole } from './organizations.ts';
import type { TwoFactorService } from './two-factor.ts';

export interface DashboardUserView {
  id: string;
  email: string;
  role: UserRole;
  createdAt: string;
}

function toView(user: UserRecord): DashboardUserView {
  return { id: user.id, email: user.email, role: user.role, createdAt: user.createdAt };
}

export function createDashboardUserService(deps: {
  organizations: OrganizationService;
  sessions: DashboardSessionService;
  twoFactor: TwoFactorService;
}) {
  /** The user's record, email, sessions and two-factor data; false when there was no such user. */
  async function removeUser(organizationId: string, userId: string): Promise<boolean> {
    const user = await deps.organizations.deleteUser(organizationId, userId);
    if (!user) return false;
    await deps.sessions.endAllForUser(user);
    await deps.twoFactor.forgetUser(user);
    return true;
  }

  return {
    async list(organizationId: string): Promise<DashboardUserView[]> {
      return (await deps.organizations.listUsers(organizationId)).map(toView);
    },

    async create(organizationId: string, input: { email: string; password: string; role: UserRole }): Promise<DashboardUserView> {
      return toView(await deps.organizations.createUser({ organizationId, ...input }));
    },

    /**
     * Sets a user's password (they may have forgotten it, or locked their two-factor login): unlocks two-factor
     * login and ends their sessions. Admins change their own with their current password instead.
     */
    async resetPassword(organizationId: string, userId: string, password: string, actingUserId: string): Promise<void> {
      if (userId === actingUserId) throw errors.conflict({ message: 'Change your own password with POST /dashboard/me/password' });
      await deps.sessions.resetPassword({ id: userId, organizationId }, password);
    },

    /** Deletes a user of the organization and ends their sessions. Admins cannot delete themselves. */
    async remove(organizationId: string, userId: string, actingUserId: string): Promise<void> {
      if (userId === actingUserId) throw errors.conflict({ message: 'You cannot delete your own user' });
      if (!(await removeUser(organizationId, userId))) throw errors.notFound({ message: 'User not found' });
    },

    /** Deletes every user of the organization (it is being deleted); how many there were. */
    async removeAll(organizationId: string): Promise<number> {
      const users = await deps.organizations.listUsers(organizationId);
      for (const user of users) await removeUser(organizationId, user.id);
      return users.length;
    },
  };
}

export type DashboardUserService = ReturnType<typeof createDashboardUserService>;
