import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { createSmsGateway, SmsDeliveryError, type SmsGatewayConfig } from '../../src/sms/gateway.ts';

interface ReceivedRequest {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real HTTP server on loopback that records every request and answers with `respond`. */
async function startReceiver(t: Test, respond: (response: ServerResponse) => void = (response) => response.end()) {
  const requests: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      requests.push({ method: request.method, url: request.url, headers: request.headers, body });
      respond(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function unusedLoopbackUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

function answer(status: number, body = '', headers: Record<string, string> = {}) {
  return (response: ServerResponse) => response.writeHead(status, headers).end(body);
}

/** A real pino logger whose lines land in an array. */
function capturingLogger(level: 'info' | 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const message = { to: '+15551234567', body: 'Your Plugboard code is 042917' };
const twilioCredentials = { accountSid: 'AC0123456789abcdef', authToken: 'tw-auth-token-do-not-leak', from: '+15005550006' };

async function sendExpectingFailure(t: Test, config: SmsGatewayConfig): Promise<SmsDeliveryError> {
  const gateway = createSmsGateway(config, { logger: capturingLogger('debug').logger });
  const error: unknown = await gateway.send(message).then(
    () => t.fail('send should have failed'),
    (rejection: unknown) => rejection,
  );
  if (!(error instanceof SmsDeliveryError)) throw error;
  return error;
}

function assertNothingSecretIn(t: Test, error: Error) {
  const everything = [error.message, error.stack, inspect(error, { showHidden: true, depth: 10 }), JSON.stringify(error)].join('\n');
  t.notMatch(everything, twilioCredentials.authToken, 'no auth token');
  t.notMatch(everything, '042917', 'no code');
}

t.test('log gateway', async (t) => {
  t.test('logs the masked recipient and keeps the body out of info-level logs', async (t) => {
    const { logger, lines } = capturingLogger('info');
    await createSmsGateway({ smsGateway: 'log' }, { logger }).send(message);
    t.match(lines, [{ level: 30, to: '+1******4567' }]);
    t.notMatch(JSON.stringify(lines), /042917|5551234567/);
  });

  t.test('shows the body to a developer running at debug level', async (t) => {
    const { logger, lines } = capturingLogger('debug');
    await createSmsGateway({ smsGateway: 'log' }, { logger }).send(message);
    t.match(lines, [{ level: 30 }, { level: 20, to: '+1******4567', body: message.body }]);
    t.notMatch(JSON.stringify(lines), /5551234567/, 'the number stays masked even then');
  });
});

t.test('webhook gateway', async (t) => {
  t.test('POSTs { to, body } as JSON to the configured URL', async (t) => {
    const receiver = await startReceiver(t, answer(204));
    const { logger, lines } = capturingLogger('info');
    const gateway = createSmsGateway({ smsGateway: 'webhook', smsWebhookUrl: `${receiver.baseUrl}/hooks/sms?key=k1` }, { logger });
    await gateway.send(message);

    t.equal(receiver.requests.length, 1);
    const [received] = receiver.requests;
    t.match(received, { method: 'POST', url: '/hooks/sms?key=k1', headers: { 'content-type': /^application\/json/ } });
    t.same(JSON.parse(received?.body ?? ''), message);
    t.match(lines, [{ smsGateway: 'webhook', to: '+1******4567', msg: 'SMS sent' }]);
    t.notMatch(JSON.stringify(lines), /042917/);
  });

  t.test('a 500 is a delivery error', async (t) => {
    const receiver = await startReceiver(t, answer(500, 'upstream exploded'));
    const error = await sendExpectingFailure(t, { smsGateway: 'webhook', smsWebhookUrl: `${receiver.baseUrl}/sms` });
    t.equal(error.message, 'SMS gateway "webhook" failed: answered HTTP 500');
    t.equal(error.statusCode, 500);
    t.equal(error.gateway, 'webhook');
    t.equal(receiver.requests.length, 1, 'not retried');
    assertNothingSecretIn(t, error);
  });

  t.test('a redirect is not followed and counts as a failure', async (t) => {
    const receiver = await startReceiver(t, answer(302, '', { location: '/elsewhere' }));
    const error = await sendExpectingFailure(t, { smsGateway: 'webhook', smsWebhookUrl: `${receiver.baseUrl}/sms` });
    t.equal(error.statusCode, 302);
    t.same(receiver.requests.map((request) => request.url), ['/sms']);
  });

  t.test('an unreachable URL is a delivery error', async (t) => {
    const error = await sendExpectingFailure(t, { smsGateway: 'webhook', smsWebhookUrl: `${await unusedLoopbackUrl()}/sms` });
    t.match(error.message, /^SMS gateway "webhook" failed: .*ECONNREFUSED/);
    t.equal(error.statusCode, undefined);
  });

  t.test('a receiver that never answers times out', async (t) => {
    const receiver = await startReceiver(t, () => {});
    const startedAt = Date.now();
    const error = await sendExpectingFailure(t, { smsGateway: 'webhook', smsWebhookUrl: receiver.baseUrl, smsTimeoutMs: 200 });
    t.match(error.message, /^SMS gateway "webhook" failed: Timeout/);
    t.ok(Date.now() - startedAt < 5000, 'well before any default timeout');
  });

  t.test('refuses to start without a URL', async (t) => {
    t.throws(() => createSmsGateway({ smsGateway: 'webhook' }, { logger: capturingLogger('info').logger }), /SMS_WEBHOOK_URL/);
  });
});

t.test('twilio gateway', async (t) => {
  t.test('POSTs the form to the Messages resource with Basic auth', async (t) => {
    const receiver = await startReceiver(t, answer(201, '{"sid":"SM123","status":"queued"}', { 'content-type': 'application/json' }));
    const { logger, lines } = capturingLogger('info');
    // A base URL with a path and a trailing slash, as when a proxy stands in front of Twilio.
    const twilio = { ...twilioCredentials, baseUrl: `${receiver.baseUrl}/twilio/` };
    await createSmsGateway({ smsGateway: 'twilio', twilio }, { logger }).send(message);

    t.equal(receiver.requests.length, 1);
    const [received] = receiver.requests;
    t.match(received, {
      method: 'POST',
      url: '/twilio/2010-04-01/Accounts/AC0123456789abcdef/Messages.json',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const [scheme, credentials] = (received?.headers.authorization ?? '').split(' ');
    t.equal(scheme, 'Basic');
    t.equal(Buffer.from(credentials ?? '', 'base64').toString(), `${twilioCredentials.accountSid}:${twilioCredentials.authToken}`);
    t.same(Object.fromEntries(new URLSearchParams(received?.body)), {
      To: message.to,
      From: twilioCredentials.from,
      Body: message.body,
    });
    t.match(lines, [{ smsGateway: 'twilio', to: '+1******4567', msg: 'SMS sent' }]);
  });

  t.test('a 500 is a clear delivery error without the auth token', async (t) => {
    const receiver = await startReceiver(t, answer(500, '{"status":500,"message":"Internal Server Error"}'));
    const error = await sendExpectingFailure(t, { smsGateway: 'twilio', twilio: { ...twilioCredentials, baseUrl: receiver.baseUrl } });
    t.equal(error.message, 'SMS gateway "twilio" failed: answered HTTP 500');
    t.equal(error.statusCode, 500);
    assertNothingSecretIn(t, error);
  });

  t.test("Twilio's error code is reported, its text (which may quote the number) is not", async (t) => {
    const twilioError = {
      code: 21211,
      message: "The 'To' number +15551234567 is not a valid phone number.",
      more_info: 'https://www.twilio.com/docs/errors/21211',
      status: 400,
    };
    const receiver = await startReceiver(t, answer(400, JSON.stringify(twilioError)));
    const error = await sendExpectingFailure(t, { smsGateway: 'twilio', twilio: { ...twilioCredentials, baseUrl: receiver.baseUrl } });
    t.equal(error.message, 'SMS gateway "twilio" failed: answered HTTP 400 (Twilio error 21211)');
  });

  t.test('a non-JSON error page from a proxy still gives a clear error', async (t) => {
    const receiver = await startReceiver(t, answer(502, '<html>Bad Gateway</html>'));
    const error = await sendExpectingFailure(t, { smsGateway: 'twilio', twilio: { ...twilioCredentials, baseUrl: receiver.baseUrl } });
    t.equal(error.message, 'SMS gateway "twilio" failed: answered HTTP 502');
  });

  t.test('an unreachable Twilio gives an error that does not carry the request (and its credentials)', async (t) => {
    const error = await sendExpectingFailure(t, { smsGateway: 'twilio', twilio: { ...twilioCredentials, baseUrl: await unusedLoopbackUrl() } });
    t.match(error.message, /^SMS gateway "twilio" failed: .*ECONNREFUSED/);
    assertNothingSecretIn(t, error);
  });

  t.test('refuses to start without credentials', async (t) => {
    t.throws(() => createSmsGateway({ smsGateway: 'twilio' }, { logger: capturingLogger('info').logger }), /TWILIO_AUTH_TOKEN/);
  });
});
