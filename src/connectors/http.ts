/**
 * The one HTTP client every connector uses to talk to provider websites, so they all share the same
 * timeouts, redirect stance, retry policy and error mapping.
 *
 * - Timeouts are explicit: got has none by default, and a provider that accepts a connection and then
 *   says nothing would otherwise hold a worker forever.
 * - Redirects are never followed: to a website scraper a redirect means something (logged out, maintenance
 *   page, new MFA step), so the connector sees it as a 3xx response and decides.
 * - got's own retry is off; the one retry we make is in `sendRetryingReset`.
 * - Cookies live in a jar the caller passes per request, because a connector restores it from the stored
 *   login state or session on every step rather than keeping one in memory.
 */
import type { IncomingHttpHeaders } from 'node:http';
import got, { RequestError } from 'got';
import type { CookieJar } from 'tough-cookie';
import { ProviderProtocolError, ProviderUnavailableError } from './types.ts';

export interface ProviderHttpOptions {
  /** Time to establish the TCP (and TLS) connection. */
  connectTimeoutMs?: number;
  /** Time from sending the request to receiving the response headers. */
  responseTimeoutMs?: number;
  /** Ceiling for the whole request, body included. */
  requestTimeoutMs?: number;
  /** Largest response body read (after decompression); a longer one is a protocol error, not held in memory. */
  maxResponseBytes?: number;
  userAgent?: string;
}

export interface ProviderRequest {
  method: 'GET' | 'POST';
  url: string;
  cookieJar: CookieJar;
  /** Sent as a JSON body. */
  json?: unknown;
}

export interface ProviderResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ProviderHttp {
  /**
   * Performs one request and returns whatever status the provider answered, except that not being able to
   * reach the provider (timeout, connection failure, 502/503/504) throws `ProviderUnavailableError`.
   */
  request(request: ProviderRequest): Promise<ProviderResponse>;
}

const DEFAULTS = {
  connectTimeoutMs: 5_000,
  // Utility websites can be slow to render an accounts page; a worker waits that long and no longer.
  responseTimeoutMs: 20_000,
  requestTimeoutMs: 30_000,
  // A utility's heaviest page (an account list as HTML) is a few MB; a body beyond this is a fault or an
  // attack, and reading it whole would take a worker's memory with it.
  maxResponseBytes: 20 * 1024 * 1024,
  userAgent: 'Plugboard-Connector/0.1',
} satisfies Required<ProviderHttpOptions>;

/** Gateway and maintenance answers: the website is there but not serving right now. */
const UNAVAILABLE_STATUSES = new Set([502, 503, 504]);

/** Transport failures worth retrying later, as opposed to programming errors. */
const UNREACHABLE_CODES = new Set([
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);

export function createProviderHttp(options: ProviderHttpOptions = {}): ProviderHttp {
  const settings = { ...DEFAULTS, ...options };
  const client = got.extend({
    timeout: {
      connect: settings.connectTimeoutMs,
      response: settings.responseTimeoutMs,
      request: settings.requestTimeoutMs,
    },
    followRedirect: false,
    throwHttpErrors: false,
    retry: { limit: 0 },
    headers: { 'user-agent': settings.userAgent },
  });

  async function send(request: ProviderRequest): Promise<ProviderResponse> {
    const pending = client(request.url, {
      method: request.method,
      cookieJar: request.cookieJar,
      ...(request.json === undefined ? {} : { json: request.json }),
    });
    let isTooLarge = false;
    pending.on('downloadProgress', ({ transferred }) => {
      if (transferred <= settings.maxResponseBytes || isTooLarge) return;
      isTooLarge = true;
      pending.cancel();
    });
    try {
      const response = await pending;
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      if (isTooLarge) throw new ProviderProtocolError(`${describeTarget(request)} answered more than ${settings.maxResponseBytes} bytes`);
      throw error;
    }
  }

  async function sendRetryingReset(request: ProviderRequest): Promise<ProviderResponse> {
    try {
      return await send(request);
    } catch (error) {
      // Node keeps idle sockets alive, and a server may close one just as we reuse it. Repeating a GET
      // once is safe; a POST (a login, a code) is not, because the provider may have acted on it.
      if (request.method === 'GET' && error instanceof RequestError && error.code === 'ECONNRESET') {
        return send(request);
      }
      throw error;
    }
  }

  return {
    async request(request) {
      let response: ProviderResponse;
      try {
        response = await sendRetryingReset(request);
      } catch (error) {
        throw describeFailure(request, error);
      }
      if (UNAVAILABLE_STATUSES.has(response.statusCode)) {
        throw new ProviderUnavailableError(`${describeTarget(request)} answered HTTP ${response.statusCode}`);
      }
      return response;
    },
  };
}

/**
 * Turns got's errors into the connector contract's two errors. got's errors carry the request options
 * (body with the password, cookies), so they are never kept as a `cause` where a logger could print them.
 */
function describeFailure(request: ProviderRequest, error: unknown): unknown {
  if (!(error instanceof RequestError)) return error;
  const message = `${describeTarget(request)} failed: ${error.code}`;
  return UNREACHABLE_CODES.has(error.code) ? new ProviderUnavailableError(message) : new ProviderProtocolError(message);
}

/** Method, origin and path only: query strings of real providers may carry tokens. */
function describeTarget(request: ProviderRequest): string {
  const url = new URL(request.url);
  return `${request.method} ${url.origin}${url.pathname}`;
}
