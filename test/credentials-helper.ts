/** Shortcuts for the credential integration tests: API calls as the test organization, and polling with deadlines. */
import type { CredentialRecord, CredentialView } from '../src/domain/credential-state.ts';
import { unpackGuardedRecord } from '../src/storage/event-log.ts';
import type { TestStack } from './helper.ts';

export const SANDBOX_PROVIDER = 'prv_sandboxelectricxxxxxxxxxxx';

export interface CallResult<T = unknown> {
  statusCode: number;
  headers: Record<string, unknown>;
  body: T;
}

export async function call<T = unknown>(
  stack: TestStack,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  payload?: object,
  headers: Record<string, string> = {},
): Promise<CallResult<T>> {
  const response = await stack.app.inject({ method, url, payload, headers: { ...stack.org.headers, ...headers } });
  return { statusCode: response.statusCode, headers: response.headers, body: (response.body ? response.json() : undefined) as T };
}

export async function createCredential(stack: TestStack, password: string, extra: object = {}): Promise<CredentialView> {
  const created = await call<CredentialView>(stack, 'POST', '/plug/credentials', {
    providerId: SANDBOX_PROVIDER,
    username: `user-${Math.random().toString(36).slice(2)}`,
    password,
    ...extra,
  });
  if (created.statusCode !== 201) throw new Error(`create failed: ${created.statusCode} ${JSON.stringify(created.body)}`);
  if (created.headers.location !== `/plug/credentials/${created.body.id}`) throw new Error(`create answered Location ${created.headers.location}`);
  return created.body;
}

/** Polls the credential until `predicate` holds; fails with the last state seen at the deadline. */
export async function waitForCredential(
  stack: TestStack,
  id: string,
  predicate: (credential: CredentialView) => boolean,
  timeoutMs = 5000,
): Promise<CredentialView> {
  const deadline = Date.now() + timeoutMs;
  let last: CredentialView | undefined;
  while (Date.now() < deadline) {
    last = (await call<CredentialView>(stack, 'GET', `/plug/credentials/${id}`)).body;
    if (predicate(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`credential ${id} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

/** The record as stored, read from Redis directly (what the workers' own reads would see). */
export async function storedRecord(stack: TestStack, credentialId: string): Promise<CredentialRecord | null> {
  const { ctx } = stack.app.container.services;
  const raw = await ctx.redis.getBuffer(ctx.keys.org(stack.org.organizationId).credential(credentialId));
  return raw ? (JSON.parse(unpackGuardedRecord(raw)) as CredentialRecord) : null;
}

export function hasDetail(detail: string) {
  return (credential: CredentialView) => credential.statusDetail === detail;
}

export interface LoggedEvent {
  id: string;
  type: string;
  timestamp: string;
  data: { credential: CredentialView; previous?: { status: string; statusDetail: string }; expiresAt?: string; attemptsRemaining?: number; challengeId?: string; reason?: string };
}

/** Every event of one credential, oldest first, read page by page through the API. */
export async function eventsOf(stack: TestStack, credentialId: string): Promise<LoggedEvent[]> {
  const events: LoggedEvent[] = [];
  let after: string | null = null;
  do {
    const query: string = `credentialId=${credentialId}&limit=100${after ? `&after=${after}` : ''}`;
    const page: CallResult<{ data: LoggedEvent[]; nextCursor: string | null }> = await call(stack, 'GET', `/plug/events?${query}`);
    events.push(...page.body.data);
    after = page.body.nextCursor;
  } while (after);
  return events;
}

/** Each event as its type without `credential.`, and each status change as `→ <new statusDetail>`, for order checks. */
export function describe(events: LoggedEvent[]): string[] {
  return events.map((event) =>
    event.type === 'credential.status_changed' ? `→ ${event.data.credential.statusDetail}` : event.type.replace('credential.', ''),
  );
}

/** Headers of an MFA call that answers once its provider step has finished. */
export const WAIT = { prefer: 'wait=5' };
export const SUCCESS = 'LOGIN_AND_DATA_DISCOVERY_SUCCESS';

export function mfaOf(credential: CredentialView) {
  if (!credential.mfa) throw new Error(`no open challenge: ${JSON.stringify(credential)}`);
  return credential.mfa;
}

export async function chooseFirstMethod(stack: TestStack, credential: CredentialView): Promise<CallResult<CredentialView>> {
  const mfa = mfaOf(credential);
  return call<CredentialView>(
    stack,
    'PUT',
    `/plug/credentials/${credential.id}/verificationMethod`,
    { challengeId: mfa.challengeId, methodId: mfa.availableMethods[0]?.id },
    WAIT,
  );
}

export async function submitCode(stack: TestStack, credential: CredentialView, code: string, headers: Record<string, string> = WAIT) {
  return call<CredentialView>(stack, 'PUT', `/plug/credentials/${credential.id}/oneTimePasscode`, { challengeId: mfaOf(credential).challengeId, code }, headers);
}

/** Logs a pass_mfa-like credential in through the API: method, then the right code. */
export async function connectWithMfa(stack: TestStack, password: string): Promise<CredentialView> {
  const created = await createCredential(stack, password);
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const codeRequired = (await chooseFirstMethod(stack, asked)).body;
  const done = await submitCode(stack, codeRequired, '123456');
  if (done.body.statusDetail !== SUCCESS) throw new Error(`not connected: ${JSON.stringify(done.body)}`);
  return done.body;
}
