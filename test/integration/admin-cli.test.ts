import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import t from 'tap';
import { runAdminCommand, UsageError } from '../../src/cli/admin.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { keysMatching, testConfig, testRedisEnv, uniquePrefix, wipePrefix } from '../helper.ts';

const run = promisify(execFile);

t.test('npm run admin -- create-org prints one JSON line whose key gets a working token', async (t) => {
  const prefix = uniquePrefix('admin');
  t.teardown(() => wipePrefix(prefix));
  const env = { ...process.env, ...testRedisEnv, KEY_PREFIX: prefix, ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'info' };
  const { stdout } = await run('npx', ['tsx', 'src/cli/admin.ts', 'create-org', '--name', 'Acme', '--email', 'ops@acme.test', '--password', 'correct horse'], { env });
  const lines = stdout.trim().split('\n');
  t.equal(lines.length, 1, 'exactly one line on stdout (logs go to stderr)');
  const created = JSON.parse(lines[0]!);
  t.same(Object.keys(created), ['organizationId', 'userId', 'keyId', 'clientId', 'clientSecret']);
  t.match(created.keyId, /^key_/);
  t.match(created.organizationId, /^org_/);

  const app = await buildApp(loadConfig(env));
  t.teardown(() => app.close());
  const token = await app.inject({
    method: 'POST',
    url: '/oauth2/token',
    payload: { grant_type: 'client_credentials', client_id: created.clientId, client_secret: created.clientSecret },
  });
  t.equal(token.statusCode, 200);
});

