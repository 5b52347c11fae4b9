import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type JobResult = 'completed' | 'failed';

/**
 * What this process's workers did, for `/metrics`: webhook attempts by outcome and how long receivers
 * took, BullMQ jobs finished per queue, and the deliveries this process is attempting itself before any
 * job exists (first attempts: the queue depths cannot show them). Counted per process; Prometheus sums
 * the processes. Services report through plain callbacks, so they need no metrics library.
 */
export function createWorkMetrics() {
  const registry = new Registry();
  const attempts = new Counter({
    name: 'plugboard_webhook_attempts_total',
    help: 'Webhook delivery attempts this process made, by outcome (succeeded: a 2xx answer)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const attemptDuration = new Histogram({
    name: 'plugboard_webhook_attempt_duration_seconds',
    help: 'From sending a webhook request to its answer (or failure)',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'plugboard_jobs_total',
    help: "BullMQ jobs this process's workers finished, by queue and result (a failed job is retried while it has attempts left)",
    labelNames: ['queue', 'result'],
    registers: [registry],
  });
  let firstAttemptsInFlight = () => 0;
  new Gauge({
    name: 'plugboard_webhook_first_attempts_in_flight',
    help: 'Deliveries this process is attempting before queueing them (not in plugboard_queue_jobs)',
    registers: [registry],
    collect() {
      this.set(firstAttemptsInFlight());
    },
  });

  return {
    registry,

    deliveryAttempted({ delivered, latencyMs }: { delivered: boolean; latencyMs: number }): void {
      attempts.inc({ outcome: delivered ? 'succeeded' : 'failed' });
      attemptDuration.observe(latencyMs / 1000);
    },

    jobFinished(queue: string, result: JobResult): void {
      jobs.inc({ queue, result });
    },

    readFirstAttemptsInFlight(read: () => number): void {
      firstAttemptsInFlight = read;
    },
  };
}

export type WorkMetrics = ReturnType<typeof createWorkMetrics>;
