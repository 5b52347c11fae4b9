import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, loadConfig, parseEncryptionKeys } from '../../src/config.ts';

const material = () => randomBytes(32).toString('base64');

t.test('ENCRYPTION_KEYS lists kid:key pairs, the first one sealing', async (t) => {
  const [first, second] = [material(), material()];
  const keys = parseEncryptionKeys(`new:${first}, old:${second}`);
  t.same(
    keys.map((key) => [key.kid, key.key.toString('base64')]),
    [
      ['new', first],
      ['old', second],
    ],
  );
  for (const bad of ['k1', `k1:${material()}:x`, 'k1:c2hvcnQ=', `bad kid:${material()}`, `:${material()}`]) {
    t.throws(() => parseEncryptionKeys(bad), `"${bad.slice(0, 12)}…" is refused`);
  }
});

t.test('one kid given twice stops start-up: secrets sealed with one key would be opened with the other', async (t) => {
  t.throws(() => parseEncryptionKeys(`k1:${material()},k2:${material()},k1:${material()}`), { message: /"k1" appears twice/ });
  try {
    loadConfig({ ENCRYPTION_KEYS: `k1:${material()},k1:${material()}` });
    t.fail('expected a ConfigError');
  } catch (error) {
    t.type(error, ConfigError);
    t.match((error as ConfigError).problems, [/^ENCRYPTION_KEYS: key id "k1" appears twice/]);
  }
});
