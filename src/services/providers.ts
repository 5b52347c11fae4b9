/**
 * The provider catalog as both APIs list it. The catalog has no timestamps, so a list is by name, which is
 * what a client shows a person.
 */
import { findProvider, listProviders, type Provider } from '../connectors/catalog.ts';
import { errors } from '../errors.ts';
import { paginate, type Page, type PageRequest } from './pagination.ts';

export type ProviderSortField = 'name';
export const PROVIDER_SORT_FIELDS: readonly ProviderSortField[] = ['name'];

export function pageOfProviders(request: PageRequest<ProviderSortField>): Page<Provider> {
  return paginate(listProviders(), request);
}

export function getProvider(providerId: string): Provider {
  const provider = findProvider(providerId);
  if (!provider) throw errors.notFound({ message: 'Provider not found' });
  return provider;
}
