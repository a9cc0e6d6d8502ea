import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Everything /metrics shows; one instance per app so tests don't share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    deliveries: new Counter({
      name: 'dockhook_deliveries_total',
      help: 'Webhook deliveries by outcome (queued, duplicate, ignored, rejected).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    builds: new Counter({
      name: 'dockhook_builds_total',
      help: 'Build attempts by outcome (succeeded, failed, retrying, interrupted).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    buildDuration: new Histogram({
      name: 'dockhook_build_duration_seconds',
      help: 'Wall time of one build attempt, from start to pushed or failed.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800],
      registers: [registry],
    }),
    pushDuration: new Histogram({
      name: 'dockhook_push_duration_seconds',
      help: 'Wall time of pushing one reference.',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    redeliveries: new Counter({
      name: 'dockhook_deliveries_redelivered_total',
      help: 'Missed deliveries dockhook asked GitHub to redeliver, by outcome (requested; then delivered, failed: the redelivery failed too, refused: GitHub would not redeliver it).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    recoveryFailures: new Counter({
      name: 'dockhook_delivery_recovery_failures_total',
      help: "Recovery passes that could not finish a hook, by step (hooks: finding dockhook's hook, list: listing deliveries, redeliver: asking for a redelivery).",
      labelNames: ['step'] as const,
      registers: [registry],
    }),
    recoveryPasses: new Counter({
      name: 'dockhook_delivery_recovery_passes_total',
      help: 'Recovery passes by outcome (complete, partial: some hook failed, skipped: another process held the recovery lock).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'dockhook_queue_depth',
      help: 'Builds by state right now (queued, running).',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
