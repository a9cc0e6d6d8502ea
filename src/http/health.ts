import type Docker from 'dockerode';
import { Router } from 'express';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { RegistryClient } from '../registry/client.js';

export interface HealthDeps {
  docker: Docker;
  registry: RegistryClient;
  store: Store;
  metrics: Metrics;
  /** A receiver builds nothing, so its readiness does not hang on an engine. */
  role?: 'all' | 'receiver' | 'worker';
  /** A worker whose store is away starts nothing new: not ready, and says why. */
  workerProblem?: () => string | undefined;
  /** Why BUILDER cannot work on this engine (BUILDER=buildkit on Podman), or undefined. */
  builderProblem?: () => Promise<string | undefined>;
}

async function check(name: string, probe: () => Promise<unknown> | unknown): Promise<{ name: string; ok: boolean; error?: string }> {
  try {
    await probe();
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, error: (err as Error).message };
  }
}

/** /healthz: the process serves. /readyz: it can also build (engine, registry, store). /metrics: Prometheus. */
export function healthRouter(deps: HealthDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all([
      ...(deps.role === 'receiver' ? [] : [check('docker', async () => {
        await deps.docker.ping();
        // An engine that answers but cannot run the builder BUILDER forces fails every build: not ready.
        const problem = await deps.builderProblem?.();
        if (problem) throw new Error(problem);
      })]),
      check('registry', async () => {
        const { ok, status } = await deps.registry.ping();
        if (!ok) throw new Error(`registry answered ${status} on /v2/`);
      }),
      check('store', async () => {
        await deps.store.checkWritable();
        const problem = deps.workerProblem?.();
        if (problem) throw new Error(`the worker cannot claim builds: ${problem}`);
      }),
    ]);
    const failed = results.filter((r) => !r.ok);
    const checks = Object.fromEntries(results.map((r) => [r.name, r.ok ? 'ok' : r.error]));
    res.status(failed.length ? 503 : 200).json({ ready: failed.length === 0, checks, ...(failed.length ? { failed: failed.map((f) => f.name) } : {}) });
  });
  router.get('/metrics', async (_req, res) => {
    const counts = await deps.store.countByState();
    deps.metrics.queueDepth.set({ state: 'queued' }, counts.queued);
    deps.metrics.queueDepth.set({ state: 'running' }, counts.running);
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
