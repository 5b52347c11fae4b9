/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/).
 *
 * A secret is `whsec_` + base64 of random bytes; the HMAC key is the decoded bytes, not the string.
 * Each delivery attempt signs `${msgId}.${timestamp}.${body}` with every active secret, so a receiver
 * holding either the old or the new secret keeps verifying while a rotation overlaps.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;
const SIGNATURE_VERSION = 'v1';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Receivers following the standard reject timestamps more than five minutes away from their clock. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

export type SignatureInput = {
  /** Every secret currently signing for the endpoint (the new one and, during a rotation, the old one). */
  secrets: readonly string[];
  /** The event id: stable across retries so receivers can deduplicate. */
  msgId: string;
  /** Unix time in seconds of this attempt. */
  timestamp: number;
  /** The exact bytes sent as the request body. */
  body: string;
};

export type VerificationResult = { valid: true } | { valid: false; reason: string };

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** The `webhook-signature` header value: one `v1,<base64>` entry per secret, space-separated. */
export function signPayload({ secrets, msgId, timestamp, body }: SignatureInput): string {
  if (secrets.length === 0) throw new Error('signPayload needs at least one secret');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new Error(`webhook timestamp must be whole seconds since the epoch, got ${timestamp}`);
  }
  return secrets
    .map((secret) => `${SIGNATURE_VERSION},${hmac(secret, msgId, timestamp, body).toString('base64')}`)
    .join(' ');
}

export function webhookHeaders(input: SignatureInput): WebhookHeaders {
  return {
    'webhook-id': input.msgId,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': signPayload(input),
  };
}

/**
 * Checks a received webhook the way a receiver should: the timestamp must be within the tolerance
 * window (replay protection) and at least one `v1` entry must match one of the secrets.
 * `headers` may be Node's incoming headers object (lower-case names).
 */
export function verifySignature({
  secrets,
  headers,
  body,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
}: {
  secrets: readonly string[];
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  body: string;
  nowSeconds?: number;
  toleranceSeconds?: number;
}): VerificationResult {
  const msgId = headers['webhook-id'];
  const timestampHeader = headers['webhook-timestamp'];
  const signatureHeader = headers['webhook-signature'];
  if (typeof msgId !== 'string' || typeof timestampHeader !== 'string' || typeof signatureHeader !== 'string') {
    return { valid: false, reason: 'missing or repeated webhook-id, webhook-timestamp or webhook-signature header' };
  }
  if (!/^\d+$/.test(timestampHeader)) return { valid: false, reason: 'webhook-timestamp is not whole seconds' };
  const timestamp = Number(timestampHeader);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) {
    return { valid: false, reason: 'webhook-timestamp is outside the tolerance window' };
  }

  // Compared as text, like the reference libraries: Node's base64 decoder would accept non-canonical variants.
  const received = signatureHeader.split(' ').flatMap((entry) => {
    const [version, signature] = entry.split(',', 2);
    return version === SIGNATURE_VERSION && signature ? [Buffer.from(signature)] : [];
  });
  const matches = secrets.some((secret) => {
    const expected = Buffer.from(hmac(secret, msgId, timestamp, body).toString('base64'));
    return received.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
  });
  return matches ? { valid: true } : { valid: false, reason: 'no signature matches' };
}

function hmac(secret: string, msgId: string, timestamp: number, body: string): Buffer {
  return createHmac('sha256', secretKey(secret)).update(`${msgId}.${timestamp}.${body}`).digest();
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : '';
  // Node's base64 decoder silently skips garbage; a malformed secret must fail loudly instead of signing wrong.
  if (!BASE64.test(encoded)) throw new Error('webhook secret must be "whsec_" followed by base64');
  return Buffer.from(encoded, 'base64');
}
