import { Type } from 'typebox';

/** `POST /oauth2/token`'s answer (RFC 6749 §5.1). */
export const AccessTokenSchema = Type.Object(
  { access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() },
  { $id: 'AccessToken' },
);

export const OrganizationSchema = Type.Object(
  { id: Type.String(), name: Type.String(), createdAt: Type.String({ format: 'date-time' }) },
  { $id: 'Organization' },
);
