/**
 * Process entry point: `tsx src/main.ts all|api|workers|sandbox`.
 * `all` (npm start) runs API, workers and the sandbox utility site in one process on local defaults.
 */
import { buildApp, buildOperationsApp } from './app.ts';
import { ConfigError, redactUrl, type Config } from './config.ts';
import { createContainer } from './container.ts';
import { startPrivateRedis, tcpAnswers } from './local/dev-defaults.ts';
import { resolveConfig } from './local/resolve-config.ts';
import { buildSandboxSite } from './sandbox/site.ts';
import { checkEncryptionKeys } from './storage/encryption-key-check.ts';
import { checkRedisSettings } from './storage/redis.ts';
import { startWorkers } from '../workers/index.ts';

type Mode = 'all' | 'api' | 'workers' | 'sandbox';
const MODES: Mode[] = ['all', 'api', 'workers', 'sandbox'];
/** A second signal sooner than this after the first is a copy of it (see `shutdownOnSignals`). */
const REPEATED_SIGNAL_MS = 1_000;
/** How often start-up says it is still waiting for Redis. */
const REDIS_WAIT_NOTICE_MS = 5_000;

async function main() {
  const mode = (process.argv[2] ?? 'all') as Mode;
  if (!MODES.includes(mode)) throw new Error(`unknown mode "${mode}"; use one of ${MODES.join(', ')}`);
  const { config, notes } = await resolveConfig(process.env);
  const { closers, started } = shutdownOnSignals(config.shutdownGraceSeconds);

  if (mode === 'sandbox') {
    const site = buildSandboxSite({ shortSessionSeconds: config.sandboxShortSessionSeconds, logger: true });
    await listenNaming(site, config.host, config.sandboxPort, 'SANDBOX_PORT');
    closers.push(() => site.close());
    started();
    return;
  }

  const isRedisChosen = config.isRedisUrlExplicit || config.redisClusterNodes.length > 0;
  if (!isRedisChosen && !(await tcpAnswers('127.0.0.1', 6379))) {
    const privateRedis = await startPrivateRedis(config.dataDir);
    // On every way out (shutdown, a failed start, the grace deadline): redis-server must not outlive us.
    process.once('exit', () => privateRedis.kill('SIGTERM'));
    notes.push(`no Redis answered on 127.0.0.1:6379, so started a private redis-server (AOF on, data in ${config.dataDir}/redis)`);
  }

  const container = createContainer(config);
  for (const note of notes) container.logger.info(note);
  await whileWaitingForRedis(config, container.logger, async () => {
    await checkRedisSettings(container.redis, container.logger);
    await checkEncryptionKeys(container.redis, container.services.ctx.keys, config.encryptionKeys);
  });

  if (mode === 'all' && config.sandboxPort !== 0) {
    const site = buildSandboxSite({ shortSessionSeconds: config.sandboxShortSessionSeconds, logger: false });
    await listenNaming(site, '127.0.0.1', config.sandboxPort, 'SANDBOX_PORT');
    container.logger.info(`sandbox utility site on ${config.sandboxBaseUrl}`);
    closers.push(() => site.close());
  }
  // Every port is bound before the workers start: one in use fails the start before any job is taken.
  // (`all` serves the operations endpoints on the API's port.)
  const operations = mode === 'workers' && config.workersPort !== 0 ? await buildOperationsApp(container) : null;
  if (operations) await listenNaming(operations, config.host, config.workersPort, 'WORKERS_PORT');
  const app = mode === 'all' || mode === 'api' ? await buildApp(config, { container }) : null;
  if (app) await listenNaming(app, config.host, config.port, 'PORT');
  // The default gateway: a deployment that never chose one must hear that its users' texts go nowhere, and
  // that their codes would be in its logs at debug level. (Workers send no texts; the CLI is not a server.)
  if (app && config.smsGateway === 'log') {
    container.logger.warn(
      'SMS_GATEWAY=log: two-factor texts are not sent, and their codes are logged at LOG_LEVEL=debug; set SMS_GATEWAY=webhook or twilio outside development',
    );
  }
  if (mode === 'all' || mode === 'workers') {
    const workers = await startWorkers(container);
    closers.unshift(() => workers.close());
  }
  // The listeners close first: no new requests, in-flight ones finish, then jobs and Redis.
  if (operations) closers.unshift(() => operations.close());
  if (app) {
    closers.unshift(() => app.close());
    if (config.bootstrapDemo) await printDemoOrganization(container, config);
  }
  closers.push(() => container.close());
  started();
}

