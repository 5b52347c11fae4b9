/**
 * The sandbox utility website: a stand-alone HTTP server that behaves like a utility's customer portal,
 * so connectors exercise the same code paths (cookies, MFA steps, outages) they would against a real one.
 * It knows nothing about Plugboard. State lives in memory: restarting the site forgets every session and
 * challenge, which connectors then see as an expired session or challenge.
 *
 * The password picks the scenario, for any username (SPEC §3):
 *   pass_good       logged in, no MFA          pass_mfa_code   code sent by SMS straight away
 *   pass_bad        401 INVALID_CREDENTIALS    pass_mfa_app    authenticator-app code
 *   pass_locked     423 ACCOUNT_LOCKED         pass_mfa_short  as pass_mfa, session lives `shortSessionSeconds`
 *   pass_mfa        choose SMS/voice/email,    pass_down       every login answers 503
 *                   then a 6-digit code        pass_flaky      503 to the first two logins of a username, then in
 * Any other password is rejected like pass_bad. The code `123456` is always right; for pass_mfa_app the
 * current TOTP of `sandboxTotpSecret(username)` (±1 step) is right too.
 *
 * Endpoints (JSON bodies; errors are `{ error, message }`):
 *   POST /login        { username, password }
 *        200 { status: "LOGGED_IN", session: { expiresAt } }                     + cookie sbx_session
 *        200 { status: "MFA_METHOD_REQUIRED" | "MFA_CODE_REQUIRED", challenge }  + cookie sbx_login
 *            challenge = { id, methods: [{ id, channel: sms|voice|email|totp, destination }],
 *                          selectedMethodId, codeLength, expiresAt }
 *        401 INVALID_CREDENTIALS, 423 ACCOUNT_LOCKED, 503 MAINTENANCE
 *   POST /mfa/method   { methodId }  sends a code there (again, when repeated)  200 MFA_CODE_REQUIRED
 *   POST /mfa/code     { code }      200 LOGGED_IN + cookie sbx_session; 422 WRONG_CODE (challenge stays open);
 *                                    409 METHOD_NOT_SELECTED
 *        Both /mfa endpoints need the sbx_login cookie and answer 410 CHALLENGE_EXPIRED once the challenge
 *        is gone (timed out, already used, or never existed).
 *   GET  /accounts     200 { accounts: [...], session: { expiresAt } }; 401 NOT_LOGGED_IN without a live session
 *
 * Control endpoints, for Plugboard's sandbox helpers (a session is named by its sbx_session cookie value):
 *   POST /_sandbox/sessions/expire  { sessionToken }  the session's expiry becomes now           204 | 404
 *   POST /_sandbox/sessions/revoke  { sessionToken }  the site silently stops honouring it       204 | 404
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { verify } from 'otplib';
import { Type } from 'typebox';
import closing from '../plugins/closing.ts';
import { accountsOf, maskedEmail, maskedPhone, sandboxTotpSecret } from './customers.ts';

export { sandboxTotpSecret } from './customers.ts';

export interface SandboxSiteOptions {
  /** Lifetime of the sessions `pass_mfa_short` gets. */
  shortSessionSeconds: number;
  /** Lifetime of every other session; 30 days by default. */
  defaultSessionSeconds?: number;
  /** How long an MFA challenge waits for the right code; 10 minutes by default. */
  challengeSeconds?: number;
  logger?: boolean;
}

type Channel = 'sms' | 'voice' | 'email' | 'totp';

type Scenario =
  | { outcome: 'logged_in' | 'rejected' | 'locked' | 'down' | 'flaky' }
  /** With a single channel the code goes out at once; with several the customer picks one first. */
  | { outcome: 'mfa'; channels: Channel[]; sessionLifetime: 'default' | 'short' };

const SCENARIOS_BY_PASSWORD = new Map<string, Scenario>([
  ['pass_good', { outcome: 'logged_in' }],
  ['pass_bad', { outcome: 'rejected' }],
  ['pass_locked', { outcome: 'locked' }],
  ['pass_mfa', { outcome: 'mfa', channels: ['sms', 'voice', 'email'], sessionLifetime: 'default' }],
  ['pass_mfa_code', { outcome: 'mfa', channels: ['sms'], sessionLifetime: 'default' }],
  ['pass_mfa_app', { outcome: 'mfa', channels: ['totp'], sessionLifetime: 'default' }],
  ['pass_mfa_short', { outcome: 'mfa', channels: ['sms', 'voice', 'email'], sessionLifetime: 'short' }],
  ['pass_down', { outcome: 'down' }],
  ['pass_flaky', { outcome: 'flaky' }],
]);

const FLAKY_FAILURES_PER_USERNAME = 2;
const CODE_LENGTH = 6;
const ALWAYS_RIGHT_CODE = '123456';
/** ±1 TOTP step of 30 s, the usual allowance for clock drift. */
const TOTP_TOLERANCE_SECONDS = 30;
const SESSION_COOKIE = 'sbx_session';
const LOGIN_COOKIE = 'sbx_login';
const SWEEP_INTERVAL_MS = 60_000;

