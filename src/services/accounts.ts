/**
 * The utility accounts found behind a credential. An account keeps its `acc_` id for as long as the
 * provider keeps showing it under the same provider account id, however often we sync; an account the
 * provider stops showing is kept and marked inactive, so integrators never see an id vanish.
 *
 * Account writes ride along in the credential's own commit (the `mutations*` functions), so the accounts
 * always match the credential state that found them.
 */
import type { AccountType, DiscoveredAccount } from '../connectors/types.ts';
import type { CredentialRecord } from '../domain/credential-state.ts';
import { errors } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Mutation } from '../storage/event-log.ts';
import { getMany } from '../storage/redis.ts';
import type { ServiceContext } from './context.ts';
import { pageOf, pageOfCreationIndex, paginate, type Page, type PageRequest } from './pagination.ts';

export interface AccountRecord {
  id: string;
  organizationId: string;
  credentialId: string;
  providerId: string;
  providerAccountId: string;
  accountNumber: string;
  name: string;
  serviceAddress: string;
  type: AccountType;
  /** False once the provider no longer shows the account. */
  isActive: boolean;
  createdAt: string;
  lastSyncedAt: string;
}

export type AccountView = Omit<AccountRecord, 'organizationId'>;
export type AccountSortField = 'createdAt' | 'lastSyncedAt';
export const ACCOUNT_SORT_FIELDS: readonly AccountSortField[] = ['createdAt', 'lastSyncedAt'];

function toView({ organizationId: _org, ...view }: AccountRecord): AccountView {
  return view;
}

export function createAccountService(ctx: ServiceContext) {
  const { redis, keys } = ctx;

  async function idMap(organizationId: string, credentialId: string): Promise<Record<string, string>> {
    const raw = await redis.get(keys.org(organizationId).credentialAccounts(credentialId));
    return raw ? (JSON.parse(raw) as Record<string, string>) : {};
  }

  async function loadMany(organizationId: string, accountIds: string[]): Promise<AccountRecord[]> {
    if (accountIds.length === 0) return [];
    const orgKeys = keys.org(organizationId);
    const raws = await getMany(redis, accountIds.map((id) => orgKeys.account(id)));
    return raws.filter((raw): raw is string => raw !== null).map((raw) => JSON.parse(raw) as AccountRecord);
  }

  return {
    /** Writes for what a login or sync discovered: new accounts get ids, known ones keep theirs. */
    async mutationsForDiscovery(credential: CredentialRecord, discovered: DiscoveredAccount[], now: Date): Promise<Mutation[]> {
      const orgKeys = keys.org(credential.organizationId);
      const ids = await idMap(credential.organizationId, credential.id);
      const existing = new Map((await loadMany(credential.organizationId, Object.values(ids))).map((account) => [account.id, account]));
      const seen = new Set<string>();
      const mutations: Mutation[] = [];
      const syncedAt = now.toISOString();
      for (const account of discovered) {
        const id = ids[account.providerAccountId] ?? newId('acc');
        ids[account.providerAccountId] = id;
        seen.add(id);
        const previous = existing.get(id);
        const record: AccountRecord = {
          id,
          organizationId: credential.organizationId,
          credentialId: credential.id,
          providerId: credential.providerId,
          ...account,
          isActive: true,
          createdAt: previous?.createdAt ?? syncedAt,
          lastSyncedAt: syncedAt,
        };
        mutations.push({ op: 'set', key: orgKeys.account(id), value: JSON.stringify(record) });
        if (!previous) mutations.push({ op: 'zadd', key: orgKeys.accounts, score: now.getTime(), member: id });
      }
      for (const [id, account] of existing) {
        if (!seen.has(id) && account.isActive) {
          mutations.push({ op: 'set', key: orgKeys.account(id), value: JSON.stringify({ ...account, isActive: false }) });
        }
      }
      mutations.push({ op: 'set', key: orgKeys.credentialAccounts(credential.id), value: JSON.stringify(ids) });
      return mutations;
    },

    /** Writes that remove a deleted credential's accounts. */
    async mutationsForDeletion(organizationId: string, credentialId: string): Promise<Mutation[]> {
      const orgKeys = keys.org(organizationId);
      const accountIds = Object.values(await idMap(organizationId, credentialId));
      return [
        ...accountIds.flatMap((id): Mutation[] => [
          { op: 'del', key: orgKeys.account(id) },
          { op: 'zrem', key: orgKeys.accounts, member: id },
        ]),
        { op: 'del', key: orgKeys.credentialAccounts(credentialId) },
      ];
    },

    async list(
      organizationId: string,
      request: PageRequest<AccountSortField> & { credentialId?: string },
    ): Promise<Page<AccountView>> {
      if (request.credentialId === undefined && request.sort.field === 'createdAt') {
        const { ids, totalElements } = await pageOfCreationIndex(redis, keys.org(organizationId).accounts, request);
        return pageOf((await loadMany(organizationId, ids)).map(toView), request, totalElements);
      }
      // A credential's own id map names its accounts: no need to read the organization's.
      const ids =
        request.credentialId === undefined
          ? await redis.zrange(keys.org(organizationId).accounts, 0, -1)
          : Object.values(await idMap(organizationId, request.credentialId));
      return paginate((await loadMany(organizationId, ids)).map(toView), request);
    },

    async get(organizationId: string, accountId: string): Promise<AccountView> {
      const [account] = await loadMany(organizationId, [accountId]);
      if (!account) throw errors.notFound({ message: 'Account not found' });
      return toView(account);
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
