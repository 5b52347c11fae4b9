import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/local/resolve-config.ts';

t.test('the demo organization is a local start’s default, not a deployment’s', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'resolve-config-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const local = await resolveConfig({ DATA_DIR: dataDir });
  t.equal(local.config.bootstrapDemo, true, 'no ENCRYPTION_KEYS: a local start, with the demo');
  t.match(local.notes, [/generated a local encryption key/]);
  t.equal((await resolveConfig({ DATA_DIR: dataDir, BOOTSTRAP_DEMO: 'false' })).config.bootstrapDemo, false, 'unless turned off');

  const deployed = { ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };
  t.equal((await resolveConfig(deployed)).config.bootstrapDemo, false, 'keys given: no demo, no secrets printed');
  t.equal((await resolveConfig({ ...deployed, BOOTSTRAP_DEMO: 'true' })).config.bootstrapDemo, true, 'unless asked for');
});

t.test('a DATA_DIR that cannot hold the local key is a configuration error naming DATA_DIR', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'resolve-config-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const aFile = path.join(dataDir, 'a-file');
  await writeFile(aFile, '');
  await t.rejects(resolveConfig({ DATA_DIR: path.join(aFile, 'data') }), {
    name: 'ConfigError',
    message: /DATA_DIR ".*a-file\/data" cannot hold the local encryption key \(ENOTDIR.*\); choose another DATA_DIR or set ENCRYPTION_KEYS/,
  });
});
