/** Request and response schemas shared by the dashboard routes. */
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';

export const Password = Type.String({ minLength: 1, maxLength: 1024 });
export const PasswordBody = Type.Object({ password: Password }, { additionalProperties: false });

/** Authenticator-app and SMS codes alike: exactly six ASCII digits, anything else is a 400. */
export const Code = Type.String({ minLength: 6, maxLength: 6, pattern: '^[0-9]{6}$', description: 'Six digits' });
export const CodeBody = Type.Object({ code: Code }, { additionalProperties: false });

export const ChallengeId = Type.String({ pattern: idPattern('chl'), description: 'The login challenge id (`chl_…`)' });

export const TwoFactorMethodSchema = Type.Union([Type.Literal('APP'), Type.Literal('SMS')]);

export const SessionSchema = Type.Object({
  token: Type.String({ description: 'Send as `Authorization: Bearer <token>`; also set as an HttpOnly cookie' }),
  expiresAt: Type.String({ format: 'date-time' }),
});

export const ChallengeSchema = Type.Object({
  id: Type.String({ pattern: idPattern('chl') }),
  method: TwoFactorMethodSchema,
  destination: Type.Optional(Type.String({ description: 'SMS only: the masked phone number the code went to' })),
  isCodeSent: Type.Optional(
    Type.Boolean({
      description:
        "SMS login only: false when the user's text limits held the code back (one went out moments ago, or the hourly " +
        'budget is spent); a recovery code still answers the challenge, and POST /dashboard/login/sms sends the code from nextCodeAt',
    }),
  ),
  nextCodeAt: Type.Optional(Type.String({ format: 'date-time', description: 'With isCodeSent false: when a code can be sent' })),
  expiresAt: Type.String({ format: 'date-time' }),
});

export const RecoveryCodesSchema = Type.Object({
  recoveryCodes: Type.Array(Type.String(), {
    description: 'Shown once: each code signs in once, and signing in with one turns two-factor off',
  }),
});