t.test('--password - reads the password from stdin, so it appears in no process list', async (t) => {
  const prefix = uniquePrefix('admin');
  t.teardown(() => wipePrefix(prefix));
  const env = { ...process.env, ...testRedisEnv, KEY_PREFIX: prefix, ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`, LOG_LEVEL: 'warn' };
  const admin = (args: string[], stdin: string) => {
    const child = execFile('npx', ['tsx', 'src/cli/admin.ts', ...args], { env });
    child.stdin?.end(stdin);
    return new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
    });
  };
  const created = await admin(['create-org', '--name', 'Acme', '--email', 'stdin@acme.test', '--password=-'], 'from stdin 123\n');
  t.match(JSON.parse(created), { organizationId: /^org_/ });
  const app = await buildApp(loadConfig(env));
  t.teardown(() => app.close());
  t.ok(await app.services.dashboardSessions.checkPassword('stdin@acme.test', 'from stdin 123', 'ip:192.0.2.1'), 'the password is what stdin held, without its newline');
  await admin(['reset-password', '--email', 'stdin@acme.test', '--password', '-'], 'reset from stdin\r\n');
  t.ok(await app.services.dashboardSessions.checkPassword('stdin@acme.test', 'reset from stdin', 'ip:192.0.2.1'), '--password - as well');
});

t.test('bad usage exits 2 with the usage text; a bad value exits 1 naming it', async (t) => {
  const prefix = uniquePrefix('admin');
  t.teardown(() => wipePrefix(prefix));
  const env = { ...process.env, ...testRedisEnv, KEY_PREFIX: prefix, ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };
  const missing = await run('npx', ['tsx', 'src/cli/admin.ts', 'create-org', '--name', 'Acme'], { env }).catch((error) => error);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /missing --email, --password/);
  t.match(missing.stderr, /usage: npm run admin/);

  const badConfig = await run('npx', ['tsx', 'src/cli/admin.ts', 'rotate-keys'], { env: { ...env, ENCRYPTION_KEYS: 'nope' } }).catch((error) => error);
  t.equal(badConfig.code, 1);
  t.match(badConfig.stderr, /ENCRYPTION_KEYS/);
});

t.test('an unreachable Redis is named, with the client error and without the password in REDIS_URL', async (t) => {
  const config = testConfig({ REDIS_URL: 'redis://admin:hunter2@127.0.0.1:1', REDIS_CLUSTER_NODES: '' });
  await t.rejects(runAdminCommand(config, ['rotate-keys']), { message: 'cannot reach Redis at REDIS_URL (redis://***@127.0.0.1:1): connect ECONNREFUSED 127.0.0.1:1' });
});

t.test('commands in process: unknown ones, extra flags, revoke-key, rotate-keys', async (t) => {
  const config = testConfig();
  t.teardown(() => wipePrefix(config.keyPrefix));

  await t.rejects(runAdminCommand(config, []), UsageError);
  await t.rejects(runAdminCommand(config, ['drop-everything']), { message: 'unknown command "drop-everything"' });
  await t.rejects(runAdminCommand(config, ['rotate-keys', '--force']), UsageError);
  await t.rejects(runAdminCommand(config, ['create-org', '--name', 'A', '--email', 'not-an-email', '--password', 'long enough']), {
    name: 'PlugError',
    message: 'email is not a valid address',
  });
  await t.rejects(runAdminCommand(config, ['create-org', '--name', 'A', '--email', 'm\u0000@b.test', '--password', 'long enough']), {
    message: 'email is not a valid address',
  }, 'no control characters (they would end up in a key name)');

  const created = (await runAdminCommand(config, ['create-org', '--name', 'A', '--email', 'a@b.test', '--password', 'long enough'])) as {
    organizationId: string;
    clientId: string;
  };
  const app = await buildApp(config);
  t.teardown(() => app.close());
  const [key] = await app.services.apiKeys.list(created.organizationId);
  t.same(await runAdminCommand(config, ['revoke-key', '--org', created.organizationId, '--key', key!.id]), {
    organizationId: created.organizationId,
    revokedKeyId: key!.id,
  });
  t.same(await app.services.apiKeys.list(created.organizationId), []);
  await t.rejects(runAdminCommand(config, ['revoke-key', '--org', created.organizationId, '--key', key!.id]), { name: 'PlugError', message: 'API key not found' });

  // A key named by the client id an operator knows it by; another organization's client id is not found.
  const second = (await runAdminCommand(config, ['create-org', '--name', 'B', '--email', 'b@b.test', '--password', 'long enough'])) as typeof created & { keyId: string };
  await t.rejects(runAdminCommand(config, ['revoke-key', '--org', created.organizationId, '--key', second.clientId]), { message: 'API key not found' });
  t.same(await runAdminCommand(config, ['revoke-key', '--org', second.organizationId, '--key', second.clientId]), {
    organizationId: second.organizationId,
    revokedKeyId: second.keyId,
  });
  t.same(await app.services.apiKeys.list(second.organizationId), []);

  // A refused create-org (the email is taken, the password too short) leaves no organization behind.
  await t.rejects(runAdminCommand(config, ['create-org', '--name', 'C', '--email', 'b@b.test', '--password', 'long enough']), { message: /already exists/ });
  await t.rejects(runAdminCommand(config, ['create-org', '--name', 'C', '--email', 'c@b.test', '--password', 'short']), { message: /at least 8/ });
  const records = await keysMatching(app.services.ctx.redis, `${config.keyPrefix}:{org_*}:org`);
  t.same(records.sort(), [created.organizationId, second.organizationId].map((id) => app.services.ctx.keys.org(id).record).sort());

  // Secrets sealed with an old key are re-sealed with the new first key.
  const secretsKey = `${app.services.ctx.keys.org(created.organizationId).credentialSecrets('crd_test')}`;
  await app.services.ctx.secrets.write(secretsKey, { password: 'hunter2' });
  const rotated = { ...config, encryptionKeys: [{ kid: 'new', key: randomBytes(32) }, ...config.encryptionKeys] };
  t.same(await runAdminCommand(rotated, ['rotate-keys']), { scanned: 1, resealed: 1 });
  t.same(await runAdminCommand(rotated, ['rotate-keys']), { scanned: 1, resealed: 0 });
});

t.test('reset-password: a locked-out admin gets a new password, their sessions end and two-factor login unlocks', async (t) => {
  const config = testConfig();
  t.teardown(() => wipePrefix(config.keyPrefix));
  const created = (await runAdminCommand(config, ['create-org', '--name', 'A', '--email', 'locked@b.test', '--password', 'long enough'])) as {
    organizationId: string;
    userId: string;
  };
  const app = await buildApp(config);
  t.teardown(() => app.close());
  const user = { id: created.userId, organizationId: created.organizationId };
  const session = await app.services.dashboardSessions.loginWithPasswordOnly('locked@b.test', 'long enough', 'ip:192.0.2.1');
  const failures = app.services.ctx.keys.org(created.organizationId).twoFactor(created.userId).consecutiveFailures;
  await app.services.ctx.redis.set(failures, '100');

  await t.rejects(runAdminCommand(config, ['reset-password', '--email', 'nobody@b.test', '--password', 'new password']), { message: /no user/ });
  await t.rejects(runAdminCommand(config, ['reset-password', '--email', 'locked@b.test', '--password', 'short']), { name: 'PlugError' });
  t.same(await runAdminCommand(config, ['reset-password', '--email', 'LOCKED@b.test', '--password', 'new password']), { organizationId: user.organizationId, userId: user.id });
  t.equal(await app.services.ctx.redis.exists(failures), 0, 'the two-factor lock is lifted');
  await t.rejects(app.services.dashboardSessions.authenticate(session.token), { name: 'PlugError', message: /session/i }, 'the session has ended');
  t.ok(await app.services.dashboardSessions.checkPassword('locked@b.test', 'new password', 'ip:192.0.2.1'), 'the new password works');
  t.notOk(await app.services.dashboardSessions.checkPassword('locked@b.test', 'long enough', 'ip:192.0.2.1'), 'the old one does not');
});
