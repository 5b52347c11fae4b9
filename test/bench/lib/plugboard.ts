/**
 * A client's view of a running system: an organization with an access token, and JSON calls to the API.
 * The organization itself is created through the service layer (as `npm run admin -- create-org` does),
 * in a container that shares the system's Redis, prefix and encryption key.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../src/config.ts';
import { createContainer, type Container } from '../../../src/container.ts';
import type { System } from './system.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what} answered ${status}: ${body.slice(0, 300)}`);
  }
}

export interface Client {
  organizationId: string;
  headers: { authorization: string; 'content-type': string };
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A container on the system's data, for seeding through the service layer. The caller closes it. */
export function connectContainer(system: System): Container {
  return createContainer(loadConfig({ ...system.env, LOG_LEVEL: 'warn' }));
}

export async function createClient(system: System, container: Container): Promise<Client> {
  const org = await container.services.organizations.createOrganization({
    name: 'Benchmark org',
    email: `bench-${randomBytes(4).toString('hex')}@example.com`,
    password: `pw-${randomBytes(8).toString('hex')}`,
  });
  const token = await fetchJson<{ access_token: string }>(system.apiUrl, 'POST', '/oauth2/token', {
    grant_type: 'client_credentials',
    client_id: org.clientId,
    client_secret: org.clientSecret,
  });
  const headers = { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' };
  return {
    organizationId: org.organizationId,
    headers,
    call: (method, path, body) => fetchJson(system.apiUrl, method, path, body, headers),
  };
}

async function fetchJson<T>(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? { authorization: headers.authorization ?? '' } : headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text, `${method} ${path}`);
  return (text ? JSON.parse(text) : {}) as T;
}
