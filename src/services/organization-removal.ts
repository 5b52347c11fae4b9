/**
 * Deleting an organization (a customer who left, or a request to erase their data): afterwards nothing of it
 * is left in Redis. It leaves the reconcilers' list first, its API keys are revoked and its users removed (their
 * tokens and sessions stop working at once), then every key under its hash tag goes: credentials with their
 * sealed passwords and sessions, accounts, events, webhook endpoints, timers. Jobs of it still queued (a provider
 * step, a timer wake-up, a delivery) find nothing and end. Sends no events or webhooks: there is nobody to tell.
 */
import { errors } from '../errors.ts';
import { isId } from '../ids.ts';
import { scanAll } from '../storage/redis.ts';
import type { ApiKeyService } from './api-keys.ts';
import type { ServiceContext } from './context.ts';
import type { DashboardUserService } from './dashboard-users.ts';
import type { OrganizationService } from './organizations.ts';

export interface OrganizationRemoved {
  organizationId: string;
  apiKeysRevoked: number;
  usersRemoved: number;
  keysDeleted: number;
}

export function createOrganizationRemoval(
  ctx: ServiceContext,
  deps: { organizations: OrganizationService; apiKeys: ApiKeyService; dashboardUsers: DashboardUserService },
) {
  return {
    async remove(organizationId: string): Promise<OrganizationRemoved> {
      // The id ends up in a SCAN pattern: nothing but an organization id may get there.
      if (!isId('org', organizationId) || !(await deps.organizations.get(organizationId))) throw errors.notFound({ message: 'Organization not found' });
      await ctx.redis.srem(ctx.keys.organizations, organizationId);
      const apiKeys = await deps.apiKeys.list(organizationId);
      for (const key of apiKeys) await deps.apiKeys.revoke(organizationId, key.id);
      const usersRemoved = await deps.dashboardUsers.removeAll(organizationId);
      let keysDeleted = 0;
      for await (const batch of scanAll(ctx.redis, ctx.keys.org(organizationId).everyKey)) {
        if (batch.length > 0) keysDeleted += await ctx.redis.unlink(...batch);
      }
      return { organizationId, apiKeysRevoked: apiKeys.length, usersRemoved, keysDeleted };
    },
  };
}

export type OrganizationRemoval = ReturnType<typeof createOrganizationRemoval>;
