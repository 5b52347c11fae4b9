/**
 * The connector for the sandbox utility site (src/sandbox/site.ts), reached only over HTTP at `baseUrl`,
 * exactly as a connector for a real utility would reach its website. The site's vocabulary (channels,
 * commodities, statuses) is translated into the connector contract here.
 *
 * The site keeps an MFA challenge behind a pre-login cookie and a login behind a session cookie, so both
 * `loginState` and `session` are simply the serialised cookie jar.
 */
import { CookieJar, type SerializedCookie, type SerializedCookieJar } from 'tough-cookie';
import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { createProviderHttp, type ProviderHttp } from './http.ts';
import {
  ProviderProtocolError,
  type AccountType,
  type DiscoveredAccount,
  type LoginOutcome,
  type MfaMethod,
  type MfaMethodType,
  type ProviderConnector,
} from './types.ts';

const SESSION_COOKIE = 'sbx_session';

const CHANNEL_TYPES = {
  sms: 'SMS',
  voice: 'CALL',
  email: 'EMAIL',
  totp: 'APP',
} as const satisfies Record<string, MfaMethodType>;
const COMMODITY_TYPES = { electricity: 'ELECTRIC', gas: 'GAS' } as const satisfies Record<string, AccountType>;

/** Accepts exactly the site words a translation table knows. */
function oneOfKeys<Table extends Record<string, string>>(table: Table) {
  return Type.Union(Object.keys(table).map((key) => Type.Literal(key as keyof Table & string)));
}

