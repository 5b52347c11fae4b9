/**
 * HAL+JSON for the legacy v1 API (SPEC §7): current-API objects in, v1 resources out. Every link is absolute,
 * built on the configured public URL, because v1 clients follow `_links` as they are.
 */
import { findProvider, type Provider } from '../connectors/catalog.ts';
import { TRANSITIONS, type CredentialView, type InputKind } from '../domain/credential-state.ts';
import type { AccountView } from '../services/accounts.ts';
import type { Page } from '../services/pagination.ts';
import type { V1Account, V1Credential, V1Link, V1PageLinks, V1PageMetadata, V1Provider } from './schemas.ts';
import { needsMfa, toV1Status } from './status-mapping.ts';

/** What a client that asks for HAL by name gets as the Content-Type of a v1 resource. */
export const HAL_MEDIA_TYPE = 'application/hal+json';

/**
 * Whether an Accept header asks for HAL by name at least as much as for plain JSON (RFC 9110 §12.5.1
 * quality values; `q=0` means "not this"). Wildcards ask for neither: those clients keep plain JSON.
 */
export function prefersHal(accept: string | undefined): boolean {
  const quality = (mediaType: string) => {
    let best = 0;
    for (const range of (accept ?? '').split(',')) {
      const [type = '', ...parameters] = range.split(';').map((part) => part.trim().toLowerCase());
      if (type !== mediaType) continue;
      const q = parameters.find((parameter) => parameter.startsWith('q='));
      const value = q === undefined ? 1 : Number(q.slice(2));
      if (Number.isFinite(value)) best = Math.max(best, Math.min(value, 1));
    }
    return best;
  };
  const hal = quality(HAL_MEDIA_TYPE);
  return hal > 0 && hal >= quality('application/json');
}

export function legacyUrls(publicUrl: string) {
  const v1 = `${publicUrl}/v1/utility`;
  return {
    providers: `${v1}/providers`,
    credentials: `${v1}/credentials`,
    accounts: `${v1}/accounts`,
    provider: (id: string) => `${v1}/providers/${id}`,
    credential: (id: string) => `${v1}/credentials/${id}`,
    credentialAccounts: (id: string) => `${v1}/credentials/${id}/accounts`,
    account: (id: string) => `${v1}/accounts/${id}`,
    /** The same credential in the current API, where its MFA is resolved. */
    currentCredential: (id: string) => `${publicUrl}/plug/credentials/${id}`,
  };
}

export type LegacyUrls = ReturnType<typeof legacyUrls>;

const link = (href: string): V1Link => ({ href });

export interface HalPage<Rel extends string, T> {
  _embedded: Record<Rel, T[]>;
  _links: V1PageLinks;
  page: V1PageMetadata;
}

/**
 * A page of the current API as a HAL collection. The navigation links repeat the request's other query
 * parameters (`search`, `size`), so following `next` walks the same filtered list.
 */
export function halPage<Rel extends string, T>(
  rel: Rel,
  { data, page }: Page<T>,
  request: { collectionUrl: string; query: Record<string, string> },
): HalPage<Rel, T> {
  const last = Math.max(page.totalPages - 1, 0);
  const pageLink = (number: number) => {
    const params = new URLSearchParams({ ...request.query, page: String(number), size: String(page.size) });
    return link(`${request.collectionUrl}?${params.toString()}`);
  };
  return {
    _embedded: { [rel]: data } as Record<Rel, T[]>,
    _links: {
      self: pageLink(page.number),
      ...(page.number < last ? { next: pageLink(page.number + 1) } : {}),
      ...(page.number > 0 ? { prev: pageLink(Math.min(page.number - 1, last)) } : {}),
      last: pageLink(last),
    },
    page: { size: page.size, totalElements: page.totalElements, totalPages: page.totalPages, number: page.number },
  };
}

export function toV1Provider(provider: Provider, urls: LegacyUrls): V1Provider {
  return {
    entityId: provider.id,
    providerName: provider.name,
    country: provider.country,
    _links: { self: link(urls.provider(provider.id)) },
  };
}

/** Credentials and accounts only ever name catalog providers, whose ids never change once published. */
function catalogProvider(providerId: string): Provider {
  const provider = findProvider(providerId);
  if (!provider) throw new Error(`provider ${providerId} is not in the catalog`);
  return provider;
}

/**
 * The current API's MFA calls, each offered while the state machine accepts it, so a client is shown
 * only what it can do now (e.g. `refresh`, not `oneTimePasscode`, once the challenge has timed out).
 */
const MFA_CALLS: { name: string; input: InputKind; title: string }[] = [
  { name: 'verificationMethod', input: 'choose_method', title: 'PUT { challengeId, methodId, isResubmission? }: choose where the code goes' },
  { name: 'oneTimePasscode', input: 'submit_code', title: 'PUT { challengeId, code }: submit the code' },
  { name: 'refresh', input: 'refresh', title: 'POST: start a new login, and so a new challenge' },
];

function mfaLinks(credential: CredentialView, urls: LegacyUrls): V1Link[] {
  const base = urls.currentCredential(credential.id);
  return [
    { name: 'credential', href: base, title: 'GET: the open challenge (mfa.challengeId, mfa.availableMethods)' },
    { name: 'connectLink', href: `${base}/connectLink`, title: 'POST: a link to the hosted MFA page, for your customer to answer it there' },
    ...MFA_CALLS.filter((call) => TRANSITIONS[call.input].from.includes(credential.statusDetail)).map((call) => ({
      name: call.name,
      href: `${base}/${call.name}`,
      title: call.title,
    })),
  ];
}

export function toV1Credential(credential: CredentialView, urls: LegacyUrls): V1Credential {
  const provider = catalogProvider(credential.providerId);
  const v1Status = toV1Status(credential.status, credential.statusDetail);
  return {
    entityId: credential.id,
    username: credential.username,
    correlationId: credential.correlationId,
    providerName: provider.name,
    providerId: provider.id,
    enabled: credential.isActive,
    status: v1Status.status,
    statusDetail: v1Status.statusDetail,
    created: credential.createdAt,
    lastModified: credential.lastModifiedAt,
    createdBy: credential.createdBy,
    lastModifiedBy: credential.lastModifiedBy,
    mock: provider.isSandbox,
    _links: {
      self: link(urls.credential(credential.id)),
      accounts: link(urls.credentialAccounts(credential.id)),
      ...(needsMfa(v1Status) ? { mfa: mfaLinks(credential, urls) } : {}),
    },
  };
}

export function toV1Account(account: AccountView, urls: LegacyUrls): V1Account {
  const provider = catalogProvider(account.providerId);
  return {
    entityId: account.id,
    credentialId: account.credentialId,
    providerId: provider.id,
    providerName: provider.name,
    accountNumber: account.accountNumber,
    name: account.name,
    serviceAddress: account.serviceAddress,
    type: account.type,
    enabled: account.isActive,
    created: account.createdAt,
    lastModified: account.lastSyncedAt,
    mock: provider.isSandbox,
    _links: { self: link(urls.account(account.id)), credential: link(urls.credential(account.credentialId)) },
  };
}
