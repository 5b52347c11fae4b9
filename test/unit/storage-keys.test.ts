import t from 'tap';
import { createKeys } from '../../src/storage/keys.ts';

t.test("every key of an organization carries its hash tag, so one Lua call or MULTI may touch any of them on Redis Cluster", async (t) => {
  const orgId = 'org_aaaaaaaaaaaaaaaaaaaaaaaaaa';
  const orgKeys = createKeys('pb').org(orgId);
  const keysOf = (value: unknown): string[] => {
    if (typeof value === 'string') return [value];
    if (typeof value === 'function') return keysOf((value as (id: string) => unknown)('id_x'));
    if (value && typeof value === 'object') return Object.values(value).flatMap(keysOf);
    return [];
  };
  const all = Object.entries(orgKeys).flatMap(([name, value]) => keysOf(value).map((key) => [name, key] as const));
  t.ok(all.length > 30, `${all.length} keys checked`);
  for (const [name, key] of all) t.ok(key.startsWith(`pb:{${orgId}}:`), `${name}: ${key}`);
});