interface ChallengeMethod {
  id: string;
  channel: Channel;
  destination: string | null;
}

interface Challenge {
  /** The sbx_login cookie value that finds this challenge. */
  token: string;
  id: string;
  username: string;
  methods: ChallengeMethod[];
  selectedMethodId: string | null;
  expiresAtMs: number;
  sessionSeconds: number;
}

interface Session {
  username: string;
  expiresAtMs: number;
}

const CredentialsBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 256 }),
  password: Type.String({ maxLength: 256 }),
});
const MethodBody = Type.Object({ methodId: Type.String({ minLength: 1, maxLength: 64 }) });
const CodeBody = Type.Object({ code: Type.String({ maxLength: 64 }) });
const SessionTokenBody = Type.Object({ sessionToken: Type.String({ minLength: 1, maxLength: 256 }) });

export function buildSandboxSite(options: SandboxSiteOptions): FastifyInstance {
  const defaultSessionSeconds = options.defaultSessionSeconds ?? 30 * 24 * 3600;
  const challengeSeconds = options.challengeSeconds ?? 600;

  const challengesByToken = new Map<string, Challenge>();
  const sessionsByToken = new Map<string, Session>();
  const loginFailuresByUsername = new Map<string, number>();

  const app = Fastify({ logger: options.logger ?? false });
  void app.register(closing);
  const site = app.withTypeProvider<TypeBoxTypeProvider>();

  // Nobody logs out of the sandbox, so forgotten sessions and challenges are swept once they have expired.
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [token, challenge] of challengesByToken) if (challenge.expiresAtMs <= now) challengesByToken.delete(token);
    for (const [token, session] of sessionsByToken) if (session.expiresAtMs <= now) sessionsByToken.delete(token);
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();
  app.addHook('onClose', async () => clearInterval(sweeper));

  app.setErrorHandler<FastifyError>((error, _request, reply) => {
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return fail(reply, error.statusCode, 'BAD_REQUEST', error.message);
    }
    app.log.error(error);
    return fail(reply, 500, 'INTERNAL', 'Something went wrong.');
  });
  app.setNotFoundHandler((_request, reply) => fail(reply, 404, 'NOT_FOUND', 'No such page.'));

  function startSession(reply: FastifyReply, username: string, lifetimeSeconds: number, cookies: string[] = []) {
    const token = randomToken();
    const expiresAtMs = Date.now() + lifetimeSeconds * 1000;
    sessionsByToken.set(token, { username, expiresAtMs });
    return reply
      .header('set-cookie', [...cookies, cookie(SESSION_COOKIE, token, expiresAtMs)])
      .send({ status: 'LOGGED_IN', session: { expiresAt: new Date(expiresAtMs).toISOString() } });
  }

  function startChallenge(reply: FastifyReply, username: string, scenario: Extract<Scenario, { outcome: 'mfa' }>) {
    const methods = scenario.channels.map((channel) => ({
      id: randomToken(4),
      channel,
      destination: destinationOf(channel, username),
    }));
    const challenge: Challenge = {
      token: randomToken(),
      id: `chl-${randomToken(8)}`,
      username,
      methods,
      selectedMethodId: methods.length === 1 ? (methods[0]?.id ?? null) : null,
      expiresAtMs: Date.now() + challengeSeconds * 1000,
      sessionSeconds: scenario.sessionLifetime === 'short' ? options.shortSessionSeconds : defaultSessionSeconds,
    };
    challengesByToken.set(challenge.token, challenge);
    return reply
      .header('set-cookie', cookie(LOGIN_COOKIE, challenge.token, challenge.expiresAtMs))
      .send(challengeView(challenge));
  }

  function openChallenge(request: FastifyRequest): Challenge | undefined {
    const token = readCookie(request, LOGIN_COOKIE);
    const challenge = token === undefined ? undefined : challengesByToken.get(token);
    return challenge !== undefined && challenge.expiresAtMs > Date.now() ? challenge : undefined;
  }

  function liveSession(request: FastifyRequest): Session | undefined {
    const token = readCookie(request, SESSION_COOKIE);
    const session = token === undefined ? undefined : sessionsByToken.get(token);
    return session !== undefined && session.expiresAtMs > Date.now() ? session : undefined;
  }

  site.post('/login', { schema: { body: CredentialsBody } }, async (request, reply) => {
    const { username, password } = request.body;
    const scenario = SCENARIOS_BY_PASSWORD.get(password) ?? { outcome: 'rejected' };
    switch (scenario.outcome) {
      case 'logged_in':
        return startSession(reply, username, defaultSessionSeconds);
      case 'rejected':
        return fail(reply, 401, 'INVALID_CREDENTIALS', 'The username or password you entered is incorrect.');
      case 'locked':
        return fail(reply, 423, 'ACCOUNT_LOCKED', 'Your account is locked. Please call customer service.');
      case 'down':
        return maintenance(reply);
      case 'flaky': {
        const failures = loginFailuresByUsername.get(username) ?? 0;
        if (failures < FLAKY_FAILURES_PER_USERNAME) {
          loginFailuresByUsername.set(username, failures + 1);
          return maintenance(reply);
        }
        // The next login of the username (another credential, another organization's, a re-login) sees the
        // outage again: integrators test their retry handling more than once per username.
        loginFailuresByUsername.delete(username);
        return startSession(reply, username, defaultSessionSeconds);
      }
      case 'mfa':
        return startChallenge(reply, username, scenario);
    }
  });

  site.post('/mfa/method', { schema: { body: MethodBody } }, async (request, reply) => {
    const challenge = openChallenge(request);
    if (!challenge) return challengeExpired(reply);
    if (!challenge.methods.some((method) => method.id === request.body.methodId)) {
      return fail(reply, 400, 'UNKNOWN_METHOD', 'Please choose one of the offered methods.');
    }
    // Choosing a method "sends" a code; choosing it again sends another. Every sandbox code is 123456.
    challenge.selectedMethodId = request.body.methodId;
    return reply.send(challengeView(challenge));
  });

  site.post('/mfa/code', { schema: { body: CodeBody } }, async (request, reply) => {
    const challenge = openChallenge(request);
    if (!challenge) return challengeExpired(reply);
    const method = challenge.methods.find((candidate) => candidate.id === challenge.selectedMethodId);
    if (!method) return fail(reply, 409, 'METHOD_NOT_SELECTED', 'Please choose where to send your code first.');
    const isRight = await isRightCode(request.body.code, method.channel, challenge.username);
    // Checking a TOTP awaits; a concurrent request may have used the challenge meanwhile.
    if (challengesByToken.get(challenge.token) !== challenge) return challengeExpired(reply);
    if (!isRight) return fail(reply, 422, 'WRONG_CODE', 'That code is not right. Please try again.');
    challengesByToken.delete(challenge.token);
    return startSession(reply, challenge.username, challenge.sessionSeconds, [cookie(LOGIN_COOKIE, '', 0)]);
  });

  site.get('/accounts', async (request, reply) => {
    const session = liveSession(request);
    if (!session) return fail(reply, 401, 'NOT_LOGGED_IN', 'Please log in.');
    return reply.send({
      accounts: accountsOf(session.username),
      session: { expiresAt: new Date(session.expiresAtMs).toISOString() },
    });
  });

  site.post('/_sandbox/sessions/expire', { schema: { body: SessionTokenBody } }, async (request, reply) => {
    const session = sessionsByToken.get(request.body.sessionToken);
    if (!session) return unknownSession(reply);
    session.expiresAtMs = Math.min(session.expiresAtMs, Date.now());
    return reply.code(204).send();
  });

  site.post('/_sandbox/sessions/revoke', { schema: { body: SessionTokenBody } }, async (request, reply) => {
    if (!sessionsByToken.delete(request.body.sessionToken)) return unknownSession(reply);
    return reply.code(204).send();
  });

  return app;
}

