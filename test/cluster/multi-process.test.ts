/**
 * Several processes on one Redis Cluster behave as one: two API processes and two worker processes (run as
 * an operator runs them, `src/main.ts api|workers`), requests spread over both API ports, full MFA flows,
 * MFA and session timers, webhook deliveries. Half-way one API process and one worker process are killed
 * with SIGKILL. Afterwards every credential whose creation got a 2xx is there and finished, every timer
 * fired exactly once, the event log has no duplicate, and every event reached the webhook endpoint.
 *
 * Runs under `npm run test:cluster` (it needs TEST_REDIS_CLUSTER_NODES).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import t from 'tap';
import { QUEUE_NAMES } from '../../src/queues.ts';
import { connectContainer } from '../bench/lib/plugboard.ts';
import { startReceiver } from '../bench/lib/receiver.ts';
import { freePort, sleep, startSystem, uniqueRunPrefix, waitFor, type System } from '../bench/lib/system.ts';
import { TEST_REDIS_URL, wipePrefix } from '../helper.ts';

const clusterNodes = process.env.TEST_REDIS_CLUSTER_NODES?.trim();

/** Short enough to watch every timer fire within the test, long enough for an answered flow to beat it. */
const TIMING = {
  MFA_CHALLENGE_TTL_SECONDS: '8',
  SANDBOX_SHORT_SESSION_SECONDS: '8',
  SESSION_WARNING_SECONDS: '4',
  // A step claimed by the killed worker is taken over within about three seconds.
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  // A step whose enqueue died with the killed API process (committed, never queued) is re-created by the
  // reconciler; at its default minute the 8 s challenge would expire first and the flow end in TIMED_OUT.
  RECONCILE_INTERVAL_SECONDS: '2',
};
const FLOW_DEADLINE_MS = 60_000;
/**
 * An event whose fan-out died with a killed process is fanned out by the webhook reconciler once its 10 s
 * grace has passed (a pass every 5 s); a delivery the killed worker held is taken over once its lock has
 * expired (TIMING above). Generous, so that a slow machine is not mistaken for a lost event.
 */
const DELIVERY_DEADLINE_MS = 100_000;

type Scenario = 'answered' | 'unanswered' | 'shortSession';

/**
 * The event types each scenario must produce exactly once per credential (a duplicate timer shows here), or,
 * for the MFA prompts, once per login: a workers process killed after the provider took a code but before our
 * commit leaves a used-up challenge, the retry finds it gone, and the credential logs in again.
 */
const EXPECTED_ONCE: Record<Scenario, string[]> = {
  answered: ['credential.created', 'credential.mfa.method_required', 'credential.mfa.code_required', 'credential.connected'],
  unanswered: ['credential.created', 'credential.mfa.method_required', 'credential.mfa.timed_out'],
  shortSession: [
    'credential.created',
    'credential.mfa.method_required',
    'credential.mfa.code_required',
    'credential.connected',
    'credential.mfa.session_expiring',
    'credential.mfa.refresh_required',
  ],
};
const PER_LOGIN = new Set(['credential.mfa.method_required', 'credential.mfa.code_required']);

/** A challenge the provider ended before its deadline sends the credential from an MFA stage back to logging in. */
function isLoginAfterLostAnswer(event: StoredEvent): boolean {
  const { credential, previous } = event.data as { credential?: { statusDetail?: string }; previous?: { statusDetail?: string } };
  return (
    event.type === 'credential.status_changed' &&
    credential?.statusDetail === 'DATA_EXTRACTION_IN_PROGRESS' &&
    (previous?.statusDetail ?? '').startsWith('MULTI_FACTOR_AUTHENTICATION_')
  );
}

const FINAL_DETAIL: Record<Scenario, string> = {
  answered: 'LOGIN_AND_DATA_DISCOVERY_SUCCESS',
  unanswered: 'MULTI_FACTOR_AUTHENTICATION_TIMED_OUT',
  shortSession: 'MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED',
};

interface Credential {
  id: string;
  status: string;
  statusDetail: string;
  mfa: null | { challengeId: string; availableMethods: { id: string }[] };
}

interface EventPage {
  data: StoredEvent[];
  nextCursor: string | null;
}

interface StoredEvent {
  id: string;
  type: string;
  data: { credential?: { id: string } };
}

