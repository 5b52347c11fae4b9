/** Shortcuts for the credential integration tests: API calls as the test organization, and polling with deadlines. */
import type { CredentialView } from '../src/domain/credential-state.ts';
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

export function hasDetail(detail: string) {
  return (credential: CredentialView) => credential.statusDetail === detail;
}

export interface LoggedEvent {
  id: string;
  type: string;
  timestamp: string;
  data: { credential: CredentialView; previous?: { status: string; statusDetail: string }; expiresAt?: string; attemptsRemaining?: number };
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

/** Event types without the status_changed ones, and the statusDetail pairs of those, for order checks. */
export function describe(events: LoggedEvent[]): string[] {
  return events.map((event) =>
    event.type === 'credential.status_changed' ? `→ ${event.data.credential.statusDetail}` : event.type.replace('credential.', ''),
  );
}
