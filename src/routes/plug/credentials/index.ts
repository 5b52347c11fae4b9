import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../../ids.ts';
import { actorOf, organizationOf } from '../../../plugins/bearer-auth.ts';
import { idForCreation } from '../../../plugins/idempotency.ts';
import {
  AccountSchema,
  CorrelationId,
  CredentialParams,
  CredentialSchema,
  CredentialStatus,
  CredentialStatusDetail,
  OneTimePasscodeBody,
  Password,
  Username,
  VerificationMethodBody,
} from '../../../schemas/credentials.ts';
import { createdWithLocation, errorResponses, ref } from '../../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../../schemas/pagination.ts';
import { ACCOUNT_SORT_FIELDS } from '../../../services/accounts.ts';
import { CREDENTIAL_SORT_FIELDS } from '../../../services/credentials.ts';
import { parseSort } from '../../../services/pagination.ts';
import { credentialAfterStep, PREFER_HEADER_DESCRIPTION } from './prefer-wait.ts';

const tags = ['credentials'];
const security = [{ bearerAuth: [] }];
const PreferHeaders = Type.Object({ prefer: Type.Optional(Type.String({ maxLength: 200, description: PREFER_HEADER_DESCRIPTION })) });

const ExtraFields = Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' }), Type.String({ maxLength: 1024 }), {
  maxProperties: 20,
  description: "Values of the provider's other `loginFields`, by name; encrypted at rest and never returned",
});

const CreateBody = Type.Object(
  {
    providerId: Type.String({ pattern: idPattern('prv') }),
    username: Username,
    password: Password,
    extraFields: Type.Optional(ExtraFields),
    correlationId: Type.Optional(CorrelationId),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    username: Type.Optional(Username),
    password: Type.Optional(Password),
    extraFields: Type.Optional(ExtraFields),
    correlationId: Type.Optional(CorrelationId),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(CredentialStatus),
    statusDetail: Type.Optional(CredentialStatusDetail),
    providerId: Type.Optional(Type.String({ maxLength: 64 })),
    correlationId: Type.Optional(Type.String({ maxLength: 255 })),
    isCustomerActionRequired: Type.Optional(Type.Boolean()),
    ...pageQuery(CREDENTIAL_SORT_FIELDS),
  },
  { additionalProperties: false },
);

/** SPEC §4: credentials, their MFA steps, and their accounts. Routes only translate; the service decides. */
const credentials: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.services.credentials;

  app.post(
    '/',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Submit a customer login; the first login starts at once in the background',
        security,
        headers: PreferHeaders,
        body: CreateBody,
        response: { 201: createdWithLocation(ref(CredentialSchema), 'The new credential: /plug/credentials/{id}'), ...errorResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const organizationId = organizationOf(request);
      const started = await service.create(organizationId, request.body, actorOf(request), idForCreation(request, 'crd'));
      const credential = await credentialAfterStep(app.services, request, reply, organizationId, started);
      return reply.code(201).header('location', `${app.prefix}/${credential.id}`).send(credential);
    },
  );

  app.get(
    '/',
    {
      schema: {
        tags,
        summary: 'List credentials',
        security,
        querystring: ListQuery,
        response: { 200: PageSchema(ref(CredentialSchema)), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { sort, ...query } = request.query;
      return service.list(organizationOf(request), { ...query, sort: parseSort(sort, CREDENTIAL_SORT_FIELDS, 'createdAt') });
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Get a credential',
        security,
        params: CredentialParams,
        response: { 200: ref(CredentialSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => service.get(organizationOf(request), request.params.id),
  );

  app.patch(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Change a credential; a new username, password or extra field starts a new login',
        security,
        params: CredentialParams,
        body: PatchBody,
        response: { 200: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const { credential } = await service.update(organizationOf(request), request.params.id, request.body, actorOf(request));
      return credential;
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Delete a credential, its secrets, provider session and accounts',
        security,
        params: CredentialParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await service.remove(organizationOf(request), request.params.id, actorOf(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/:id/disable',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Stop using a credential: its challenge, session and timers end; refresh or a new password re-enables it',
        security,
        params: CredentialParams,
        response: { 200: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => service.disable(organizationOf(request), request.params.id, actorOf(request)),
  );

  app.put(
    '/:id/verificationMethod',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Choose where the provider sends the code (or ask for a new code with isResubmission)',
        security,
        headers: PreferHeaders,
        params: CredentialParams,
        body: VerificationMethodBody,
        response: { 202: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const organizationId = organizationOf(request);
      const started = await service.chooseMethod(organizationId, request.params.id, request.body, actorOf(request));
      return reply.code(202).send(await credentialAfterStep(app.services, request, reply, organizationId, started));
    },
  );

  app.put(
    '/:id/oneTimePasscode',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary: 'Submit the code the customer received; one submission at a time per credential',
        security,
        headers: PreferHeaders,
        params: CredentialParams,
        body: OneTimePasscodeBody,
        response: { 202: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const organizationId = organizationOf(request);
      const started = await service.submitCode(organizationId, request.params.id, request.body, actorOf(request));
      return reply.code(202).send(await credentialAfterStep(app.services, request, reply, organizationId, started));
    },
  );

  app.post(
    '/:id/refresh',
    {
      config: { idempotent: true },
      schema: {
        tags,
        summary:
          'Start a new login (and so a new challenge) after a failure, a timeout or an ended session; a connected credential syncs now with its stored session instead',
        security,
        headers: PreferHeaders,
        params: CredentialParams,
        response: { 202: ref(CredentialSchema), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const organizationId = organizationOf(request);
      const started = await service.refresh(organizationId, request.params.id, actorOf(request));
      return reply.code(202).send(await credentialAfterStep(app.services, request, reply, organizationId, started));
    },
  );

  app.get(
    '/:id/accounts',
    {
      schema: {
        tags,
        summary: 'The utility accounts found behind a credential',
        security,
        params: CredentialParams,
        // Oldest first by default: the order the provider showed them in, as before this list had pages.
        querystring: Type.Object(pageQuery(ACCOUNT_SORT_FIELDS, 'asc'), { additionalProperties: false }),
        response: { 200: PageSchema(ref(AccountSchema)), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const organizationId = organizationOf(request);
      const { sort, ...page } = request.query;
      return service.accountsOf(organizationId, request.params.id, { ...page, sort: parseSort(sort, ACCOUNT_SORT_FIELDS, 'createdAt', 'asc') });
    },
  );
};

export default credentials;
