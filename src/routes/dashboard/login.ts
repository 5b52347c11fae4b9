import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../../errors.ts';
import { errorResponses } from '../../schemas/index.ts';
import type { LoginProof } from '../../services/two-factor.ts';
import { ChallengeId, ChallengeSchema, Code, Password, SessionSchema } from './schemas.ts';
import { passwordCheckRouteConfig, rateLimitByIp } from '../../plugins/rate-limit.ts';
import { clearSessionCookie, presentedSessionToken, setSessionCookie } from './session-auth.ts';

const LoginBody = Type.Object(
  { email: Type.String({ minLength: 1, maxLength: 320 }), password: Password },
  { additionalProperties: false },
);

const LoginResponse = Type.Union([
  Type.Object({ session: SessionSchema }),
  Type.Object({ twoFactorRequired: Type.Literal(true), challenge: ChallengeSchema }),
]);

const VerifyBody = Type.Object(
  {
    challengeId: ChallengeId,
    code: Type.Optional(Code),
    recoveryCode: Type.Optional(
      Type.String({ minLength: 16, maxLength: 64, pattern: '^[0-9A-Za-z -]+$', description: 'One of the recovery codes, e.g. `abcd-efgh-jkmn-pqrs`' }),
    ),
  },
  { additionalProperties: false, description: 'Send either `code` or `recoveryCode`' },
);

const VerifyResponse = Type.Object({
  session: SessionSchema,
  twoFactorDisabled: Type.Boolean({ description: 'True after a recovery code: two-factor is now off and other sessions have ended' }),
  message: Type.Optional(Type.String()),
});

const SmsBody = Type.Object(
  { challengeId: ChallengeId, useBackupPhone: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

const RECOVERY_LOGIN_MESSAGE =
  'You signed in with a recovery code. Two-factor authentication is now off and your other sessions have ended; turn it on again under Security.';

/** The login flow: password, then (with two-factor on) the code, then a session. No session needed here. */
const login: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/login',
    {
      config: passwordCheckRouteConfig(app.services.ctx.config),
      schema: {
        tags: ['dashboard'],
        summary: 'Log in with email and password: a session, or a two-factor challenge to answer',
        body: LoginBody,
        response: { 200: LoginResponse, ...errorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const result = await app.services.dashboardSessions.login(request.body.email, request.body.password, rateLimitByIp(request));
      if ('session' in result) setSessionCookie(request, reply, result.session);
      return result;
    },
  );

  app.post(
    '/login/verify',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'Answer a two-factor challenge with an app or SMS code, or a recovery code',
        description:
          'Five wrong codes end a challenge; 100 consecutive wrong codes lock two-factor login until a password reset. ' +
          'A recovery code signs in once and turns two-factor off.',
        body: VerifyBody,
        response: { 200: VerifyResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { challengeId, code, recoveryCode } = request.body;
      let proof: LoginProof;
      if (code !== undefined && recoveryCode === undefined) proof = { code };
      else if (recoveryCode !== undefined && code === undefined) proof = { recoveryCode };
      else throw errors.invalidParameter({ param: 'code', message: 'Send either code or recoveryCode' });

      const { session, twoFactorDisabled } = await app.services.dashboardSessions.verifyLogin(challengeId, proof);
      setSessionCookie(request, reply, session);
      return { session, twoFactorDisabled, ...(twoFactorDisabled ? { message: RECOVERY_LOGIN_MESSAGE } : {}) };
    },
  );

  app.post(
    '/login/sms',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'Send a new SMS code for a login challenge, optionally to the backup phone',
        body: SmsBody,
        response: { 200: Type.Object({ challenge: ChallengeSchema }), ...errorResponses(400, 401, 403, 409, 429, 503) },
      },
    },
    async (request) => {
      const { challengeId, useBackupPhone } = request.body;
      return { challenge: await app.services.twoFactor.resendLoginSms(challengeId, { useBackupPhone }) };
    },
  );

  app.post(
    '/logout',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'End the current session (succeeds whether or not it is still live) and clear the session cookie',
        security: [{ bearerAuth: [] }],
        response: { 204: Type.Null({ description: 'Logged out' }) },
      },
    },
    async (request, reply) => {
      const token = presentedSessionToken(request);
      if (token) await app.services.dashboardSessions.logout(token);
      clearSessionCookie(request, reply);
      return reply.status(204).send(null);
    },
  );
};

export default login;
