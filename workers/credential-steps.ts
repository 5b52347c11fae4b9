import { Worker, type Job } from 'bullmq';
import type { Container } from '../src/container.ts';
import { QUEUE_NAMES } from '../src/queues.ts';
import type { StepJobData } from '../src/services/connections.ts';
import { logWorkerErrors, workerOptions } from './worker-options.ts';

/**
 * Provider round trips of credentials: login, MFA method choice, code submission. A job that throws after
 * a provider outage is retried with the queue's exponential backoff; a job whose worker died is picked up
 * again by BullMQ's stalled-job check and simply reruns (the step id makes a finished step a no-op).
 */
export function startCredentialStepWorker(container: Container): Worker<StepJobData> {
  const worker = new Worker<StepJobData>(
    QUEUE_NAMES.credentialSteps,
    async (job: Job<StepJobData>) => {
      const isFinal = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await container.services.connections.runStep(job.data, { isFinal });
    },
    // WORKER_CONCURRENCY: provider round trips a process makes at once.
    workerOptions(container, { concurrency: container.config.workerConcurrency }),
  );
  logWorkerErrors(worker, container, 'credential step');
  return worker;
}
