import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';
import { halPage, legacyUrls, toV1Account, toV1Credential } from '../../legacy/hal.ts';
import { compileSearch } from '../../legacy/rsql.ts';
import { V1AccountPageSchema, V1CredentialPageSchema, V1CredentialSchema } from '../../legacy/schemas.ts';
import { CorrelationId, CredentialParams, Password, Username } from '../../schemas/credentials.ts';
import { createdWithLocation, ref } from '../../schemas/index.ts';
import type { CredentialChanges } from '../../services/credentials.ts';
import { paginate } from '../../services/pagination.ts';
import { v1UserOf } from './auth.ts';
import { PageQuery, v1Errors, v1Route, v1Security } from './common.ts';

/** Utility Cloud's extra login inputs. No connector reads them; they are kept sealed like the password. */
const ADDITIONAL_USERNAMES = ['username2', 'username3', 'username4'] as const;
const ADDITIONAL_PASSWORDS = ['password2', 'password3', 'password4'] as const;

const additionalFields = {
  ...Object.fromEntries(ADDITIONAL_USERNAMES.map((name) => [name, Type.Optional(Username)])),
  ...Object.fromEntries(ADDITIONAL_PASSWORDS.map((name) => [name, Type.Optional(Password)])),
} as Record<(typeof ADDITIONAL_USERNAMES)[number] | (typeof ADDITIONAL_PASSWORDS)[number], ReturnType<typeof Type.Optional<typeof Username>>>;

const Interactive = Type.Boolean({ description: 'Accepted for compatibility and ignored; every credential can go through MFA' });

const CreateBody = Type.Object(
  {
    providerId: Type.String({ pattern: idPattern('prv') }),
    username: Username,
    password: Password,
    correlationId: Type.Optional(CorrelationId),
    ...additionalFields,
    interactive: Type.Optional(Interactive),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    username: Type.Optional(Username),
    password: Type.Optional(Password),
    correlationId: Type.Optional(CorrelationId),
    ...additionalFields,
    enabled: Type.Optional(Type.Boolean({ description: 'false disables the credential; true re-enables a disabled one with a new login' })),
    // A client that sends back the object it created sends this too.
    interactive: Type.Optional(Interactive),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ListQuery = Type.Object({
  ...PageQuery,
  search: Type.Optional(
    Type.String({
      maxLength: 2000,
      description:
        'RSQL subset: field==value, field!=value, * wildcard, ; (and), , (or; binds looser than ;) on correlationId, providerName, status, username. Example: correlationId==abc*;status==OK',
    }),
  ),
});

/** v1's extra inputs, named as they arrived, for the credential's sealed additional secrets. */
function additionalSecretsOf(body: Partial<Record<(typeof ADDITIONAL_USERNAMES)[number] | (typeof ADDITIONAL_PASSWORDS)[number], string>>) {
  const secrets: Record<string, string> = {};
  for (const name of [...ADDITIONAL_USERNAMES, ...ADDITIONAL_PASSWORDS]) {
    const value = body[name];
    if (value !== undefined) secrets[name] = value;
  }
  return Object.keys(secrets).length > 0 ? secrets : undefined;
}

/** Credentials in v1 shapes, over the same credential service as /plug/credentials. */
const credentials: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.services.credentials;
  const urls = legacyUrls(app.services.ctx.config.publicUrl);

  app.post(
    '/',
    {
      schema: {
        ...v1Route,
        summary: 'Submit a customer login',
        security: v1Security,
        body: CreateBody,
        response: { 201: createdWithLocation(ref(V1CredentialSchema), 'The new credential, as an absolute URL: PUBLIC_URL/v1/utility/credentials/{id}'), ...v1Errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const user = v1UserOf(request);
      const { providerId, username, password, correlationId } = request.body;
      const { credential } = await service.create(
        user.organizationId,
        { providerId, username, password, correlationId, additionalSecrets: additionalSecretsOf(request.body) },
        user.id,
      );
      return reply.code(201).header('location', urls.credential(credential.id)).send(toV1Credential(credential, urls));
    },
  );

  app.get(
    '/',
    {
      schema: {
        ...v1Route,
        summary: 'List credentials, oldest first, optionally filtered by an RSQL search',
        security: v1Security,
        querystring: ListQuery,
        response: { 200: ref(V1CredentialPageSchema), ...v1Errors(400, 401, 403) },
      },
    },
    async (request) => {
      const { page, size, search } = request.query;
      const { organizationId } = v1UserOf(request);
      const pageRequest = { page, size, sort: { field: 'createdAt', direction: 'asc' } } as const;
      const matchesSearch = search === undefined ? null : compileSearch(search);
      // A search matches on v1's own field names, so it reads every credential; the plain list reads one page.
      const onePage = matchesSearch
        ? paginate((await service.listAll(organizationId)).filter((credential) => matchesSearch(toV1Credential(credential, urls))), pageRequest)
        : await service.list(organizationId, pageRequest);
      return halPage(
        'credentials',
        { ...onePage, data: onePage.data.map((credential) => toV1Credential(credential, urls)) },
        { collectionUrl: urls.credentials, query: search === undefined ? {} : { search } },
      );
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        ...v1Route,
        summary: 'Get a credential',
        security: v1Security,
        params: CredentialParams,
        response: { 200: ref(V1CredentialSchema), ...v1Errors(400, 401, 403, 404) },
      },
    },
    async (request) => toV1Credential(await service.get(v1UserOf(request).organizationId, request.params.id), urls),
  );

  app.patch(
    '/:id',
    {
      schema: {
        ...v1Route,
        summary: 'Change a credential; a new username or password starts a new login',
        security: v1Security,
        params: CredentialParams,
        body: PatchBody,
        response: { 200: ref(V1CredentialSchema), ...v1Errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const user = v1UserOf(request);
      const { id } = request.params;
      const { username, password, correlationId, enabled } = request.body;
      const changes: CredentialChanges = { username, password, correlationId, additionalSecrets: additionalSecretsOf(request.body), isEnabled: enabled };
      return toV1Credential((await service.update(user.organizationId, id, changes, user.id)).credential, urls);
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        ...v1Route,
        summary: 'Delete a credential and its accounts',
        security: v1Security,
        params: CredentialParams,
        response: { 204: Type.Null(), ...v1Errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const user = v1UserOf(request);
      await service.remove(user.organizationId, request.params.id, user.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/:id/accounts',
    {
      schema: {
        ...v1Route,
        summary: 'The utility accounts found behind a credential',
        security: v1Security,
        params: CredentialParams,
        querystring: Type.Object(PageQuery),
        response: { 200: ref(V1AccountPageSchema), ...v1Errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { organizationId } = v1UserOf(request);
      const { id } = request.params;
      const { page, size } = request.query;
      const accounts = await service.accountsOf(organizationId, id, { page, size, sort: { field: 'createdAt', direction: 'asc' } });
      return halPage('accounts', { ...accounts, data: accounts.data.map((account) => toV1Account(account, urls)) }, {
        collectionUrl: urls.credentialAccounts(id),
        query: {},
      });
    },
  );
};

export default credentials;
