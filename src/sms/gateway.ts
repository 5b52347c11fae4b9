// Outgoing text messages (two-factor codes) through one of three gateways, chosen by SMS_GATEWAY:
//
// - `log`: development only. Nothing is delivered. The masked recipient is logged at info level and the body,
//   which holds the code, only at debug level: a developer runs with LOG_LEVEL=debug to read codes, while a
//   deployment at the default level never writes one to its logs.
// - `webhook`: JSON POST `{ to, body }` to SMS_WEBHOOK_URL, for operators who bring their own SMS provider.
// - `twilio`: Twilio's Messages REST API (TWILIO_BASE_URL lets a proxy or a test double stand in for Twilio).
//
// Sending fails with SmsDeliveryError. Its message is built only from the gateway name, the HTTP status, Twilio's
// numeric error code or the network error, never from the request, so it cannot carry a credential or the code.

import got, { type Got, type RequestError } from 'got';
import type { SmsGatewayKind } from '../config.ts';
import { maskPhone } from '../two-factor/phone.ts';

export interface SmsMessage {
  /** E.164 phone number. */
  to: string;
  body: string;
}

export interface SmsGateway {
  send(message: SmsMessage): Promise<void>;
}

export interface SmsGatewayConfig {
  smsGateway: SmsGatewayKind;
  /** Required for `webhook`. */
  smsWebhookUrl?: string;
  /** Required for `twilio`. `baseUrl` is normally `https://api.twilio.com`. */
  twilio?: { accountSid: string; authToken: string; from: string; baseUrl: string };
  /** Per-request timeout of the HTTP gateways; 10 s unless set. */
  smsTimeoutMs?: number;
}

/** The slice of a pino (or Fastify) logger this module uses. */
export interface SmsLogger {
  info(details: object, message: string): void;
  debug(details: object, message: string): void;
}

export class SmsDeliveryError extends Error {
  override name = 'SmsDeliveryError';
  readonly gateway: SmsGatewayKind;
  /** The gateway's HTTP status when it answered with a non-2xx; absent when it could not be reached. */
  readonly statusCode: number | undefined;

  constructor(gateway: SmsGatewayKind, problem: string, statusCode?: number) {
    super(`SMS gateway "${gateway}" failed: ${problem}`);
    this.gateway = gateway;
    this.statusCode = statusCode;
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;

export function createSmsGateway(config: SmsGatewayConfig, deps: { logger: SmsLogger; http?: Got }): SmsGateway {
  const { logger } = deps;
  const post = createPoster(deps.http ?? got, config.smsTimeoutMs ?? DEFAULT_TIMEOUT_MS);

  switch (config.smsGateway) {
    case 'log':
      return {
        async send({ to, body }) {
          logger.info({ smsGateway: 'log', to: maskPhone(to) }, 'SMS not delivered: the log gateway only logs it');
          logger.debug({ smsGateway: 'log', to: maskPhone(to), body }, 'SMS body');
        },
      };

    case 'webhook': {
      const url = config.smsWebhookUrl;
      if (!url) throw new Error('SMS_WEBHOOK_URL is required when SMS_GATEWAY=webhook');
      return {
        async send({ to, body }) {
          await post('webhook', url, { json: { to, body } });
          logger.info({ smsGateway: 'webhook', to: maskPhone(to) }, 'SMS sent');
        },
      };
    }

    case 'twilio': {
      const twilio = config.twilio;
      if (!twilio) throw new Error('TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are required when SMS_GATEWAY=twilio');
      const url = `${twilio.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(twilio.accountSid)}/Messages.json`;
      return {
        async send({ to, body }) {
          await post(
            'twilio',
            url,
            { form: { To: to, From: twilio.from, Body: body }, username: twilio.accountSid, password: twilio.authToken },
            describeTwilioRejection,
          );
          logger.info({ smsGateway: 'twilio', to: maskPhone(to) }, 'SMS sent');
        },
      };
    }
  }
}

/** What differs between the HTTP gateways' requests: the body encoding and whether Basic auth is sent. */
interface GatewayRequest {
  json?: Record<string, unknown>;
  form?: Record<string, string>;
  username?: string;
  password?: string;
}

type Poster = (
  gateway: SmsGatewayKind,
  url: string,
  request: GatewayRequest,
  describeRejection?: (responseBody: string) => string,
) => Promise<void>;

function createPoster(http: Got, timeoutMs: number): Poster {
  return async (gateway, url, request, describeRejection) => {
    let response;
    try {
      response = await http.post(url, {
        ...request,
        timeout: { request: timeoutMs },
        // A request that timed out may still have delivered the text; sending it again would only confuse.
        retry: { limit: 0 },
        // A redirect could carry the Basic credentials or the code to an address nobody configured.
        followRedirect: false,
        // got treats unfollowed 3xx as success, so the status is judged below instead.
        throwHttpErrors: false,
      });
    } catch (error) {
      // got rejects only with RequestError. Its message comes from the socket, DNS, TLS or timeout layer, whereas
      // the error object itself holds the request options (credentials included), so only the message is kept.
      throw new SmsDeliveryError(gateway, (error as RequestError).message);
    }
    const { statusCode } = response;
    if (statusCode < 200 || statusCode > 299) {
      const detail = describeRejection?.(response.body) ?? '';
      throw new SmsDeliveryError(gateway, `answered HTTP ${statusCode}${detail}`, statusCode);
    }
  };
}

/**
 * Twilio's numeric error code (for example 21211, invalid "To" number) identifies the problem in its docs.
 * Its error text is left out because it can quote the recipient's phone number.
 */
function describeTwilioRejection(responseBody: string): string {
  try {
    const code: unknown = JSON.parse(responseBody).code;
    return typeof code === 'number' ? ` (Twilio error ${code})` : '';
  } catch {
    return '';
  }
}
