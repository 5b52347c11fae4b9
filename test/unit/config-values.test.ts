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

t.test('METRICS_TOKEN: unset leaves /metrics open; set, it must be a bearer token too long to guess, and is never echoed', async (t) => {
  t.equal(loadConfig(required).metricsToken, undefined);
  const token = randomBytes(32).toString('base64url');
  t.equal(loadConfig({ ...required, METRICS_TOKEN: ` ${token} ` }).metricsToken, token, 'surrounding spaces, as from a .env file, are dropped');
  const invalid: [string, string][] = [
    ['short-but-valid-token', 'too short'],
    [`${token} more`, 'a space, which no bearer token holds'],
    [`${token}!`, 'a character outside the bearer token syntax'],
    [`${token}=x`, 'padding in the middle'],
  ];
  for (const [value, why] of invalid) {
    const problems = problemsOf({ METRICS_TOKEN: value });
    t.match(problems, [/^METRICS_TOKEN must be 32 to 1024 letters, digits or -._~\+\//], why);
    t.notMatch(problems.join('\n'), value.slice(0, 12), `${why}: the value stays out of the problem`);
  }
});
