// Words and times for people: status labels, dates, countdowns.

const DETAIL_LABELS = {
  DATA_EXTRACTION_IN_PROGRESS: 'Logging in',
  PROVIDER_WEBSITE_INACCESSIBLE: 'Provider website down, retrying',
  MULTI_FACTOR_AUTHENTICATION_METHOD_REQUIRED: 'Choose where to send the code',
  MULTI_FACTOR_AUTHENTICATION_CODE_REQUIRED: 'Enter the verification code',
  MULTI_FACTOR_AUTHENTICATION_CODE_SUBMITTED: 'Checking the code',
  LOGIN_AND_DATA_DISCOVERY_SUCCESS: 'Connected',
  INVALID_CREDENTIALS: 'Wrong username or password',
  OTHER_ACCESS_LIMITATION: 'Account locked by the provider',
  MULTI_FACTOR_AUTHENTICATION_CODE_INVALID: 'Too many wrong codes',
  MULTI_FACTOR_AUTHENTICATION_TIMED_OUT: 'Verification timed out',
  MULTI_FACTOR_AUTHENTICATION_REFRESH_REQUIRED: 'Provider session ended, new code needed',
  DISABLED: 'Disabled',
};

const STATUS_LABELS = {
  CONNECTION_IN_PROGRESS: 'In progress',
  CONNECTION_SUCCESS: 'Connected',
  CONNECTION_FAILURE: 'Failed',
};

export const METHOD_LABELS = { SMS: 'Text message (SMS)', CALL: 'Phone call', EMAIL: 'Email', APP: 'Authenticator app' };

export function detailLabel(statusDetail) {
  return DETAIL_LABELS[statusDetail] ?? statusDetail;
}

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? status;
}

/** The `badge` class modifier of a status ("Action required" has its own amber badge). */
export function statusTone(credential) {
  if (credential.status === 'CONNECTION_SUCCESS') return 'success';
  if (credential.status === 'CONNECTION_FAILURE') return 'danger';
  return 'info';
}

export function dateTime(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** `9:05` for 545 seconds; hours when there are any. */
export function clock(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = String(seconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

export function secondsUntil(iso) {
  return (Date.parse(iso) - Date.now()) / 1000;
}
