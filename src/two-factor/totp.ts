// Authenticator-app (TOTP, RFC 6238) two-factor codes for dashboard users.
//
// The parameters are the ones every mainstream authenticator app assumes (SHA-1, 6 digits, 30 s), so a QR code
// scanned anywhere produces codes we accept. Replay protection is the caller's job in one respect only: it must
// store the `step` of every accepted code and pass it back as `lastAcceptedStep`, atomically with the check.

import { NobleCryptoPlugin, ScureBase32Plugin, TOTP } from 'otplib';
import QRCode from 'qrcode';

const TOTP_ISSUER = 'Plugboard';
const TOTP_ALGORITHM = 'sha1';
const TOTP_DIGITS = 6;
const TOTP_PERIOD_SECONDS = 30;
/** How many steps either side of "now" we accept, to absorb clock drift and typing time. */
const TOTP_ALLOWED_DRIFT_STEPS = 1;

export type TotpVerification = { ok: true; step: number } | { ok: false };

// One configured instance keeps secret generation, URIs and verification on the same parameters.
const totp = new TOTP({
  issuer: TOTP_ISSUER,
  algorithm: TOTP_ALGORITHM,
  digits: TOTP_DIGITS,
  period: TOTP_PERIOD_SECONDS,
  crypto: new NobleCryptoPlugin(),
  base32: new ScureBase32Plugin(),
});

const WELL_FORMED_CODE = /^\d{6}$/;

/** Six ASCII digits: the shape of both authenticator-app and SMS codes. */
export function isWellFormedCode(code: unknown): code is string {
  return typeof code === 'string' && WELL_FORMED_CODE.test(code);
}

/** A fresh Base32 secret of 20 random bytes (160 bits, the HMAC-SHA-1 key size RFC 4226 recommends). */
export function generateTotpSecret(): string {
  return totp.generateSecret();
}

/**
 * The `otpauth://totp/...` URI an authenticator app imports. The label is `Plugboard:<email>`; colons are removed
 * from the email because the Key URI Format uses the first colon to separate issuer from account name.
 * Algorithm, digits and period are our values but also the format's defaults, so otplib leaves them out of the URI.
 */
export function otpauthUri({ secret, email }: { secret: string; email: string }): string {
  return totp.toURI({ label: email.replaceAll(':', ''), secret });
}

/** The URI as an SVG QR code, ready to inline in the dashboard. */
export function totpQrCodeSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M' });
}

/**
 * Checks `code` against `secret` at `now` (default: the current time), accepting the neighbouring steps too.
 * A step at or before `lastAcceptedStep` is refused, so a code that was accepted once never works again.
 * Returns `{ ok: false }` for any wrong or malformed code instead of throwing; a malformed *secret* is a storage
 * bug and does throw.
 */
export async function verifyTotp({
  secret,
  code,
  now = new Date(),
  lastAcceptedStep,
}: {
  secret: string;
  code: unknown;
  now?: Date;
  lastAcceptedStep?: number;
}): Promise<TotpVerification> {
  // otplib throws on tokens of the wrong shape; those are user input, so they are simply wrong codes here.
  if (!isWellFormedCode(code)) return { ok: false };

  const epochSeconds = Math.floor(now.getTime() / 1000);
  const latestAcceptableStep = Math.floor(epochSeconds / TOTP_PERIOD_SECONDS) + TOTP_ALLOWED_DRIFT_STEPS;
  // otplib also throws when afterTimeStep lies beyond the window; every step in the window is then a replay.
  if (lastAcceptedStep !== undefined && lastAcceptedStep >= latestAcceptableStep) return { ok: false };

  const result = await totp.verify(code, {
    secret,
    epoch: epochSeconds,
    epochTolerance: TOTP_ALLOWED_DRIFT_STEPS * TOTP_PERIOD_SECONDS,
    afterTimeStep: lastAcceptedStep,
  });
  return result.valid ? { ok: true, step: result.timeStep } : { ok: false };
}