/** A client that spreads requests over the live API ports and, like a load balancer, moves on when one dies. */
function createBalancedClient(apiUrls: string[], authorization: () => string) {
  const live = [...apiUrls];
  let next = 0;
  const sent = new Map<string, number>(apiUrls.map((url) => [url, 0]));

  async function call<T = Record<string, unknown>>(method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: T }> {
    for (;;) {
      if (live.length === 0) throw new Error('no API process left');
      const base = live[next++ % live.length]!;
      try {
        const response = await fetch(`${base}${pathname}`, {
          method,
          headers: { authorization: authorization(), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(20_000),
        });
        sent.set(base, (sent.get(base) ?? 0) + 1);
        const text = await response.text();
        return { status: response.status, json: (text ? JSON.parse(text) : null) as T };
      } catch (error) {
        // fetch fails with a TypeError when the connection is refused or reset: that process is gone. The
        // request is retried elsewhere, which is safe: creations carry an Idempotency-Key, and a repeated
        // MFA step is refused with 409 (the driver below then reads the credential and carries on).
        if (!(error instanceof TypeError)) throw error;
        if (live.includes(base)) live.splice(live.indexOf(base), 1);
      }
    }
  }
  return { call, sent, live };
}

if (clusterNodes) t.setTimeout(300_000);

t.test('two API and two worker processes on one Redis Cluster, one of each killed half-way', { skip: !clusterNodes && 'runs under npm run test:cluster' }, async (t) => {
  const keyPrefix = uniqueRunPrefix('test-multi');
  t.teardown(() => wipePrefix(keyPrefix));
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'plugboard-multi-process-'));
  t.comment(`process logs in ${logDir}`);

  const receiver = await startReceiver();
  t.teardown(() => receiver.close());

  // Two systems on one prefix and key make one deployment: the first also runs the sandbox site both use.
  const sandboxPort = String(await freePort());
  const env = {
    ...TIMING,
    LOG_LEVEL: 'info',
    ENCRYPTION_KEYS: `multi1:${randomBytes(32).toString('base64')}`,
    SANDBOX_PORT: sandboxPort,
    SANDBOX_BASE_URL: `http://127.0.0.1:${sandboxPort}`,
  };
  const common = { redisUrl: TEST_REDIS_URL, redisClusterNodes: clusterNodes, keyPrefix, env };
  const starts = await Promise.allSettled([
    startSystem({ ...common, roles: ['sandbox', 'api', 'workers'], logDir: path.join(logDir, 'first') }),
    startSystem({ ...common, roles: ['api', 'workers'], logDir: path.join(logDir, 'second') }),
  ]);
  // A system that failed to start has stopped itself; the other one must not outlive the test.
  for (const start of starts) if (start.status === 'fulfilled') t.teardown(() => start.value.close());
  const [first, second] = starts.map((start) => {
    if (start.status === 'rejected') throw start.reason;
    return start.value;
  }) as [System, System];
  // Both workers processes count towards one queue's workers, so wait for each one's own start-up line.
  for (const name of ['first', 'second']) {
    const log = path.join(logDir, name, 'workers.log');
    await waitFor(`the ${name} workers process`, async () => ((await readFile(log, 'utf8')).includes('workers started') ? true : undefined), 30_000);
  }

  const container = connectContainer(first);
  t.teardown(() => container.close());
  const organization = await container.services.organizations.createOrganization({ name: 'Scale test', email: `scale-${randomUUID()}@example.com`, password: randomUUID() });
  let accessToken = '';
  const client = createBalancedClient([first.apiUrl, second.apiUrl], () => `Bearer ${accessToken}`);
  const token = await client.call<{ access_token: string }>('POST', '/oauth2/token', { grant_type: 'client_credentials', client_id: organization.clientId, client_secret: organization.clientSecret });
  t.equal(token.status, 200, 'token issued');
  accessToken = token.json.access_token;

  const endpoint = await client.call<{ id: string }>('POST', '/plug/webhooks/endpoints', { url: `${receiver.url}/hooks` });
  t.equal(endpoint.status, 201, 'webhook endpoint created');
  const providers = await client.call<{ data: { id: string; isSandbox: boolean }[] }>('GET', '/plug/providers');
  const providerId = providers.json.data.find((provider) => provider.isSandbox)!.id;

  const scenarioOf = new Map<string, Scenario>();
  async function createCredential(scenario: Scenario): Promise<string> {
    const password = scenario === 'shortSession' ? 'pass_mfa_short' : 'pass_mfa';
    const idempotencyKey = randomUUID();
    const created = await client.call<Credential>('POST', '/plug/credentials', { providerId, username: `user-${idempotencyKey}`, password }, { 'idempotency-key': idempotencyKey });
    t.equal(created.status, 201, `credential created (${scenario})`);
    scenarioOf.set(created.json.id, scenario);
    return created.json.id;
  }

  /** Answers the provider's questions until the credential is connected (or, unanswered, only watches). */
  async function drive(credentialId: string): Promise<Credential> {
    const scenario = scenarioOf.get(credentialId)!;
    const deadline = Date.now() + FLOW_DEADLINE_MS;
    for (;;) {
      const { json: credential } = await client.call<Credential>('GET', `/plug/credentials/${credentialId}`);
      if (credential.statusDetail === FINAL_DETAIL[scenario]) return credential;
      if (Date.now() > deadline) throw new Error(`${scenario} credential ${credentialId} stuck at ${credential.statusDetail}`);
      const wait = { prefer: 'wait=2' };
      if (scenario !== 'unanswered' && credential.mfa && credential.statusDetail === 'MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED') {
        const methodId = credential.mfa.availableMethods[0]!.id;
        await client.call('PUT', `/plug/credentials/${credentialId}/verificationMethod`, { challengeId: credential.mfa.challengeId, methodId }, wait);
      } else if (scenario !== 'unanswered' && credential.mfa && credential.statusDetail === 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED') {
        await client.call('PUT', `/plug/credentials/${credentialId}/oneTimePasscode`, { challengeId: credential.mfa.challengeId, code: '123456' }, wait);
      } else {
        await sleep(250);
      }
    }
  }

  const scenarios: Scenario[] = ['answered', 'answered', 'answered', 'answered', 'unanswered', 'unanswered', 'shortSession', 'shortSession'];
  const beforeKill = await Promise.all(scenarios.map(createCredential));
  const flows = beforeKill.map(drive);

  // Half-way: let the flows get going (steps queued, challenges and their timers pending), then crash one of each.
  await sleep(1500);
  await Promise.all([first.stop('api', 'SIGKILL'), first.stop('workers', 'SIGKILL')]);
  t.comment('killed the first API process and the first workers process');
  const afterKill = await Promise.all((['answered', 'unanswered'] as Scenario[]).map(createCredential));
  flows.push(...afterKill.map(drive));

  const finished = await Promise.all(flows);
  t.equal(finished.length, scenarioOf.size, 'every credential that got a 201 finished its flow');
  t.ok([...client.sent.values()].every((count) => count > 0), 'both API processes served requests');

  const events: StoredEvent[] = [];
  let cursor: string | null = null;
  do {
    const page: { json: EventPage } = await client.call<EventPage>('GET', `/plug/events?limit=100${cursor ? `&after=${cursor}` : ''}`);
    events.push(...page.json.data);
    cursor = page.json.nextCursor;
  } while (cursor);
  t.equal(new Set(events.map((event) => event.id)).size, events.length, 'no event id appears twice in the log');
  for (const [credentialId, scenario] of scenarioOf) {
    const own = events.filter((event) => event.data.credential?.id === credentialId);
    const logins = 1 + own.filter(isLoginAfterLostAnswer).length;
    if (logins > 1) t.comment(`${scenario} ${credentialId}: logged in again after a lost answer`);
    const types = own.map((event) => event.type);
    const counts = Object.fromEntries(EXPECTED_ONCE[scenario].map((type) => [type, types.filter((seen) => seen === type).length]));
    const expected = Object.fromEntries(EXPECTED_ONCE[scenario].map((type) => [type, PER_LOGIN.has(type) ? logins : 1]));
    t.same(counts, expected, `${scenario} ${credentialId}: each event exactly once (MFA prompts once per login)`);
  }

  await waitFor(
    'every event of the log at the webhook endpoint',
    async () => (events.every((event) => receiver.eventIds().has(event.id)) ? true : undefined),
    DELIVERY_DEADLINE_MS,
    250,
  ).catch(() => undefined);
  const missing = events.filter((event) => !receiver.eventIds().has(event.id));
  t.same(missing.map((event) => `${event.type} ${event.id}`), [], 'every event was delivered to the webhook endpoint');
  if (missing.length > 0) {
    const deliveries = new Queue(QUEUE_NAMES.webhookDelivery, { connection: container.redis, prefix: container.services.ctx.keys.queuePrefix });
    for (const event of missing) {
      const pending = await container.services.events.store.pendingFanout(organization.organizationId, new Date(Date.now() + 60_000), 100_000);
      const state = await deliveries.getJobState(`${event.id}.${endpoint.json.id}`);
      t.comment(`${event.id}: ${pending.includes(event.id) ? 'still pending fan-out' : 'fanned out'}; delivery job ${state}`);
    }
    await deliveries.close();
  }

  const logs = await Promise.all(['first/api', 'first/workers', 'first/sandbox', 'second/api', 'second/workers'].map((name) => readFile(path.join(logDir, `${name}.log`), 'utf8')));
  t.notOk(logs.some((log) => /CROSSSLOT|should belong to the same slot/.test(log)), 'no cross-slot error in any process log');
});
