/**
 * A worker process killed with SIGKILL in the middle of an MFA step: the step's job is recovered by
 * another worker process (BullMQ stalled-job check), the flow completes, the session timers still fire
 * after yet another restart, and no event is duplicated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { CredentialView } from '../../src/domain/credential-state.ts';
import { call, createCredential, describe, eventsOf, hasDetail, waitForCredential } from '../credentials-helper.ts';
import { buildStack } from '../helper.ts';

const WORKER_PROCESS = fileURLToPath(new URL('../fixtures/worker-process.ts', import.meta.url));

/** A worker process with its modules loaded, whose workers start on `start()`. */
async function spawnWorkerProcess(t: { teardown(fn: () => void): void }, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_PROCESS], {
    env: { ...process.env, PLUGBOARD_TEST_ENV: JSON.stringify(env) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const expect = async (word: string) => {
    const next = await lines.next();
    if (next.done || next.value !== word) throw new Error(`worker process said ${next.done ? 'nothing' : next.value}, not ${word}`);
  };
  await expect('loaded');
  return {
    child,
    async start() {
      child.stdin?.write('start\n');
      await expect('ready');
    },
  };
}

async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

t.test('SIGKILL mid-MFA: the step reruns in the next worker process, timers survive, nothing is duplicated', async (t) => {
  let holdCodes = false;
  let reportHeld: () => void = () => {};
  const codeHeld = new Promise<void>((resolve) => (reportHeld = resolve));
  let dropHeld: () => void = () => {};
  const held = new Promise<void>((resolve) => (dropHeld = resolve));

  const stack = await buildStack(t, {
    isWorkerInProcess: false,
    env: {
      SANDBOX_SHORT_SESSION_SECONDS: '4',
      SESSION_WARNING_SECONDS: '2',
      WORKER_LOCK_DURATION_MS: '1000',
      WORKER_STALLED_INTERVAL_MS: '300',
    },
    // The site holds the first code submission, so the worker can be killed while it waits for the answer.
    // The held request is then answered 503 without being handled: the killed worker never hears back and
    // the challenge stays open, as with a real provider whose answer was lost with the process.
    site: (site) =>
      site.addHook('preHandler', async (request, reply) => {
        if (request.url !== '/mfa/code' || !holdCodes) return;
        holdCodes = false;
        reportHeld();
        await held;
        return reply.code(503).send({ error: 'GONE', message: 'the client went away' });
      }),
  });

  // Both processes load at once; the second only starts its workers once the first is dead.
  const [first, second] = await Promise.all([spawnWorkerProcess(t, stack.env), spawnWorkerProcess(t, stack.env)]);
  await first.start();
  const created = await createCredential(stack, 'pass_mfa_short');
  const asked = await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED'));
  const method = asked.mfa?.availableMethods[0]?.id;
  const chosen = await call<CredentialView>(stack, 'PUT', `/plug/credentials/${created.id}/verificationMethod`, { challengeId: asked.mfa?.challengeId, methodId: method }, { prefer: 'wait=5' });
  t.equal(chosen.body.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED');

  holdCodes = true;
  const submitted = await call<CredentialView>(stack, 'PUT', `/plug/credentials/${created.id}/oneTimePasscode`, { challengeId: asked.mfa?.challengeId, code: '123456' });
  t.equal(submitted.body.statusDetail, 'MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED');
  await codeHeld;
  await kill(first.child);
  dropHeld();

  await second.start();
  const connected = await waitForCredential(stack, created.id, hasDetail('LOGIN_AND_DATA_DISCOVERY_SUCCESS'), 10_000);
  t.ok(connected.mfaSession?.expiresAt, 'connected with a short session');

  // Restart once more before the session timers are due: they live in Redis, not in the process.
  await kill(second.child);
  await stack.startWorkers();
  await waitForCredential(stack, created.id, hasDetail('MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED'), 10_000);

  const events = await eventsOf(stack, created.id);
  t.same(describe(events), [
    'created',
    '→ MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED',
    'mfa.method_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED',
    'mfa.code_required',
    '→ MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED',
    '→ LOGIN_AND_DATA_DISCOVERY_SUCCESS',
    'connected',
    'mfa.session_expiring',
    '→ MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED',
    'mfa.refresh_required',
  ]);
  t.equal(new Set(events.map((event) => event.id)).size, events.length, 'every event once');
});
