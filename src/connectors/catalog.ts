/**
 * The provider catalog: every utility Plugboard can connect to, and the connector that serves it.
 *
 * Adding a real utility takes two steps:
 *   1. write its connector module next to sandbox.ts, implementing `ProviderConnector` (types.ts) on top of
 *      the shared client from http.ts, and add a factory for it to `CONNECTOR_FACTORIES` below;
 *   2. add its entry to `CATALOG` with a fixed id (`prv_` + 26 characters of a–z and 2–7) that never changes
 *      once published, because integrators store it.
 * Nothing else in Plugboard names a provider or a connector.
 */
import { createProviderHttp, type ProviderHttp } from './http.ts';
import { createSandboxConnector } from './sandbox.ts';
import type { MfaMethodType, ProviderConnector } from './types.ts';

/**
 * One input of a provider's login form. `username` and `password` are the credential's own fields; any
 * other field travels in the credential's `extraFields` under its `name`.
 */
export interface LoginField {
  name: string;
  label: string;
  /** Encrypted at rest and never returned, like the password. */
  isSecret: boolean;
  isRequired: boolean;
}

/** A provider as the API shows it (SPEC §3). */
export interface Provider {
  id: string;
  name: string;
  /** ISO 3166-1 alpha-2. */
  country: string;
  loginFields: LoginField[];
  mfaMethods: MfaMethodType[];
  /** How long the provider usually honours a session after MFA; null when it does not say. */
  sessionLifetimeSeconds: number | null;
  isSandbox: boolean;
}

export interface ConnectorDeps {
  /** Where the sandbox utility site answers, e.g. `http://127.0.0.1:3001`. */
  sandboxBaseUrl: string;
  /** Shared HTTP client; pass one per process so connectors share its settings. */
  http?: ProviderHttp;
}

type ConnectorKind = 'sandbox';

const CONNECTOR_FACTORIES: Record<ConnectorKind, (deps: ConnectorDeps) => ProviderConnector> = {
  sandbox: (deps) => createSandboxConnector({ baseUrl: deps.sandboxBaseUrl, http: deps.http ?? createProviderHttp() }),
};

function usernameAndPassword(usernameLabel: string): LoginField[] {
  return [
    { name: 'username', label: usernameLabel, isSecret: false, isRequired: true },
    { name: 'password', label: 'Password', isSecret: true, isRequired: true },
  ];
}

const SANDBOX_SESSION_LIFETIME_SECONDS = 30 * 24 * 3600;

// Sandbox providers differ only in name and country: each accepts every scenario of SPEC §3.
const CATALOG: { provider: Provider; connector: ConnectorKind }[] = [
  {
    provider: {
      id: 'prv_sandboxelectricxxxxxxxxxxx',
      name: 'Sandbox Electric',
      country: 'US',
      loginFields: usernameAndPassword('Username'),
      mfaMethods: ['SMS', 'CALL', 'EMAIL', 'APP'],
      sessionLifetimeSeconds: SANDBOX_SESSION_LIFETIME_SECONDS,
      isSandbox: true,
    },
    connector: 'sandbox',
  },
  {
    provider: {
      id: 'prv_sandboxgasxxxxxxxxxxxxxxxx',
      name: 'Sandbox Gas',
      country: 'US',
      loginFields: usernameAndPassword('Username'),
      mfaMethods: ['SMS', 'CALL', 'EMAIL', 'APP'],
      sessionLifetimeSeconds: SANDBOX_SESSION_LIFETIME_SECONDS,
      isSandbox: true,
    },
    connector: 'sandbox',
  },
  {
    provider: {
      id: 'prv_sandboxenergyukxxxxxxxxxxx',
      name: 'Sandbox Energy UK',
      country: 'GB',
      loginFields: usernameAndPassword('Email address'),
      mfaMethods: ['SMS', 'CALL', 'EMAIL', 'APP'],
      sessionLifetimeSeconds: SANDBOX_SESSION_LIFETIME_SECONDS,
      isSandbox: true,
    },
    connector: 'sandbox',
  },
];

// Frozen rather than copied per call (a credential create looks its provider up): a caller that tried to
// change a provider would throw, never change the catalog.
for (const { provider } of CATALOG) {
  for (const field of provider.loginFields) Object.freeze(field);
  Object.freeze(provider.loginFields);
  Object.freeze(provider.mfaMethods);
  Object.freeze(provider);
}

export function listProviders(): Provider[] {
  return CATALOG.map((entry) => entry.provider);
}

export function findProvider(id: string): Provider | undefined {
  return CATALOG.find((candidate) => candidate.provider.id === id)?.provider;
}

export function connectorFor(provider: Provider, deps: ConnectorDeps): ProviderConnector {
  const entry = CATALOG.find((candidate) => candidate.provider.id === provider.id);
  if (!entry) throw new Error(`provider ${provider.id} is not in the catalog`);
  return CONNECTOR_FACTORIES[entry.connector](deps);
}
