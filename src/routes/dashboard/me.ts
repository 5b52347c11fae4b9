import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errorResponses } from '../../schemas/index.ts';
import { CodeBody, Password, PasswordBody, RecoveryCodesSchema, TwoFactorMethodSchema } from './schemas.ts';
import { passwordCheckRouteConfig } from '../../plugins/rate-limit.ts';
import { requireDashboardSession, sessionOf, sessionUserOf } from './session-auth.ts';

const MeResponse = Type.Object({
  user: Type.Object({
    id: Type.String(),
    organizationId: Type.String(),
    email: Type.String(),
    role: Type.Union([Type.Literal('admin'), Type.Literal('member')]),
    createdAt: Type.String({ format: 'date-time' }),
  }),
  session: Type.Object({ expiresAt: Type.String({ format: 'date-time' }) }),
});

const SettingsResponse = Type.Object({
  isEnabled: Type.Boolean(),
  method: Type.Union([TwoFactorMethodSchema, Type.Null()]),
  phoneNumber: Type.Union([Type.String(), Type.Null()], { description: 'Masked, e.g. +1******4567' }),
  backupPhoneNumber: Type.Union([Type.String(), Type.Null()], { description: 'Masked' }),
  recoveryCodesRemaining: Type.Integer({ minimum: 0 }),
});

const AppEnrollmentResponse = Type.Object({
  secret: Type.String({ description: 'Base32, for typing into the app by hand' }),
  otpauthUri: Type.String({ description: 'otpauth://totp/Plugboard:<email>?…' }),
  qrCodeSvg: Type.String({ description: 'The URI as an SVG QR code' }),
});

const SmsEnrollmentBody = Type.Object(
  {
    password: Password,
    phoneNumber: Type.String({ maxLength: 32, description: 'E.164, e.g. +15551234567' }),
    backupPhoneNumber: Type.Optional(Type.String({ maxLength: 32, description: 'E.164; can receive login codes too' })),
  },
  { additionalProperties: false },
);

const SmsEnrollmentResponse = Type.Object({
  destination: Type.String({ description: 'The masked number the code went to' }),
  expiresAt: Type.String({ format: 'date-time' }),
});

const PasswordChangeBody = Type.Object({ currentPassword: Password, newPassword: Password }, { additionalProperties: false });

const security = [{ bearerAuth: [] }];

/**
 * The signed-in user and their own two-factor settings. There is no user id in these paths on purpose:
 * nobody, admins included, can view or change another user's settings.
 */
const me: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', requireDashboardSession);
  const twoFactor = app.services.twoFactor;
  const config = passwordCheckRouteConfig(app.services.ctx.config);

  app.get(
    '/',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'The signed-in user',
        security,
        response: { 200: MeResponse, ...errorResponses(401) },
      },
    },
    async (request) => {
      const { user, session } = sessionOf(request);
      const { id, organizationId, email, role, createdAt } = user;
      return { user: { id, organizationId, email, role, createdAt }, session: { expiresAt: session.expiresAt } };
    },
  );

  app.post(
    '/password',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Change your password; your other sessions (and v1 tokens) end, and a two-factor login lock is lifted',
        security,
        body: PasswordChangeBody,
        response: { 204: Type.Null({ description: 'Changed' }), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      await app.services.dashboardSessions.changePassword(sessionOf(request), request.body.currentPassword, request.body.newPassword);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/two-factor/view',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Your two-factor settings (asks for your password again)',
        security,
        body: PasswordBody,
        response: { 200: SettingsResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => twoFactor.view(sessionUserOf(request), request.body.password),
  );

  app.post(
    '/two-factor/app',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Start authenticator-app enrollment: a secret and QR code, confirmed with a first code',
        security,
        body: PasswordBody,
        response: { 200: AppEnrollmentResponse, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request) => twoFactor.startAppEnrollment(sessionUserOf(request), request.body.password),
  );

  app.post(
    '/two-factor/sms',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Start SMS enrollment: sends a code to the primary phone number',
        security,
        body: SmsEnrollmentBody,
        response: { 200: SmsEnrollmentResponse, ...errorResponses(400, 401, 403, 409, 429, 503) },
      },
    },
    async (request) => twoFactor.startSmsEnrollment(sessionUserOf(request), request.body),
  );

  // A wrong code is a 403 (PB_ENROLLMENT_CODE_INVALID): the session stands.
  for (const { path, method, proof } of [
    { path: '/two-factor/app/confirm', method: 'APP', proof: 'app enrollment with a code from the app' },
    { path: '/two-factor/sms/confirm', method: 'SMS', proof: 'SMS enrollment with the texted code' },
  ] as const) {
    app.post(
      path,
      {
        schema: {
          tags: ['dashboard'],
          summary: `Confirm ${proof}; returns recovery codes (shown once). Your other sessions end`,
          security,
          body: CodeBody,
          response: { 200: RecoveryCodesSchema, ...errorResponses(400, 401, 403, 409) },
        },
      },
      async (request) => app.services.dashboardSessions.confirmTwoFactor(sessionOf(request), method, request.body.code),
    );
  }

  app.post(
    '/two-factor/disable',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Turn two-factor off (asks for your password again)',
        security,
        body: PasswordBody,
        response: { 200: Type.Object({ isEnabled: Type.Literal(false) }), ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request) => {
      await twoFactor.disable(sessionUserOf(request), request.body.password);
      return { isEnabled: false as const };
    },
  );

  app.post(
    '/two-factor/recovery-codes',
    {
      config,
      schema: {
        tags: ['dashboard'],
        summary: 'Replace your recovery codes (asks for your password again); the old ones stop working',
        security,
        body: PasswordBody,
        response: { 200: RecoveryCodesSchema, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request) => twoFactor.regenerateRecoveryCodes(sessionUserOf(request), request.body.password),
  );
};

export default me;
