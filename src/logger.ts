import { stdSerializers, type LoggerOptions } from 'pino';
import type { Config } from './config.ts';

/**
 * Secrets never reach the logs: request headers that authenticate, and any body or object field that
 * holds a password, secret, code or token, are censored wherever they appear.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.password2',
  '*.password3',
  '*.password4',
  '*.client_secret',
  '*.clientSecret',
  '*.secret',
  '*.code',
  '*.recoveryCode',
  '*.access_token',
  '*.token',
  '*.session',
  '*.loginState',
];

/**
 * ioredis puts the failed command on its errors (`command: { name, args }`), and the standard serializer
 * copies every property: the arguments (record bodies, anything a script was given) would land in the log.
 */
function errorWithoutCommandArguments(error: Error) {
  const serialized = stdSerializers.err(error);
  const command = (error as { command?: { name?: unknown } }).command;
  return command === undefined ? serialized : { ...serialized, command: { name: command.name } };
}

/** Query parameters whose values are kept out of the logs, by name: a client may put a secret in the URL. */
const SECRET_QUERY_PARAMETER = /secret|pass|token|code|key|sig|auth|session|otp/i;

/**
 * The URL as logged: a client that sends `?client_secret=…` (our routes take secrets in bodies and headers
 * only, but a misconfigured client may try) must not leave it in every log line of its request.
 */
export function urlForLog(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  const query = new URLSearchParams(url.slice(queryStart + 1));
  let redacted = false;
  for (const name of new Set(query.keys())) {
    if (!SECRET_QUERY_PARAMETER.test(name)) continue;
    query.set(name, '[redacted]');
    redacted = true;
  }
  return redacted ? `${url.slice(0, queryStart)}?${query.toString()}` : url;
}

interface LoggedRequest {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** Fastify's own request serializer, but for the URL's query. */
function requestForLog(request: LoggedRequest) {
  return { method: request.method, url: urlForLog(request.url), host: request.host, remoteAddress: request.ip, remotePort: request.socket?.remotePort };
}

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: errorWithoutCommandArguments, req: requestForLog },
  };
}
