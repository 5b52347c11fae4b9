/**
 * The background work a credential's state calls for, derived from the state alone: the provider step in
 * flight and the timers that must be pending. Because it is a pure function of the record, the store
 * writes the timers in the same commit as the record (so they can never disagree), enqueues the step after
 * it, and the reconciler re-creates whatever is missing after a crash between commit and enqueue.
 *
 * Step job ids are deterministic, so enqueueing the same step twice is a no-op. Timer ids name the
 * credential and the challenge or session they belong to, so a timer of a superseded one is recognisably
 * stale when it fires. (BullMQ job ids may not contain ':'; timer ids are not job ids.)
 */
import type { CredentialRecord } from './credential-state.ts';

export const TIMER_KINDS = ['challenge_expiry', 'session_warning', 'session_expiry', 'sync', 'login_retry'] as const;
export type TimerKind = (typeof TIMER_KINDS)[number];

export interface StepJob {
  jobId: string;
  data: { organizationId: string; credentialId: string; stepId: string };
}

/** What a timer does when it fires; `ref` is the challenge id or session id the timer belongs to. */
export interface TimerTarget {
  kind: TimerKind;
  credentialId: string;
  ref: string;
}

export interface Timer extends TimerTarget {
  /** `kind:credentialId:ref`: unique per credential and purpose, so moving a timer replaces it. */
  id: string;
  /** When it should fire; timers already due fire at once. */
  runAt: string;
}

export interface CredentialWork {
  step: StepJob | null;
  timers: Timer[];
}

export interface ScheduleConfig {
  sessionWarningSeconds: number;
}

export function timerId({ kind, credentialId, ref }: TimerTarget): string {
  return `${kind}:${credentialId}:${ref}`;
}

/** The target a timer id names, or null for an id this version does not write. */
export function parseTimerId(id: string): TimerTarget | null {
  const [kind, credentialId, ref, ...rest] = id.split(':');
  if (!kind || !credentialId || !ref || rest.length > 0 || !(TIMER_KINDS as readonly string[]).includes(kind)) return null;
  return { kind: kind as TimerKind, credentialId, ref };
}

export function workFor(credential: CredentialRecord, config: ScheduleConfig): CredentialWork {
  const { id: credentialId, organizationId, step, mfa, session } = credential;
  const timers: Timer[] = [];
  const timer = (kind: TimerKind, ref: string, runAt: string) => timers.push({ kind, credentialId, ref, id: timerId({ kind, credentialId, ref }), runAt });

  if (mfa && credential.status === 'CONNECTION_IN_PROGRESS') timer('challenge_expiry', mfa.challengeId, mfa.expiresAt);
  // Named by its time (ms: timer refs hold no ':'), so a retry moved or superseded meanwhile is stale when it fires.
  if (!step && credential.statusDetail === 'PROVIDER_WEBSITE_INACCESSIBLE' && credential.nextSyncAt) {
    timer('login_retry', String(Date.parse(credential.nextSyncAt)), credential.nextSyncAt);
  }
  if (session && credential.status === 'CONNECTION_SUCCESS') {
    if (session.isMfa && session.expiresAt) {
      const warnAt = Date.parse(session.expiresAt) - config.sessionWarningSeconds * 1000;
      // SESSION_WARNING_SECONDS=0: no warning, which would come with the session's end.
      if (!session.warnedAt && config.sessionWarningSeconds > 0) {
        timer('session_warning', session.id, new Date(Math.max(warnAt, Date.parse(session.obtainedAt))).toISOString());
      }
      timer('session_expiry', session.id, session.expiresAt);
    }
    if (credential.nextSyncAt) timer('sync', session.id, credential.nextSyncAt);
  }
  return {
    step: step ? { jobId: `step-${credentialId}-${step.id}`, data: { organizationId, credentialId, stepId: step.id } } : null,
    timers,
  };
}

/** How the pending timers change between two states: new or moved ones, and ones no longer wanted. */
export function timerChanges(before: Timer[], after: Timer[]): { added: Timer[]; removed: Timer[] } {
  const beforeById = new Map(before.map((timer) => [timer.id, timer]));
  const afterIds = new Set(after.map((timer) => timer.id));
  return {
    added: after.filter((timer) => beforeById.get(timer.id)?.runAt !== timer.runAt),
    removed: before.filter((timer) => !afterIds.has(timer.id)),
  };
}
