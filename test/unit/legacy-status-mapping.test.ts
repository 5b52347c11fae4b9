import t from 'tap';
import { STATUS_DETAIL_NAMES, STATUS_DETAILS } from '../../src/domain/credential-state.ts';
import { needsMfa, toV1Status } from '../../src/legacy/status-mapping.ts';

/** SPEC §7, written out pair by pair. A pair the state machine gains without a row here fails the first test. */
const EXPECTED: Record<string, string> = {
  'CONNECTION_SUCCESS/LOGIN_AND_DATA_DISCOVERY_SUCCESS': 'OK/NO_ACTION_REQUIRED',
  'CONNECTION_IN_PROGRESS/DATA_EXTRACTION_IN_PROGRESS': 'PENDING/UNDER_REVIEW',
  'CONNECTION_IN_PROGRESS/MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED': 'PENDING/UNDER_REVIEW',
  'CONNECTION_IN_PROGRESS/PROVIDER_WEBSITE_INACCESSIBLE': 'PENDING/WEBSITE_DOWN',
  'CONNECTION_FAILURE/INVALID_CREDENTIALS': 'ACTION_REQUIRED/LOGIN_FAILURE',
  'CONNECTION_FAILURE/OTHER_ACCESS_LIMITATION': 'ACTION_REQUIRED/ACCOUNT_LOCKED',
  'CONNECTION_IN_PROGRESS/MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED': 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE',
  'CONNECTION_IN_PROGRESS/MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED': 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE',
  'CONNECTION_FAILURE/MULTI_FACTOR_AUTHENTICATION_CODE_INVALID': 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE',
  'CONNECTION_FAILURE/MULTI_FACTOR_AUTHENTICATION_TIMED_OUT': 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE',
  'CONNECTION_FAILURE/MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED': 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE',
  'CONNECTION_FAILURE/DISABLED': 'NON_FUNCTIONAL/DISABLED',
};

const CURRENT_PAIRS = STATUS_DETAIL_NAMES.map((detail) => ({ status: STATUS_DETAILS[detail].status, statusDetail: detail }));

t.test('every pair of the state machine has a row in the SPEC table, and no row is left over', async (t) => {
  t.same(CURRENT_PAIRS.map(({ status, statusDetail }) => `${status}/${statusDetail}`).sort(), Object.keys(EXPECTED).sort());
});

for (const { status, statusDetail } of CURRENT_PAIRS) {
  const pair = `${status}/${statusDetail}`;
  t.test(`${pair} → ${EXPECTED[pair]}`, async (t) => {
    const v1 = toV1Status(status, statusDetail);
    t.equal(`${v1.status}/${v1.statusDetail}`, EXPECTED[pair]);
    t.equal(needsMfa(v1), EXPECTED[pair] === 'ACTION_REQUIRED/MULTI_FACTOR_AUTH_FAILURE', 'MFA links exactly for the MFA states');
  });
}

t.test('a pair the state machine never produces is refused, not guessed', async (t) => {
  t.throws(() => toV1Status('CONNECTION_SUCCESS', 'DISABLED'), /not a credential state/);
});