function challengeView(challenge: Challenge) {
  return {
    status: challenge.selectedMethodId === null ? 'MFA_METHOD_REQUIRED' : 'MFA_CODE_REQUIRED',
    challenge: {
      id: challenge.id,
      methods: challenge.methods,
      selectedMethodId: challenge.selectedMethodId,
      codeLength: CODE_LENGTH,
      expiresAt: new Date(challenge.expiresAtMs).toISOString(),
    },
  };
}

function destinationOf(channel: Channel, username: string): string | null {
  switch (channel) {
    case 'sms':
    case 'voice':
      return maskedPhone(username);
    case 'email':
      return maskedEmail(username);
    case 'totp':
      return null;
  }
}

async function isRightCode(code: string, channel: Channel, username: string): Promise<boolean> {
  if (code === ALWAYS_RIGHT_CODE) return true;
  // otplib throws on anything that is not a 6-digit token, so a malformed code is simply wrong here.
  if (channel !== 'totp' || !/^\d{6}$/.test(code)) return false;
  const result = await verify({ secret: sandboxTotpSecret(username), token: code, epochTolerance: TOTP_TOLERANCE_SECONDS });
  return result.valid;
}

function fail(reply: FastifyReply, statusCode: number, error: string, message: string) {
  return reply.code(statusCode).send({ error, message });
}

function maintenance(reply: FastifyReply) {
  return fail(reply, 503, 'MAINTENANCE', 'We are down for maintenance. Please try again later.');
}

function challengeExpired(reply: FastifyReply) {
  return fail(reply, 410, 'CHALLENGE_EXPIRED', 'Your verification has expired. Please log in again.');
}

function unknownSession(reply: FastifyReply) {
  return fail(reply, 404, 'UNKNOWN_SESSION', 'No such session.');
}

function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

function cookie(name: string, value: string, expiresAtMs: number): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Expires=${new Date(expiresAtMs).toUTCString()}`;
}

function readCookie(request: FastifyRequest, name: string): string | undefined {
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const separator = pair.indexOf('=');
    if (separator > 0 && pair.slice(0, separator).trim() === name) return pair.slice(separator + 1).trim();
  }
  return undefined;
}
