/**
 * `npm start` as an operator runs it: a real child process on free ports, its own key prefix and data
 * folder, against the shared test Redis. Waits are generous: a loaded CI machine takes seconds to load tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Socket, type AddressInfo } from 'node:net';
import { request } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { testRedisEnv, uniquePrefix, wipePrefix } from '../helper.ts';
import { exited, freePort, tempDir, waitFor } from '../process-helper.ts';
import { createPrivateRedis } from '../resilience/private-redis.ts';

function startPlugboard(env: Record<string, string>, mode: 'all' | 'api' | 'workers' = 'all') {
  const child = spawn(process.execPath, ['--import=tsx', 'src/main.ts', mode], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return { child, output };
}

t.test('npm start: ready, prints a usable demo key, serves the API, exits 0 on SIGTERM after in-flight requests', async (t) => {
  const [port, sandboxPort] = [await freePort(), await freePort()];
  const prefix = uniquePrefix('start');
  const dataDir = await tempDir(t, 'start');
  t.teardown(() => wipePrefix(prefix));
  const { child, output } = startPlugboard({
    PORT: String(port),
    SANDBOX_PORT: String(sandboxPort),
    KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    ...testRedisEnv,
    LOG_LEVEL: 'warn',
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;

  await waitFor('/readyz', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
  t.ok(existsSync(path.join(dataDir, 'encryption-keys')), 'a local encryption key was generated into DATA_DIR');
  const credentials = await waitFor('the demo key', async () => {
    const id = /client_id:\s+(\S+)/.exec(output.stdout)?.[1];
    const secret = /client_secret:\s+(\S+)/.exec(output.stdout)?.[1];
    return id && secret ? { id, secret } : undefined;
  });
  // Printed before the demo key, on the same stream.
  t.match(output.stdout, /SMS_GATEWAY=log: two-factor texts are not sent/, 'a warning that the default SMS gateway sends nothing');

  const token = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: credentials.id, client_secret: credentials.secret }),
  });
  t.equal(token.status, 200);
  const { access_token: accessToken } = (await token.json()) as { access_token: string };
  const organization = await fetch(`${base}/plug/organization`, { headers: { authorization: `Bearer ${accessToken}` } });
  t.equal(organization.status, 200);
  t.equal(((await organization.json()) as { name: string }).name, 'Demo organization');
  t.equal((await fetch(`http://127.0.0.1:${sandboxPort}/`)).status < 500, true, 'the sandbox site answers');

  // A create waiting on `Prefer: wait=25` for a provider that is down answers at once on SIGTERM, with the
  // state as it is (the provider is retried later, by any workers process).
  const waiting = fetch(`${base}/plug/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', prefer: 'wait=25' },
    body: JSON.stringify({ providerId: 'prv_sandboxelectricxxxxxxxxxxx', username: 'outage', password: 'pass_down' }),
  });
  await waitFor('the waiting create to be committed', async () => {
    const list = await fetch(`${base}/plug/credentials`, { headers: { authorization: `Bearer ${accessToken}` } });
    return ((await list.json()) as { page: { totalElements: number } }).page.totalElements === 1 ? true : undefined;
  });

  // A request whose body is still arriving when SIGTERM comes must still get its answer.
  const body = JSON.stringify({ grant_type: 'client_credentials', client_id: credentials.id, client_secret: credentials.secret });
  const inFlight = new Promise<number>((resolve, reject) => {
    const req = request(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(body.slice(0, 10));
    setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => req.end(body.slice(10)), 300);
    }, 100);
  });
  t.equal(await inFlight, 200, 'the in-flight request finished');
  const stoppedWaiting = await waiting;
  t.equal(stoppedWaiting.status, 201);
  t.match(await stoppedWaiting.json(), { status: 'CONNECTION_IN_PROGRESS' });

  const started = Date.now();
  t.equal(await exited(child), 0, 'exit code 0');
  t.ok(Date.now() - started < 10_000, 'well within the shutdown grace period: the wait ended');
  t.match(output.stderr, /SIGTERM: shutting down/);
  t.notMatch(output.stderr, /shutdown step failed/);
});

t.test('start:workers with WORKERS_PORT: probes and metrics on that port, and no API there', async (t) => {
  const workersPort = await freePort();
  const prefix = uniquePrefix('workers');
  const dataDir = await tempDir(t, 'workers');
  t.teardown(() => wipePrefix(prefix));
  const encryptionKeys = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
  const env = { WORKERS_PORT: String(workersPort), KEY_PREFIX: prefix, DATA_DIR: dataDir, ENCRYPTION_KEYS: encryptionKeys, ...testRedisEnv, LOG_LEVEL: 'warn' };
  const { child, output } = startPlugboard(env, 'workers');
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${workersPort}`;

  await waitFor('/readyz', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  const metrics = await fetch(`${base}/metrics`);
  t.equal(metrics.status, 200);
  const text = await metrics.text();
  t.match(text, /plugboard_webhook_first_attempts_in_flight 0/, "its workers' own metrics");
  t.match(text, /plugboard_queue_jobs\{queue="credential-steps",state="waiting"\} 0/, 'the shared queue depths');
  t.match(text, /process_resident_memory_bytes/, 'its process');
  const api = await fetch(`${base}/plug/organization`);
  t.equal(api.status, 404, 'the API is not served here');
  t.match(await api.json(), { errors: [{ type: 'notFound', message: String }] }, "in the spec's error shape");

  child.kill('SIGTERM');
  t.equal(await exited(child), 0, 'exit code 0 on SIGTERM');
  t.notMatch(output.stderr, /shutdown step failed/);
  t.notMatch(output.stderr, /Deprecation/, 'no deprecation warning among the log lines');
  t.notMatch(output.stdout, /SMS_GATEWAY/, 'workers send no texts: nothing to warn about');
});

for (const { how, signal, send } of [
  { how: 'a process manager signalling npm', signal: 'SIGTERM', send: (npm: ChildProcess) => npm.kill('SIGTERM') },
  // Ctrl-C in a terminal signals the whole foreground group: Plugboard hears it from the terminal and from npm.
  { how: 'Ctrl-C (the whole process group)', signal: 'SIGINT', send: (npm: ChildProcess) => process.kill(-npm.pid!, 'SIGINT') },
] as const) t.test(`npm run start:workers stopped by ${how}: one graceful shutdown, no process left behind holding its port`, async (t) => {
  const workersPort = await freePort();
  const prefix = uniquePrefix('npmstart');
  const dataDir = await tempDir(t, 'npmstart');
  t.teardown(() => wipePrefix(prefix));
  // npm signals only its own child; a shell between them that does not exec would keep the signal to itself.
  const npm = spawn('npm', ['run', '--silent', 'start:workers'], {
    env: { ...process.env, WORKERS_PORT: String(workersPort), KEY_PREFIX: prefix, DATA_DIR: dataDir, ...testRedisEnv, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  npm.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.teardown(() => {
    try {
      process.kill(-npm.pid!, 'SIGKILL');
    } catch {
      // the whole group has already exited
    }
  });
  const readyz = `http://127.0.0.1:${workersPort}/readyz`;
  await waitFor('/readyz', async () => ((await fetch(readyz)).status === 200 ? true : undefined));

  send(npm);
  await exited(npm);
  await waitFor('the port to close', () => fetch(readyz).then(() => undefined, () => true), 15_000);
  t.match(stderr, `${signal}: shutting down`, 'Plugboard itself heard the signal');
  t.notMatch(stderr, /again: exiting now|shutdown took too long/, 'and shut down in its own time, not cut short by a copy of the signal');
});

t.test('SIGTERM while Redis is away: the process stops at once with exit 0 instead of waiting out the grace period', async (t) => {
  const redis = await createPrivateRedis();
  t.teardown(() => redis.destroy());
  const port = await freePort();
  const dataDir = await tempDir(t, 'redis-away');
  const { child, output } = startPlugboard(
    { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '', DATA_DIR: dataDir, PORT: String(port), SANDBOX_PORT: '0', SHUTDOWN_GRACE_SECONDS: '60', LOG_LEVEL: 'warn', BOOTSTRAP_DEMO: 'false' },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor('/readyz', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined));
  await redis.kill();
  await waitFor('Redis to count as lost', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 503 ? true : undefined));

  child.kill('SIGTERM');
  t.equal(await exited(child), 0, 'exit code 0, before the 60 s grace period ran out');
  t.match(output.stdout, /Redis unreachable for 5 s: workers stop without waiting for their running jobs/);
  t.notMatch(output.stderr, /shutdown took too long/);
});

t.test('an invalid configuration exits non-zero and names every problem', async (t) => {
  const dataDir = await tempDir(t, 'badconfig');
  const { child, output } = startPlugboard({ PORT: 'abc', SANDBOX_PORT: '-1', HOST: 'http://0.0.0.0', DATA_DIR: dataDir, ...testRedisEnv });
  t.equal(await exited(child), 1);
  t.match(output.stderr, /Invalid configuration/);
  t.match(output.stderr, /PORT must be an integer between 0 and 65535 \(got "abc"\)/);
  t.match(output.stderr, /SANDBOX_PORT must be an integer/);
  t.match(output.stderr, /HOST must be an IP address or a host name \(got "http:\/\/0.0.0.0"\)/);
});

t.test('a port in use or an address not of this machine stops start-up, naming the variable to change', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const takenPort = (taken.address() as AddressInfo).port;
  for (const [env, expected] of [
    [{ PORT: String(takenPort) }, new RegExp(`PORT=${takenPort} is already in use on 127.0.0.1; stop what holds it or choose another PORT`)],
    // 192.0.2.0/24 is reserved for documentation: no machine has it.
    [{ PORT: '0', HOST: '192.0.2.1' }, /HOST=192.0.2.1 is not an address of this machine \(EADDRNOTAVAIL\)/],
  ] as const) {
    const prefix = uniquePrefix('listen');
    t.teardown(() => wipePrefix(prefix));
    const encryptionKeys = `k1:${Buffer.alloc(32, 3).toString('base64')}`;
    const { child, output } = startPlugboard({ ...env, SANDBOX_PORT: '0', KEY_PREFIX: prefix, ENCRYPTION_KEYS: encryptionKeys, DATA_DIR: await tempDir(t, 'listen'), ...testRedisEnv, LOG_LEVEL: 'warn' }, 'api');
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    t.equal(await exited(child), 1);
    t.match(output.stderr, expected);
  }
});

t.test('a workers process whose WORKERS_PORT is in use stops before it takes any job', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const takenPort = (taken.address() as AddressInfo).port;
  const prefix = uniquePrefix('listen');
  t.teardown(() => wipePrefix(prefix));
  const encryptionKeys = `k1:${Buffer.alloc(32, 3).toString('base64')}`;
  const env = { WORKERS_PORT: String(takenPort), KEY_PREFIX: prefix, ENCRYPTION_KEYS: encryptionKeys, DATA_DIR: await tempDir(t, 'listen'), ...testRedisEnv, LOG_LEVEL: 'info' };
  const { child, output } = startPlugboard(env, 'workers');
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  t.equal(await exited(child), 1);
  t.match(output.stderr, new RegExp(`WORKERS_PORT=${takenPort} is already in use`));
  t.notMatch(output.stdout, /workers started/);
});

/** A "Redis" that takes connections and never answers: startup waits on it for as long as the test likes. */
async function silentRedis(t: { teardown(fn: () => unknown): void }): Promise<{ url: string; connected: Promise<void> }> {
  const sockets: Socket[] = [];
  let onConnection = () => {};
  const connected = new Promise<void>((resolve) => (onConnection = resolve));
  const server = createServer((socket) => {
    sockets.push(socket);
    onConnection();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`, connected };
}

t.test('start-up waiting for a Redis that does not answer says where it waits, without the password', async (t) => {
  const redis = await silentRedis(t);
  const urlWithPassword = redis.url.replace('redis://', 'redis://:hunter2@');
  const { child, output } = startPlugboard(
    { REDIS_URL: urlWithPassword, REDIS_CLUSTER_NODES: '', DATA_DIR: await tempDir(t, 'redis-wait'), PORT: String(await freePort()), SANDBOX_PORT: '0', LOG_LEVEL: 'warn' },
    'api',
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const expected = `start-up is waiting for Redis at REDIS_URL (${redis.url.replace('redis://', 'redis://***@')}) to answer`;
  await waitFor('the notice', async () => (output.stdout.includes(expected) ? true : undefined));
  t.notMatch(output.stdout + output.stderr, /hunter2/);
});

for (const signals of [1, 2]) {
  t.test(`${signals === 1 ? 'SIGTERM' : 'a second SIGTERM'} during startup ends the process through its shutdown, not Node's default`, async (t) => {
    const redis = await silentRedis(t);
    const dataDir = await tempDir(t, 'startup-signal');
    const { child, output } = startPlugboard(
      { REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '', DATA_DIR: dataDir, PORT: String(await freePort()), SANDBOX_PORT: '0', SHUTDOWN_GRACE_SECONDS: signals === 1 ? '1' : '60', LOG_LEVEL: 'warn' },
      'workers',
    );
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await redis.connected;
    child.kill('SIGTERM');
    if (signals === 2) {
      await waitFor('the shutdown to begin', async () => (output.stderr.includes('SIGTERM: shutting down') ? true : undefined));
      // Later than a copy of the first signal would come (as npm passes one on), so this is an operator's second.
      await sleep(1_200);
      child.kill('SIGTERM');
    }
    // Exiting with a code (not by the signal) is what runs the 'exit' handlers, which stop a private redis-server.
    t.equal(await exited(child), 1, 'exit code 1: startup never finished');
    t.equal(child.signalCode, null, 'not killed by the signal');
    t.match(output.stderr, signals === 1 ? /SIGTERM: shutting down\nshutdown took too long; exiting/ : /SIGTERM: shutting down\nSIGTERM again: exiting now/);
  });
}
