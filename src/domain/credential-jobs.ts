/**
 * The background work a credential's state calls for, derived from the state alone: the provider step in
 * flight and the timers that must be pending. Because it is a pure function of the record, the service
 * schedules exactly this after every commit (removing what the old state wanted and the new one does not),
 * and the reconciler re-creates whatever is missing after a crash between commit and enqueue.
 *
 * Job ids are deterministic, so scheduling the same work twice is a no-op, and they name the challenge,
 * session or step they belong to, so a job of a superseded one is recognisably stale when it runs.
 * (BullMQ job ids may not contain ':'.)
 */
import type { CredentialRecord } from './credential-state.ts';

export type TimerKind = 'challenge_expiry' | 'session_warning' | 'session_expiry' | 'sync';

export interface StepJob {
  queue: 'credentialSteps';
  jobId: string;
  data: { organizationId: string; credentialId: string; stepId: string };
}

export interface TimerJob {
  queue: 'timers';
  kind: TimerKind;
  jobId: string;
  /** When it should fire; timers already due fire at once. */
  runAt: string;
  /** `ref` is the challenge id or session id the timer belongs to. */
  data: { organizationId: string; credentialId: string; kind: TimerKind; ref: string };
}

export type CredentialJob = StepJob | TimerJob;

export interface ScheduleConfig {
  sessionWarningSeconds: number;
}

export function jobsFor(credential: CredentialRecord, config: ScheduleConfig): CredentialJob[] {
  const jobs: CredentialJob[] = [];
  const { id: credentialId, organizationId, step, mfa, session } = credential;
  const timer = (kind: TimerKind, ref: string, runAt: string): TimerJob => ({
    queue: 'timers',
    kind,
    jobId: `${kind}-${credentialId}-${ref}-${Date.parse(runAt)}`,
    runAt,
    data: { organizationId, credentialId, kind, ref },
  });

  if (step) jobs.push({ queue: 'credentialSteps', jobId: `step-${credentialId}-${step.id}`, data: { organizationId, credentialId, stepId: step.id } });
  if (mfa && credential.status === 'CONNECTION_IN_PROGRESS') jobs.push(timer('challenge_expiry', mfa.challengeId, mfa.expiresAt));
  if (session && credential.status === 'CONNECTION_SUCCESS') {
    if (session.isMfa && session.expiresAt) {
      if (!session.warnedAt) {
        const warnAt = Date.parse(session.expiresAt) - config.sessionWarningSeconds * 1000;
        jobs.push(timer('session_warning', session.id, new Date(Math.max(warnAt, Date.parse(session.obtainedAt))).toISOString()));
      }
      jobs.push(timer('session_expiry', session.id, session.expiresAt));
    }
    if (credential.nextSyncAt) jobs.push(timer('sync', session.id, credential.nextSyncAt));
  }
  return jobs;
}

/** Jobs the old state wanted that the new one does not: to be removed so they never fire. */
export function supersededJobs(before: CredentialJob[], after: CredentialJob[]): CredentialJob[] {
  const kept = new Set(after.map((job) => job.jobId));
  return before.filter((job) => !kept.has(job.jobId));
}
