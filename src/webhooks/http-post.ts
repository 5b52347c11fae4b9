import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';

/**
 * The one request a webhook delivery makes, on node:http directly. Provider connectors use got (cookies,
 * redirects, retries); a delivery needs none of that, and in the delivery benchmark got's per-request option
 * building and stream wrapping were the workers' largest single cost (README "Performance").
 *
 * What it guarantees, as the got setup before it did: no redirects are followed, the whole exchange has a
 * deadline, the connection's address passes `lookup` (the SSRF guard) before any packet is sent, and at most
 * `maxResponseBytes` of the answer are kept, so a receiver cannot make us buffer a huge body.
 */
export interface PostOutcome {
  responseStatus: number | null;
  responseHeaders: IncomingHttpHeaders;
  responseBody: string | null;
  isResponseBodyTruncated: boolean;
  /** Why no status came back (transport error, refusal, timeout); never the request, which carries signatures. */
  error: string | null;
}

export interface WebhookPosterOptions {
  timeoutMs: number;
  lookup: LookupFunction;
  userAgent: string;
  maxResponseBytes: number;
}

export function createWebhookPoster(options: WebhookPosterOptions) {
  // Keep-alive: a busy endpoint reuses its connections instead of a TCP (and TLS) handshake per delivery.
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

  function post(url: string, headers: Record<string, string>, body: string): Promise<PostOutcome> {
    return send(url, headers, body, options.timeoutMs, true);
  }

  /**
   * `mayRetryReset`: a keep-alive socket the receiver closed (its idle timeout) just as we reused it fails
   * with ECONNRESET before any answer: the race Node documents for `request.reusedSocket`. The receiver
   * almost surely never handled that request (and a duplicate is allowed: delivery is at least once), so it
   * is sent once more on a new connection, within what is left of the deadline, instead of failing the
   * attempt and waiting for the retry schedule (5 s ± 20 % at first; the likely cause of benchmark 4's rare
   * 4–6 s outliers). A reset on a new connection, or after a status, is an answer like any other.
   */
  function send(url: string, headers: Record<string, string>, body: string, timeoutMs: number, mayRetryReset: boolean): Promise<PostOutcome> {
    const startedAt = Date.now();
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      let status: number | null = null;
      let responseHeaders: IncomingHttpHeaders = {};
      const settle = (error: string | null, truncated: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        const body = status === null ? null : textWithin(Buffer.concat(chunks), options.maxResponseBytes);
        resolve({ responseStatus: status, responseHeaders, responseBody: body?.text ?? null, isResponseBodyTruncated: truncated || (body?.isCut ?? false), error });
      };
      // A status already received decides the outcome; a body cut short afterwards does not undo it.
      const fail = (error: Error & { code?: string }) => settle(status === null ? describeError(error) : null, status !== null);

      const isHttps = url.startsWith('https:');
      const request = (isHttps ? https : http).request(url, {
        method: 'POST',
        agent: isHttps ? agents.https : agents.http,
        lookup: options.lookup,
        headers: { ...headers, 'user-agent': options.userAgent, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      const deadline = setTimeout(() => {
        request.destroy(Object.assign(new Error(`no complete answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      request.on('error', (error: Error & { code?: string }) => {
        const remainingMs = timeoutMs - (Date.now() - startedAt);
        if (mayRetryReset && request.reusedSocket && status === null && error.code === 'ECONNRESET' && remainingMs > 0 && !settled) {
          settled = true;
          clearTimeout(deadline);
          resolve(send(url, headers, body, remainingMs, false));
          return;
        }
        fail(error);
      });
      request.on('response', (response) => {
        status = response.statusCode ?? null;
        responseHeaders = response.headers;
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size > options.maxResponseBytes) {
            settle(null, true);
            request.destroy();
          }
        });
        response.on('end', () => settle(null, false));
        response.on('error', fail);
        // Closed without 'end' or 'error' (destroyed by us after the limit, or the socket went away).
        response.on('close', () => settle(null, !response.complete));
      });
      request.end(body);
    });
  }

  // Idle keep-alive sockets are unref'd by the agent, so they never keep a process from exiting.
  return { post };
}

/**
 * The answer's first `maxBytes` as text of at most `maxBytes` in UTF-8. `stream: true` holds back a character
 * cut in half by the limit instead of mangling it; bytes that are not UTF-8 become U+FFFD, three bytes each, so
 * the text is cut again where that made it longer (5,000 bytes of 0xFF would be 12 KiB).
 */
function textWithin(bytes: Buffer, maxBytes: number): { text: string; isCut: boolean } {
  const text = new TextDecoder('utf-8').decode(bytes.subarray(0, maxBytes), { stream: true });
  const encoded = Buffer.from(text);
  if (encoded.length <= maxBytes) return { text, isCut: false };
  return { text: new TextDecoder('utf-8').decode(encoded.subarray(0, maxBytes), { stream: true }), isCut: true };
}

/** Transport errors as an integrator can act on them: the code in front when the message lacks it. */
function describeError(error: Error & { code?: string }): string {
  const { code, message } = error;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
