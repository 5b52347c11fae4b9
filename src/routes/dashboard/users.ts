import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { idPattern } from '../../ids.ts';
import { createdWithLocation, errorResponses } from '../../schemas/index.ts';
import { PageSchema, pageQuery } from '../../schemas/pagination.ts';
import type { DashboardUserView } from '../../services/dashboard-users.ts';
import { paginate, parseSort } from '../../services/pagination.ts';
import { passwordCheckRouteConfig } from '../../plugins/rate-limit.ts';
import { Password } from './schemas.ts';
import { organizationIdempotency, requireDashboardSession, requireOrganizationAdmin, sessionUserOf } from './session-auth.ts';

const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')]);

const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
});

const CreateUserBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 320 }),
    password: Password,
    role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('member')], { default: 'member' })),
  },
  { additionalProperties: false },
);

const UserParams = Type.Object({ id: Type.String({ pattern: idPattern('usr') }) });
const security = [{ bearerAuth: [] }];
const SORT_FIELDS = ['createdAt'] as const;

/** Organization admins manage the organization's dashboard users. */
const users: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', requireDashboardSession);
  app.addHook('preHandler', requireOrganizationAdmin);

  app.get(
    '/',
    {
      schema: {
        tags: ['dashboard'],
        summary: "The organization's dashboard users (admins only)",
        security,
        querystring: Type.Object(pageQuery(SORT_FIELDS), { additionalProperties: false }),
        response: { 200: PageSchema(UserSchema), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { page, size, sort } = request.query;
      const all = await app.services.dashboardUsers.list(sessionUserOf(request).organizationId);
      return paginate<DashboardUserView, 'createdAt'>(all, { page, size, sort: parseSort(sort, SORT_FIELDS, 'createdAt') });
    },
  );

  app.post(
    '/',
    {
      config: organizationIdempotency,
      schema: {
        tags: ['dashboard'],
        summary: 'Add a dashboard user to the organization (admins only)',
        security,
        body: CreateUserBody,
        response: { 201: createdWithLocation(UserSchema, 'The new user: /dashboard/users/{id} (its password and DELETE are there)'), ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const { email, password, role = 'member' } = request.body;
      const user = await app.services.dashboardUsers.create(sessionUserOf(request).organizationId, { email, password, role });
      return reply.status(201).header('location', `${app.prefix}/${user.id}`).send(user);
    },
  );

  app.post(
    '/:id/password',
    {
      config: passwordCheckRouteConfig(app.services.ctx.config),
      schema: {
        tags: ['dashboard'],
        summary: "Set a user's password (admins only; not your own): their sessions end and a two-factor login lock is lifted",
        security,
        params: UserParams,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: { 204: Type.Null({ description: 'Set' }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const actingUser = sessionUserOf(request);
      await app.services.dashboardUsers.resetPassword(actingUser.organizationId, request.params.id, request.body.password, actingUser.id);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags: ['dashboard'],
        summary: 'Delete a dashboard user and end their sessions (admins only; not yourself)',
        security,
        params: UserParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const actingUser = sessionUserOf(request);
      await app.services.dashboardUsers.remove(actingUser.organizationId, request.params.id, actingUser.id);
      return reply.status(204).send(null);
    },
  );
};

export default users;
