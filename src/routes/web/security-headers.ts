import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The browser-facing headers of every page, asset and page API response. Set by hand rather than through
 * @fastify/helmet: it is one fixed list, and a dependency would not make it shorter.
 *
 * The Content-Security-Policy allows scripts and styles from our own origin only (no inline code at all),
 * images from our origin or `data:` (the two-factor QR code is shown as a data-URL image, so its SVG can never
 * run script), and requests to our own API only. No site may frame the pages (clickjacking), and no Referer
 * leaves them (the hosted page's token lives in the URL fragment, which is never sent, but defence in depth).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/** An onSend hook for the web route trees. */
export async function addSecurityHeaders(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.headers(SECURITY_HEADERS);
}
