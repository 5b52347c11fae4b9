import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.ts';

const required = { ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}` };
const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig({ ...required, ...env });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
};

t.test('KEY_PREFIX is refused when it could break hash tags or SCAN patterns', async (t) => {
  for (const prefix of ['a{b}', 'pb:x', 'pb*', 'p b']) {
    t.match(problemsOf({ KEY_PREFIX: prefix }), [/^KEY_PREFIX may only hold/], prefix);
  }
  t.equal(loadConfig({ ...required, KEY_PREFIX: 'pb-prod_2.eu' }).keyPrefix, 'pb-prod_2.eu');
});

t.test('SESSION_WARNING_SECONDS=0 turns the warning off and is accepted', async (t) => {
  t.equal(loadConfig({ ...required, SESSION_WARNING_SECONDS: '0' }).sessionWarningSeconds, 0);
  t.match(problemsOf({ SESSION_WARNING_SECONDS: '-1' }), [/SESSION_WARNING_SECONDS must be an integer between 0 and/]);
});
