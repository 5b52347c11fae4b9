/**
 * The contract between Plugboard and a provider connector (one module per utility website).
 *
 * A login can take minutes of human time (someone has to read an SMS), and the worker that started it may
 * die before the code arrives. So a connector keeps no state between calls: every MFA step takes and returns
 * an opaque `loginState` (for a website, typically its serialised cookie jar), and a finished login returns
 * an opaque `session`. Plugboard stores both encrypted and hands them back to whichever worker takes the
 * next step. Both strings hold provider secrets (cookies): never log them.
 */

export type MfaMethodType = 'SMS' | 'CALL' | 'EMAIL' | 'APP';

export interface MfaMethod {
  /** The provider's own id for this delivery method, stable for the lifetime of one challenge. */
  id: string;
  type: MfaMethodType;
  /** Masked as the provider shows it (`***-***-1234`, `j***@example.com`); null for an authenticator app. */
  destination: string | null;
}

export type AccountType = 'ELECTRIC' | 'GAS' | 'WATER' | 'OTHER';

export interface DiscoveredAccount {
  /** The provider's stable id for the account: the key that matches an account across syncs. */
  providerAccountId: string;
  accountNumber: string;
  name: string;
  serviceAddress: string;
  type: AccountType;
}

export type LoginOutcome =
  | {
      kind: 'connected';
      /** Opaque provider session to store encrypted and pass to `sync`. */
      session: string;
      sessionExpiresAt: string | null;
      accounts: DiscoveredAccount[];
    }
  | {
      kind: 'method_required';
      loginState: string;
      methods: MfaMethod[];
      /** When the provider forgets this challenge; null when it does not say. */
      expiresAt: string | null;
    }
  | {
      kind: 'code_required';
      loginState: string;
      methods: MfaMethod[];
      selectedMethodId: string;
      codeLength: number;
      expiresAt: string | null;
    }
  /** Wrong code; the provider keeps the challenge open, so the same `loginState` accepts another try. */
  | { kind: 'code_rejected'; loginState: string }
  /** The provider no longer knows this challenge (it timed out on its side): only a new login helps. */
  | { kind: 'challenge_expired' }
  | { kind: 'invalid_credentials'; message: string }
  /** Locked, suspended or otherwise barred by the provider: the customer has to sort it out with them. */
  | { kind: 'access_limited'; message: string };

export type SyncOutcome =
  | {
      kind: 'ok';
      accounts: DiscoveredAccount[];
      /** The session as it stands after this sync (providers may rotate cookies): store it back. */
      session: string;
      sessionExpiresAt: string | null;
    }
  /** The provider no longer honours the session (expired or revoked): a new login, and so new MFA, is needed. */
  | { kind: 'session_invalid' };

export interface LoginInput {
  username: string;
  password: string;
  /** Values of the provider's extra `loginFields`, keyed by field name. */
  extraFields: Record<string, string>;
}

/**
 * Every method either resolves with an outcome or throws one of the two errors below; anything else thrown
 * is a bug. Outcomes describe what the provider decided; errors describe failing to hear it.
 */
export interface ProviderConnector {
  login(input: LoginInput): Promise<LoginOutcome>;
  /** Ask for the code to be sent to one of the `method_required` methods. */
  chooseMethod(input: { loginState: string; methodId: string }): Promise<LoginOutcome>;
  /** Ask for a fresh code on the same challenge. */
  resendCode(input: { loginState: string; methodId: string }): Promise<LoginOutcome>;
  submitCode(input: { loginState: string; code: string }): Promise<LoginOutcome>;
  sync(input: { session: string }): Promise<SyncOutcome>;
}

/**
 * The provider could not be heard from: 502/503/504, a timeout, a refused or reset connection.
 * Transient by nature; the caller retries with backoff (SPEC: PROVIDER_WEBSITE_INACCESSIBLE).
 */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
}

/**
 * The provider answered something the connector does not understand (unknown status, malformed body,
 * unexpected redirect). Retrying rarely helps: the website probably changed and the connector needs work.
 */
export class ProviderProtocolError extends Error {
  override readonly name = 'ProviderProtocolError';
}
