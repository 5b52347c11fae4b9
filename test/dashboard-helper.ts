/** Helpers for the dashboard and two-factor integration tests. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as OTPAuth from 'otpauth';
import type { Test } from 'tap';
import type { App } from '../src/app.ts';
import { build, createOrganization, type TestOrganization } from './helper.ts';

type Teardown = { teardown(fn: () => unknown): void };

export type Headers = { authorization: string };

/** A clock the app reads through the container's `now` override; tests move it forward by hand. */
export function manualClock(start = '2026-03-01T12:00:05Z') {
  let current = new Date(start);
  return {
    now: () => current,
    advance(ms: number) {
      current = new Date(current.getTime() + ms);
    },
  };
}

export async function login(app: App, email: string, password: string) {
  return app.inject({ method: 'POST', url: '/dashboard/login', payload: { email, password } });
}

/** Logs in a user without two-factor and returns Bearer headers for the session. */
export async function sessionHeaders(app: App, email: string, password: string): Promise<Headers> {
  const response = await login(app, email, password);
  if (response.statusCode !== 200 || !response.json().session) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return { authorization: `Bearer ${response.json().session.token as string}` };
}

/** The code an independent TOTP implementation (the `otpauth` package) computes from our otpauth:// URI. */
export function totpCode(otpauthUri: string, at: Date): string {
  const parsed = OTPAuth.URI.parse(otpauthUri);
  if (!(parsed instanceof OTPAuth.TOTP)) throw new Error('not a TOTP URI');
  return parsed.generate({ timestamp: at.getTime() });
}

export interface ReceivedSms {
  to: string;
  body: string;
}

/** A real HTTP server on loopback standing in for an SMS provider behind the `webhook` gateway. */
export async function startSmsReceiver(t: Teardown) {
  const messages: ReceivedSms[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      messages.push(JSON.parse(body) as ReceivedSms);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`,
    messages,
    /** The six-digit code of the latest message, read from its body. */
    lastCode(): string {
      const code = /\b(\d{6})\b/.exec(messages.at(-1)?.body ?? '')?.[1];
      if (!code) throw new Error('no SMS code received');
      return code;
    },
  };
}

export async function eventTypesOf(app: App, organizationId: string): Promise<string[]> {
  const page = await app.services.events.list(organizationId, { limit: 100 });
  return (page?.data ?? []).map((event) => event.type);
}

export const STEP_MS = 30_000;

/** An app on a manual clock with one organization whose admin has turned on app two-factor. */
export async function enrolledAdmin(t: Test) {
  const clock = manualClock();
  const app = await build(t, { now: clock.now });
  const org = await createOrganization(app);
  const headers = await sessionHeaders(app, org.email, org.password);
  const { otpauthUri, recoveryCodes } = await enrollApp(app, headers, org, clock.now());
  // The enrollment code's time step is used up; the next login code comes from the next step.
  clock.advance(STEP_MS);
  return { app, org, clock, headers, otpauthUri, recoveryCodes };
}

export async function enrollApp(app: App, headers: Headers, org: TestOrganization, now: Date) {
  const started = await app.inject({ method: 'POST', url: '/dashboard/me/two-factor/app', headers, payload: { password: org.password } });
  if (started.statusCode !== 200) throw new Error(`app enrollment failed: ${started.body}`);
  const { otpauthUri } = started.json() as { otpauthUri: string };
  const confirmed = await app.inject({
    method: 'POST',
    url: '/dashboard/me/two-factor/app/confirm',
    headers,
    payload: { code: totpCode(otpauthUri, now) },
  });
  if (confirmed.statusCode !== 200) throw new Error(`app confirmation failed: ${confirmed.body}`);
  return { otpauthUri, recoveryCodes: confirmed.json().recoveryCodes as string[] };
}

export async function challengeFor(app: App, org: TestOrganization): Promise<string> {
  const response = await login(app, org.email, org.password);
  if (response.statusCode !== 200 || !response.json().twoFactorRequired) throw new Error(`expected a challenge: ${response.body}`);
  return response.json().challenge.id as string;
}

/** A challenge straight from the service: for tests that need many, without a password hash per login. */
export async function serviceChallenge(app: App, org: TestOrganization): Promise<string> {
  const user = await app.services.organizations.getUser(org.organizationId, org.userId);
  const { redis, keys } = app.services.ctx;
  const sessionsEndedBefore = (await redis.get(keys.org(org.organizationId).userSessionsEnded(org.userId))) ?? '0';
  const challenge = await app.services.twoFactor.startLoginChallenge(user!, sessionsEndedBefore);
  return challenge!.id;
}

export function verify(app: App, payload: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: '/dashboard/login/verify', payload });
}
