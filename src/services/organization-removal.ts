/**
 * Deleting an organization (a customer who left, or a request to erase their data): afterwards nothing of it
 * is left in Redis. It leaves the reconcilers' list first, its API keys are revoked and its users removed (their
 * tokens and sessions stop working at once), then every key under its hash tag goes: credentials with their
 * sealed passwords and sessions, accounts, events, webhook endpoints, timers. Jobs of it still queued (a provider
 * step, a timer wake-up, a delivery) find nothing and end. Sends no events or webhooks: there is nobody to tell.
 *
 * Work already under way as the sweep runs can write after it: a request authenticated just before the keys
 * were revoked, a delivery being answered, a provider step. So the organization is swept again, by the
 * workers' reconciler, `SWEEPS_AFTER_REMOVAL_MS` later, once all of that has long ended. Those sweeps are
 * booked before the first one runs, so a removal cut short by a crash is finished by them too (its users' emails,
 * outside the tag, are freed by `createUser` once their claims are abandoned).
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

/** When a removed organization is swept again: after anything in flight (at most minutes); then a last time. */
export const SWEEPS_AFTER_REMOVAL_MS = [5 * 60_000, 60 * 60_000] as const;

/** Sweeps run per reconciler pass at most; the rest wait for the next pass. */
const MAX_SWEEPS_PER_PASS = 10;

export function createOrganizationRemoval(
  ctx: ServiceContext,
  deps: { organizations: OrganizationService; apiKeys: ApiKeyService; dashboardUsers: DashboardUserService },
) {
  const { redis, keys } = ctx;

  /** Deletes every key under the organization's hash tag; how many there were. */
  async function sweep(organizationId: string): Promise<number> {
    let keysDeleted = 0;
    for await (const batch of scanAll(redis, keys.org(organizationId).everyKey)) {
      if (batch.length > 0) keysDeleted += await redis.unlink(...batch);
    }
    return keysDeleted;
  }

  return {
    async remove(organizationId: string): Promise<OrganizationRemoved> {
      // The id ends up in a SCAN pattern: nothing but an organization id may get there.
      if (!isId('org', organizationId) || !(await deps.organizations.get(organizationId))) throw errors.notFound({ message: 'Organization not found' });
      const removedAt = ctx.now().getTime();
      await redis.zadd(keys.organizationSweepsDue, ...SWEEPS_AFTER_REMOVAL_MS.flatMap((delayMs, index) => [removedAt + delayMs, `${organizationId}@${index + 1}`]));
      await redis.srem(keys.organizations, organizationId);
      const apiKeys = await deps.apiKeys.list(organizationId);
      for (const key of apiKeys) await deps.apiKeys.revoke(organizationId, key.id);
      const usersRemoved = await deps.dashboardUsers.removeAll(organizationId);
      const keysDeleted = await sweep(organizationId);
      return { organizationId, apiKeysRevoked: apiKeys.length, usersRemoved, keysDeleted };
    },

    /**
     * Runs the sweeps of removed organizations that are due; how many keys they found (written after the
     * removal's own sweep). Any number of processes may run it at once: a sweep run twice finds nothing more.
     */
    async sweepDue(): Promise<{ sweeps: number; keysDeleted: number }> {
      const due = await redis.zrangebyscore(keys.organizationSweepsDue, '-inf', ctx.now().getTime(), 'LIMIT', 0, MAX_SWEEPS_PER_PASS);
      let keysDeleted = 0;
      for (const sweepId of due) {
        keysDeleted += await sweep(sweepId.slice(0, sweepId.lastIndexOf('@')));
        await redis.zrem(keys.organizationSweepsDue, sweepId);
      }
      return { sweeps: due.length, keysDeleted };
    },
  };
}

export type OrganizationRemoval = ReturnType<typeof createOrganizationRemoval>;
