import type { Queues } from '../queues.ts';
import { createSmsGateway } from '../sms/gateway.ts';
import { createAccountService } from './accounts.ts';
import { createApiKeyService } from './api-keys.ts';
import { createConnectLinkService } from './connect-links.ts';
import { createConnectionService } from './connections.ts';
import type { ServiceContext } from './context.ts';
import { createCredentialStore } from './credential-store.ts';
import { createCredentialService } from './credentials.ts';
import { createDashboardSessionService } from './dashboard-sessions.ts';
import { createDashboardUserService } from './dashboard-users.ts';
import { createEventService } from './events.ts';
import { createOrganizationService } from './organizations.ts';
import { createOrganizationRemoval } from './organization-removal.ts';
import { createPasswordAttemptGuard } from './password-attempts.ts';
import { createTwoFactorService } from './two-factor.ts';
import { createWebhookDeliveryService, type WebhookDeliveryOptions } from './webhook-delivery.ts';
import { createWebhookService } from './webhooks.ts';

export interface ServiceOptions {
  webhookDelivery?: WebhookDeliveryOptions;
}

/** All domain services, wired together. Routes and workers both use this one object. */
export function createServices(ctx: ServiceContext, queues: Queues, options: ServiceOptions = {}) {
  const apiKeys = createApiKeyService(ctx);
  const passwordAttempts = createPasswordAttemptGuard(ctx);
  const organizations = createOrganizationService(ctx, { apiKeys, passwordAttempts });
  const events = createEventService(ctx);
  const smsGateway = createSmsGateway(ctx.config, { logger: ctx.logger });
  const twoFactor = createTwoFactorService(ctx, { events, smsGateway, organizations });
  const dashboardSessions = createDashboardSessionService(ctx, { organizations, twoFactor, passwordAttempts });
  const dashboardUsers = createDashboardUserService({ organizations, sessions: dashboardSessions, twoFactor });
  const organizationRemoval = createOrganizationRemoval(ctx, { organizations, apiKeys, dashboardUsers });
  const webhooks = createWebhookService(ctx, queues, events);
  events.onCommitted(webhooks.onEventsCommitted);
  const webhookDeliveries = createWebhookDeliveryService(ctx, { webhooks }, options.webhookDelivery);
  const accounts = createAccountService(ctx);
  const credentialStore = createCredentialStore(ctx, events, queues);
  const credentials = createCredentialService(ctx, credentialStore, accounts);
  const connections = createConnectionService(ctx, credentialStore, accounts);
  const connectLinks = createConnectLinkService(ctx, { credentials });
  return {
    ctx,
    queues,
    apiKeys,
    organizations,
    passwordAttempts,
    events,
    webhooks,
    webhookDeliveries,
    twoFactor,
    dashboardSessions,
    dashboardUsers,
    organizationRemoval,
    accounts,
    credentials,
    connections,
    connectLinks,
  };
}

export type Services = ReturnType<typeof createServices>;