/**
 * Start-up waits for Redis for as long as it takes (Redis may be starting beside us), saying where it waits
 * until Redis answers: a process that neither listens nor logs would look hung.
 */
async function whileWaitingForRedis(config: Config, logger: ReturnType<typeof createContainer>['logger'], checks: () => Promise<void>): Promise<void> {
  const where =
    config.redisClusterNodes.length > 0
      ? `REDIS_CLUSTER_NODES (${config.redisClusterNodes.map((node) => `${node.host}:${node.port}`).join(', ')})`
      : `REDIS_URL (${redactUrl(config.redisUrl)})`;
  const notice = setInterval(() => logger.warn(`start-up is waiting for Redis at ${where} to answer`), REDIS_WAIT_NOTICE_MS);
  try {
    await checks();
  } finally {
    clearInterval(notice);
  }
}

/** Listens; when that fails for a reason the operator fixes in the environment, says which variable. */
async function listenNaming(server: { listen(options: { host: string; port: number }): Promise<string> }, host: string, port: number, variable: string) {
  try {
    await server.listen({ host, port });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`${variable}=${port} is already in use on ${host}; stop what holds it or choose another ${variable}`, { cause: error });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new Error(`HOST=${host} is not an address of this machine (${code})`, { cause: error });
    throw error;
  }
}

async function printDemoOrganization(container: ReturnType<typeof createContainer>, config: Config) {
  const demo = await container.services.organizations.bootstrapDemo();
  if (!demo) return;
  const lines = [
    '',
    '  Plugboard demo organization created (shown once; BOOTSTRAP_DEMO=false turns this off):',
    `    client_id:      ${demo.clientId}`,
    `    client_secret:  ${demo.clientSecret}`,
    `    dashboard:      ${config.publicUrl}  email ${demo.email}  password ${demo.password}`,
    `    try:  curl -s -u '${demo.clientId}:${demo.clientSecret}' -d grant_type=client_credentials ${config.publicUrl}/oauth2/token`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * SIGTERM or SIGINT: every closer in order, then exit 0; past the grace period, exit 1. Armed before anything
 * is started (a private redis-server, workers), so a signal during startup is not Node's default exit, which
 * skips the 'exit' handlers: the shutdown then runs once startup is done, or the deadline ends it. A second
 * signal exits at once, through `process.exit` too, unless it comes within `REPEATED_SIGNAL_MS` of the first:
 * that is the same signal twice (Ctrl-C signals npm and Plugboard both, and npm passes its copy on; so does
 * a process manager that signals the whole process group), not an operator in a hurry.
 */
function shutdownOnSignals(graceSeconds: number) {
  const closers: (() => Promise<unknown>)[] = [];
  let isStarted = false;
  let signalled: { signal: string; atMs: number } | null = null;
  const stop = async () => {
    for (const close of closers) {
      await close().catch((error: unknown) => process.stderr.write(`shutdown step failed: ${(error as Error).message}\n`));
    }
    process.exit(0);
  };
  const onSignal = (signal: string) => {
    if (signalled) {
      if (Date.now() - signalled.atMs < REPEATED_SIGNAL_MS) return;
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    signalled = { signal, atMs: Date.now() };
    process.stderr.write(`${signal}: shutting down\n`);
    const deadline = setTimeout(() => {
      process.stderr.write('shutdown took too long; exiting\n');
      process.exit(1);
    }, graceSeconds * 1000);
    deadline.unref();
    if (isStarted) void stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    /** What to close on shutdown, in order. */
    closers,
    /** Startup is done: a signal that came during it is acted on now. */
    started() {
      isStarted = true;
      if (signalled) void stop();
    },
  };
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Plugboard failed to start: ${(error as Error).message}\n`);
  }
  process.exit(1);
});
