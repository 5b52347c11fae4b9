/**
 * SPEC §7's status mapping: how each current (status, statusDetail) pair reads in the legacy v1 API.
 * The table is keyed by statusDetail because each detail belongs to exactly one status (see
 * `STATUS_DETAILS` in the state machine); typing it as a `Record` over every detail means a new detail
 * does not compile until someone decides what v1 clients see for it.
 */
import { STATUS_DETAILS, type Status, type StatusDetail } from '../domain/credential-state.ts';

export const V1_STATUSES = ['OK', 'PENDING', 'ACTION_REQUIRED', 'NON_FUNCTIONAL'] as const;
export type V1Status = (typeof V1_STATUSES)[number];

export type V1StatusDetail =
  | 'NO_ACTION_REQUIRED'
  | 'UNDER_REVIEW'
  | 'WEBSITE_DOWN'
  | 'LOGIN_FAILURE'
  | 'ACCOUNT_LOCKED'
  | 'MULTI_FACTOR_AUTH_FAILURE'
  | 'DISABLED';

export interface V1StatusPair {
  status: V1Status;
  statusDetail: V1StatusDetail;
}

const OK = { status: 'OK', statusDetail: 'NO_ACTION_REQUIRED' } as const;
const UNDER_REVIEW = { status: 'PENDING', statusDetail: 'UNDER_REVIEW' } as const;
const MFA_FAILURE = { status: 'ACTION_REQUIRED', statusDetail: 'MULTI_FACTOR_AUTH_FAILURE' } as const;

const V1_STATUS_BY_DETAIL: Record<StatusDetail, V1StatusPair> = {
  LOGIN_AND_DATA_DISCOVERY_SUCCESS: OK,
  DATA_EXTRACTION_IN_PROGRESS: UNDER_REVIEW,
  MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED: UNDER_REVIEW,
  PROVIDER_WEBSITE_INACCESSIBLE: { status: 'PENDING', statusDetail: 'WEBSITE_DOWN' },
  INVALID_CREDENTIALS: { status: 'ACTION_REQUIRED', statusDetail: 'LOGIN_FAILURE' },
  OTHER_ACCESS_LIMITATION: { status: 'ACTION_REQUIRED', statusDetail: 'ACCOUNT_LOCKED' },
  MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED: MFA_FAILURE,
  MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED: MFA_FAILURE,
  MULTI_FACTOR_AUTHENTICATION_CODE_INVALID: MFA_FAILURE,
  MULTI_FACTOR_AUTHENTICATION_TIMED_OUT: MFA_FAILURE,
  MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED: MFA_FAILURE,
  DISABLED: { status: 'NON_FUNCTIONAL', statusDetail: 'DISABLED' },
};

/** The v1 status of a current pair. A pair the state machine never produces is a bug, not a v1 status. */
export function toV1Status(status: Status, statusDetail: StatusDetail): V1StatusPair {
  if (STATUS_DETAILS[statusDetail].status !== status) throw new Error(`${status}/${statusDetail} is not a credential state`);
  return V1_STATUS_BY_DETAIL[statusDetail];
}

/** v1 clients resolve these through the current API's MFA endpoints, so their credentials carry `_links.mfa`. */
export function needsMfa(pair: V1StatusPair): boolean {
  return pair.statusDetail === MFA_FAILURE.statusDetail;
}
