import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Config } from '../../src/config.ts';
import { startReceiver, type ReceivedWebhook } from '../fixtures/webhook-receiver.ts';
import { commitEvent, createEndpoint, startWebhookStack } from '../fixtures/webhook-stack.ts';
import { testRedisEnv } from '../helper.ts';

// Slow on a loaded machine (every delivery crosses three processes and Redis): longer than tap's default.
t.setTimeout(280_000);

const EVENTS = 2_000;
const KILLS_AT_DELIVERED = [300, 900, 1_500];
const WORKER_SCRIPT = fileURLToPath(new URL('../fixtures/webhook-worker-process.ts', import.meta.url));

function workerEnv(config: Config): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...testRedisEnv,
    KEY_PREFIX: config.keyPrefix,
    ENCRYPTION_KEYS: config.encryptionKeys.map((k) => `${k.kid}:${k.key.toString('base64')}`).join(','),
    WEBHOOK_ALLOWED_TARGETS: config.webhookAllowedTargets,
    WEBHOOK_TIMEOUT_MS: String(config.webhookTimeoutMs),
    WEBHOOK_RETRY_SCHEDULE: config.webhookRetryScheduleSeconds.join(','),
    SANDBOX_PORT: '0',
    BOOTSTRAP_DEMO: 'false',
    LOG_LEVEL: 'silent',
    WORKER_LOCK_DURATION_MS: String(config.workerLockDurationMs),
    WORKER_STALLED_INTERVAL_MS: String(config.workerStalledIntervalMs),
  };
}

function spawnWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
  });
}

t.test('workers SIGKILLed three times during 2,000 deliveries: every event arrives at least once', { timeout: 270_000 }, async (t) => {
  const stack = await startWebhookStack(t, { env: { WEBHOOK_TIMEOUT_MS: '3000', WEBHOOK_RETRY_SCHEDULE: '1,2,5' }, isWorkerInProcess: false });
  const receiver = await startReceiver(t, (_request, res) => {
    // A little latency so that requests are in flight when a worker dies.
    setTimeout(() => res.writeHead(204).end(), Math.random() * 10);
  });
  await createEndpoint(stack, { url: receiver.url });

  const env = workerEnv(stack.container.config);
  const workers = await Promise.all([spawnWorker(env), spawnWorker(env)]);
  t.teardown(() => {
    for (const worker of workers) worker.kill('SIGKILL');
  });

  const kills: string[] = [];
  const killer = (async () => {
    for (const [i, delivered] of KILLS_AT_DELIVERED.entries()) {
      await receiver.waitFor((all) => all.length >= delivered, 120_000);
      const victim = workers[i % workers.length]!;
      victim.removeAllListeners('exit');
      victim.kill('SIGKILL');
      kills.push(`SIGKILL after ${receiver.received.length} deliveries`);
      workers[i % workers.length] = await spawnWorker(env);
    }
  })();

  const sent = new Set<string>();
  let claimed = 0;
  // Committed by a few concurrent writers, as several API processes would.
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (claimed < EVENTS) {
        claimed += 1;
        sent.add((await commitEvent(stack)).id);
      }
    }),
  );
  await killer;
  const everyEventArrived = (all: ReceivedWebhook[]) => {
    const ids = new Set(all.map((r) => r.id));
    return [...sent].every((id) => ids.has(id));
  };
  // On timeout, the assertions below say what is missing.
  await receiver.waitFor(everyEventArrived, 150_000).catch(() => undefined);

  const arrived = new Set(receiver.received.map((r) => r.id));
  t.equal(kills.length, 3, kills.join('; '));
  t.equal([...sent].filter((id) => !arrived.has(id)).length, 0, 'no event id is missing');
  t.comment(`${receiver.received.length} requests for ${EVENTS} events (${receiver.received.length - arrived.size} duplicates)`);
});
