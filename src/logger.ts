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

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: errorWithoutCommandArguments },
  };
}