// What the site answers, checked before use: anything else is a ProviderProtocolError.
const SiteError = Type.Object({ error: Type.String(), message: Type.String() });
const SiteSession = Type.Object({ expiresAt: Type.String() });
const SiteChallenge = Type.Object({
  methods: Type.Array(
    Type.Object({
      id: Type.String(),
      channel: oneOfKeys(CHANNEL_TYPES),
      destination: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  selectedMethodId: Type.Union([Type.String(), Type.Null()]),
  codeLength: Type.Integer(),
  expiresAt: Type.String(),
});
const SiteLoginStep = Type.Union([
  Type.Object({ status: Type.Literal('LOGGED_IN'), session: SiteSession }),
  Type.Object({
    status: Type.Union([Type.Literal('MFA_METHOD_REQUIRED'), Type.Literal('MFA_CODE_REQUIRED')]),
    challenge: SiteChallenge,
  }),
]);
const SiteAccountsPage = Type.Object({
  accounts: Type.Array(
    Type.Object({
      accountId: Type.String(),
      accountNumber: Type.String(),
      nickname: Type.String(),
      serviceAddress: Type.String(),
      commodity: oneOfKeys(COMMODITY_TYPES),
    }),
  ),
  session: SiteSession,
});

interface SiteResponse {
  path: string;
  statusCode: number;
  body: unknown;
}

export interface SandboxConnectorDeps {
  baseUrl: string;
  http: ProviderHttp;
}

export function createSandboxConnector({ baseUrl, http }: SandboxConnectorDeps): ProviderConnector {
  async function call(jar: CookieJar, method: 'GET' | 'POST', path: string, json?: unknown): Promise<SiteResponse> {
    const response = await http.request({ method, url: siteUrl(baseUrl, path), cookieJar: jar, json });
    return { path, statusCode: response.statusCode, body: parseJson(path, response.statusCode, response.body) };
  }

  async function readAccounts(jar: CookieJar): Promise<Static<typeof SiteAccountsPage> | 'not_logged_in'> {
    const response = await call(jar, 'GET', '/accounts');
    if (response.statusCode === 401) return 'not_logged_in';
    if (response.statusCode !== 200) throw unexpected(response);
    return expectShape(SiteAccountsPage, response);
  }

  /** Where every login step lands: logged in (then discover the accounts) or an MFA challenge. */
  async function afterLoginStep(jar: CookieJar, response: SiteResponse): Promise<LoginOutcome> {
    const step = expectShape(SiteLoginStep, response);
    if (step.status === 'LOGGED_IN') {
      const page = await readAccounts(jar);
      if (page === 'not_logged_in') throw new ProviderProtocolError('sandbox site rejected the session it had just issued');
      return {
        kind: 'connected',
        session: saveJar(jar),
        sessionExpiresAt: page.session.expiresAt,
        accounts: page.accounts.map(toDiscoveredAccount),
      };
    }
    const { challenge } = step;
    const loginState = saveJar(jar);
    const methods = challenge.methods.map(
      (method): MfaMethod => ({ id: method.id, type: CHANNEL_TYPES[method.channel], destination: method.destination }),
    );
    if (challenge.selectedMethodId === null) {
      return { kind: 'method_required', loginState, methods, expiresAt: challenge.expiresAt };
    }
    return {
      kind: 'code_required',
      loginState,
      methods,
      selectedMethodId: challenge.selectedMethodId,
      codeLength: challenge.codeLength,
      expiresAt: challenge.expiresAt,
    };
  }

  async function chooseMethod({ loginState, methodId }: { loginState: string; methodId: string }): Promise<LoginOutcome> {
    const jar = restoreJar(loginState);
    const response = await call(jar, 'POST', '/mfa/method', { methodId });
    if (response.statusCode === 410) return { kind: 'challenge_expired' };
    if (response.statusCode !== 200) throw unexpected(response);
    return afterLoginStep(jar, response);
  }

  return {
    async login({ username, password }) {
      const jar = new CookieJar();
      const response = await call(jar, 'POST', '/login', { username, password });
      switch (response.statusCode) {
        case 200:
          return afterLoginStep(jar, response);
        case 401:
          return { kind: 'invalid_credentials', message: expectShape(SiteError, response).message };
        case 423:
          return { kind: 'access_limited', message: expectShape(SiteError, response).message };
        default:
          throw unexpected(response);
      }
    },

    chooseMethod,

    // The site sends a fresh code whenever a method is chosen, so resending is choosing again.
    resendCode: chooseMethod,

    async submitCode({ loginState, code }) {
      const jar = restoreJar(loginState);
      const response = await call(jar, 'POST', '/mfa/code', { code });
      switch (response.statusCode) {
        case 200:
          return afterLoginStep(jar, response);
        case 422:
          return { kind: 'code_rejected', loginState: saveJar(jar) };
        case 410:
          return { kind: 'challenge_expired' };
        default:
          throw unexpected(response);
      }
    },

    async sync({ session }) {
      const jar = restoreJar(session);
      const page = await readAccounts(jar);
      if (page === 'not_logged_in') return { kind: 'session_invalid' };
      return {
        kind: 'ok',
        accounts: page.accounts.map(toDiscoveredAccount),
        session: saveJar(jar),
        sessionExpiresAt: page.session.expiresAt,
      };
    },
  };
}

/**
 * Client for the site's control endpoints behind Plugboard's sandbox helpers. `session` is the opaque
 * session a login returned. Resolves false when the site does not know the session (for instance after
 * the site restarted), which leaves it just as unusable.
 */
export function expireSession(baseUrl: string, session: string, http: ProviderHttp = createProviderHttp()): Promise<boolean> {
  return controlSession(baseUrl, '/_sandbox/sessions/expire', session, http);
}

export function revokeSession(baseUrl: string, session: string, http: ProviderHttp = createProviderHttp()): Promise<boolean> {
  return controlSession(baseUrl, '/_sandbox/sessions/revoke', session, http);
}

async function controlSession(baseUrl: string, path: string, session: string, http: ProviderHttp): Promise<boolean> {
  const sessionCookie = savedCookies(session).find((cookie) => cookie.key === SESSION_COOKIE);
  if (sessionCookie?.value === undefined) throw new TypeError('not a sandbox session: it holds no session cookie');
  const response = await http.request({
    method: 'POST',
    url: siteUrl(baseUrl, path),
    cookieJar: new CookieJar(),
    json: { sessionToken: sessionCookie.value },
  });
  if (response.statusCode === 204) return true;
  if (response.statusCode === 404) return false;
  throw unexpected({ path, statusCode: response.statusCode });
}

function siteUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${path}`;
}

function toDiscoveredAccount(account: Static<typeof SiteAccountsPage>['accounts'][number]): DiscoveredAccount {
  return {
    providerAccountId: account.accountId,
    accountNumber: account.accountNumber,
    name: account.nickname,
    serviceAddress: account.serviceAddress,
    type: COMMODITY_TYPES[account.commodity],
  };
}

/**
 * A login state or session as saved: the jar's cookies. Version 1 held tough-cookie's whole serialization;
 * version 2 drops what restoring does not need (the library's settings, which are its defaults, and each
 * cookie's creation and last-access times), which takes a pending challenge's login state from ≈ 510 bytes
 * to ≈ 210, sealed and kept with every pending challenge and stored session. Version 1 states are still read.
 */
type SavedCookie = Omit<SerializedCookie, 'creation' | 'lastAccessed'>;
type SavedJar = { version: 1; jar: SerializedCookieJar } | { version: 2; cookies: SavedCookie[] };

function saveJar(jar: CookieJar): string {
  const serialised = jar.serializeSync();
  // Only a jar on an asynchronous store lacks a synchronous form; ours are all in memory.
  if (!serialised) throw new Error('cookie jar cannot be serialised synchronously');
  const cookies = serialised.cookies.map(({ creation: _creation, lastAccessed: _lastAccessed, ...cookie }) => cookie);
  const saved: SavedJar = { version: 2, cookies };
  return JSON.stringify(saved);
}

/** A state string that does not parse is Plugboard's bug (it stores them verbatim), not the provider's. */
function savedCookies(state: string): SavedCookie[] {
  let saved: unknown;
  try {
    saved = JSON.parse(state);
  } catch {
    throw new TypeError('not a sandbox login state or session: not JSON');
  }
  if (typeof saved === 'object' && saved !== null && 'version' in saved) {
    if (saved.version === 2 && 'cookies' in saved && Array.isArray(saved.cookies)) return saved.cookies as SavedCookie[];
    if (saved.version === 1 && 'jar' in saved) return (saved as Extract<SavedJar, { version: 1 }>).jar.cookies;
  }
  throw new TypeError('not a sandbox login state or session: unknown format');
}

function restoreJar(state: string): CookieJar {
  return CookieJar.deserializeSync({ cookies: savedCookies(state) } as SerializedCookieJar);
}

function parseJson(path: string, statusCode: number, body: string): unknown {
  if (body === '') return undefined;
  try {
    return JSON.parse(body);
  } catch {
    throw new ProviderProtocolError(`sandbox site answered ${path} with HTTP ${statusCode} and a body that is not JSON`);
  }
}

function expectShape<T extends TSchema>(schema: T, response: SiteResponse): Static<T> {
  if (!Value.Check(schema, response.body)) {
    throw new ProviderProtocolError(`sandbox site answered ${response.path} with HTTP ${response.statusCode} and an unexpected body`);
  }
  return response.body;
}

function unexpected(response: Pick<SiteResponse, 'path' | 'statusCode'>): ProviderProtocolError {
  return new ProviderProtocolError(`sandbox site answered ${response.path} with unexpected HTTP ${response.statusCode}`);
}
