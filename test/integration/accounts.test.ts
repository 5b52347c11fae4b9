import t from 'tap';
import type { DiscoveredAccount } from '../../src/connectors/types.ts';
import type { CredentialRecord } from '../../src/domain/credential-state.ts';
import { legacyUrls, toV1Account } from '../../src/legacy/hal.ts';
import { SANDBOX_PROVIDER } from '../credentials-helper.ts';
import { build, createOrganization } from '../helper.ts';

t.test('a sync keeps ids and creation times, and an account the provider stopped showing stays, inactive', async (t) => {
  const app = await build(t);
  const { accounts, events } = app.services;
  const { organizationId } = await createOrganization(app);
  const credential = { id: 'crd_accounts', organizationId, providerId: SANDBOX_PROVIDER } as CredentialRecord;
  const account = (providerAccountId: string): DiscoveredAccount => ({ providerAccountId, accountNumber: providerAccountId, name: 'Home', serviceAddress: '1 Main St', type: 'ELECTRIC' });
  const discover = async (found: DiscoveredAccount[], at: Date) =>
    events.store.commit({ organizationId, mutations: await accounts.mutationsForDiscovery(credential, found, at), events: [] }, at);

  const firstSync = new Date('2026-01-01T00:00:00.000Z');
  await discover([account('A'), account('B')], firstSync);
  const before = (await accounts.list(organizationId, { page: 0, size: 10, sort: { field: 'createdAt', direction: 'asc' }, credentialId: credential.id })).data;
  const laterSync = new Date('2026-01-02T00:00:00.000Z');
  await discover([account('A')], laterSync);
  const after = (await accounts.list(organizationId, { page: 0, size: 10, sort: { field: 'createdAt', direction: 'asc' }, credentialId: credential.id })).data;

  const byNumber = (list: typeof after, number: string) => list.find((a) => a.accountNumber === number);
  t.equal(byNumber(after, 'A')?.id, byNumber(before, 'A')?.id, 'same id');
  t.match(byNumber(after, 'A'), { isActive: true, createdAt: firstSync.toISOString(), lastSyncedAt: laterSync.toISOString() }, 'created at the first sync, synced at the last');
  t.match(byNumber(after, 'B'), { id: byNumber(before, 'B')?.id, isActive: false }, 'B is kept, inactive');
  const v1 = toV1Account(byNumber(after, 'B')!, legacyUrls('https://api.example.com'));
  t.equal(v1.enabled, false, 'and v1 says so');
});
