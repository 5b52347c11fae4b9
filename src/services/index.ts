import type { Queues } from '../queues.ts';
import { createApiKeyService } from './api-keys.ts';
import type { ServiceContext } from './context.ts';
import { createEventService } from './events.ts';
import { createOrganizationService } from './organizations.ts';

/** All domain services, wired together. Routes and workers both use this one object. */
export function createServices(ctx: ServiceContext, queues: Queues) {
  const apiKeys = createApiKeyService(ctx);
  const organizations = createOrganizationService(ctx, apiKeys);
  const events = createEventService(ctx);
  return { ctx, queues, apiKeys, organizations, events };
}

export type Services = ReturnType<typeof createServices>;
