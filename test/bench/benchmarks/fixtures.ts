import { listProviders } from '../../../src/connectors/catalog.ts';

/** The first sandbox provider of the catalog: every benchmark logs in to the built-in sandbox site. */
export const SANDBOX_PROVIDER_ID = listProviders().find((provider) => provider.isSandbox)?.id ?? 'prv_sandbox-missing';
