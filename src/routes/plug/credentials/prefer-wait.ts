import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CredentialView } from '../../../domain/credential-state.ts';
import type { StepStarted } from '../../../services/credentials.ts';
import type { Services } from '../../../services/index.ts';

/** SPEC §4: a client may wait up to 30 s for the provider step to finish instead of polling. */
export const MAX_WAIT_SECONDS = 30;

export const PREFER_HEADER_DESCRIPTION = `\`wait=N\` (N ≤ ${MAX_WAIT_SECONDS}): answer once the provider step has finished or N seconds have passed (RFC 7240)`;

/** The `wait` preference in seconds (clamped), or null when the client sent none or an unreadable one. */
export function preferredWaitSeconds(request: FastifyRequest): number | null {
  const header = request.headers.prefer;
  const text = Array.isArray(header) ? header.join(',') : header;
  // The whole value must be digits: `wait=1e309` or `wait=5s` is unreadable, not a wait of 1 or 5 seconds.
  const match = text === undefined ? null : /(?:^|[,;\s])wait\s*=\s*("?)(\d+)\1\s*(?=$|[,;])/i.exec(text);
  return match?.[2] === undefined ? null : Math.min(Number(match[2]), MAX_WAIT_SECONDS);
}

/** Honours `Prefer: wait=N` for a step just started, and says so with `Preference-Applied`. */
export async function credentialAfterStep(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  organizationId: string,
  started: StepStarted,
): Promise<CredentialView> {
  const waitSeconds = preferredWaitSeconds(request);
  // No step, nothing to wait for (a refresh of a connected credential syncs on a timer): the preference is not applied.
  if (waitSeconds === null || started.stepId === null) return started.credential;
  reply.header('preference-applied', `wait=${waitSeconds}`);
  if (waitSeconds === 0) return started.credential;
  const latest = await services.credentials.waitForStep(organizationId, started.credential.id, started.stepId, waitSeconds * 1000, request.server.closing);
  return latest ?? started.credential;
}
