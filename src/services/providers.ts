/**
 * The provider catalog as both APIs list it. The catalog has no timestamps, so a list is by name, which is
 * what a client shows a person.
 */
import { listProviders, type Provider } from '../connectors/catalog.ts';
import { paginate, type Page, type PageRequest } from './pagination.ts';

export type ProviderSortField = 'name';
export const PROVIDER_SORT_FIELDS: readonly ProviderSortField[] = ['name'];

export function pageOfProviders(request: PageRequest<ProviderSortField>): Page<Provider> {
  return paginate(listProviders(), request);
}
