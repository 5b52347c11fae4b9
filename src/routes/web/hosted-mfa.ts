/**
 * The API behind the hosted MFA page (`/connect`), for a person holding a connect link and nothing else.
 *
 * The link's token comes as `Authorization: Bearer <token>` (the page reads it from its URL fragment), so no
 * cookie is involved and other sites cannot make a browser act with it. Each call is bound to the one
 * credential the token names; the person sees its provider's name, its status and its MFA challenge with
 * masked destinations, never the username, ids of other resources or anything else of the organization.
 * Every action is the credential service's own (the same state machine, events and webhooks as the API).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { findProvider } from '../../connectors/catalog.ts';
import { CUSTOMER_RESTARTABLE, type CredentialView } from '../../domain/credential-state.ts';
import { errors } from '../../errors.ts';
import { presentedBearer } from '../../plugins/bearer-auth.ts';
import { MfaMethodType, OneTimePasscodeBody, VerificationMethodBody } from '../../schemas/credentials.ts';
import type { ConnectLinkGrant } from '../../services/connect-links.ts';
import type { StepStarted } from '../../services/credentials.ts';
import { maskEmail, maskPhone } from '../../two-factor/phone.ts';

declare module 'fastify' {
  interface FastifyRequest {
    connectLink: ConnectLinkGrant | null;
  }
}

/** How long an action waits for the provider's answer before returning (the page keeps polling after). */
const STEP_WAIT_MS = 10_000;

const HostedCredential = Type.Object({
  providerName: Type.String(),
  status: Type.String(),
  statusDetail: Type.String(),
  statusMessage: Type.Union([Type.String(), Type.Null()]),
  isCustomerActionRequired: Type.Boolean(),
  canRestart: Type.Boolean({ description: 'The MFA login timed out or failed and may be started again' }),
  mfa: Type.Union([
    Type.Null(),
    Type.Object({
      challengeId: Type.String(),
      stage: Type.Union([Type.Literal('METHOD_SELECTION'), Type.Literal('CODE_ENTRY')]),
      availableMethods: Type.Array(Type.Object({ id: Type.String(), type: MfaMethodType, destination: Type.Union([Type.String(), Type.Null()]) })),
      selectedMethodId: Type.Union([Type.String(), Type.Null()]),
      codeLength: Type.Union([Type.Integer(), Type.Null()]),
      expiresAt: Type.String(),
      attemptsRemaining: Type.Integer(),
    }),
  ]),
  linkExpiresAt: Type.String(),
});
type HostedCredential = Static<typeof HostedCredential>;

/** Providers usually mask destinations themselves; one that does not gets masked here. */
function maskDestination(destination: string | null): string | null {
  if (destination === null || destination.includes('*')) return destination;
  return destination.includes('@') ? maskEmail(destination) : maskPhone(destination.replace(/[\s().-]/g, ''));
}

function toHosted(credential: CredentialView, grant: ConnectLinkGrant): HostedCredential {
  const { mfa } = credential;
  return {
    providerName: findProvider(credential.providerId)?.name ?? 'Your utility',
    status: credential.status,
    statusDetail: credential.statusDetail,
    statusMessage: credential.statusMessage,
    isCustomerActionRequired: credential.isCustomerActionRequired,
    canRestart: CUSTOMER_RESTARTABLE.includes(credential.statusDetail),
    mfa: mfa && {
      ...mfa,
      availableMethods: mfa.availableMethods.map((method) => ({ ...method, destination: maskDestination(method.destination) })),
    },
    linkExpiresAt: grant.expiresAt,
  };
}

function grantOf(request: FastifyRequest): ConnectLinkGrant {
  if (!request.connectLink) throw errors.connectLinkInvalid();
  return request.connectLink;
}

/** Shows up as `lastModifiedBy` and in events, so the integrator can tell the hosted page acted. */
function actorOf(grant: ConnectLinkGrant): string {
  return `connect-link:${grant.linkId}`;
}

const hostedMfa: FastifyPluginAsyncTypebox = async (app) => {
  const credentials = app.services.credentials;
  app.decorateRequest('connectLink', null);
  app.addHook('onRequest', async (request) => {
    // A malformed token is a broken link too, not RFC 6750's 400: the page's own script sends what the link's
    // fragment holds, and a link mangled on its way to the customer should tell them to ask for a new one.
    const presented = presentedBearer(request);
    if (presented.kind !== 'token') throw errors.connectLinkInvalid();
    request.connectLink = await app.services.connectLinks.open(presented.token);
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
  });

  /** Runs an action, waits a little for the provider's answer, and shows the credential as it is then. */
  async function act(request: FastifyRequest, action: (grant: ConnectLinkGrant) => Promise<StepStarted>) {
    const grant = grantOf(request);
    const started = await action(grant);
    const settled = started.stepId ? await credentials.waitForStep(grant.organizationId, grant.credentialId, started.stepId, STEP_WAIT_MS, request.server.closing) : null;
    return toHosted(settled ?? started.credential, grant);
  }

  const schema = { hide: true, response: { 200: HostedCredential } };

  app.get('/credential', { schema }, async (request) => {
    const grant = grantOf(request);
    return toHosted(await credentials.get(grant.organizationId, grant.credentialId), grant);
  });

  app.put('/verificationMethod', { schema: { ...schema, body: VerificationMethodBody } }, async (request) =>
    act(request, (grant) => credentials.chooseMethod(grant.organizationId, grant.credentialId, request.body, actorOf(grant))),
  );

  app.put('/oneTimePasscode', { schema: { ...schema, body: OneTimePasscodeBody } }, async (request) =>
    act(request, (grant) => credentials.submitCode(grant.organizationId, grant.credentialId, request.body, actorOf(grant))),
  );

  // Only from a failure the link's holder can fix, decided in the refresh's own commit: checked beforehand, a
  // disable landing in between was undone by the restart.
  app.post('/restart', { schema }, async (request) =>
    act(request, (grant) => credentials.refresh(grant.organizationId, grant.credentialId, actorOf(grant), CUSTOMER_RESTARTABLE)),
  );
};

export default hostedMfa;
