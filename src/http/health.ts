import type Docker from 'dockerode';
import { Router } from 'express';
import { runnablePlatforms, type RunnablePlatforms } from '../engine/platforms.js';
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
  /** The platforms the engine runs (tests give their own); default runnablePlatforms(docker). */
  platforms?: () => Promise<RunnablePlatforms>;
}

/** /readyz's `platforms`: what the engine runs, informative only (missing emulation never makes a worker unready). */
type PlatformsAnswer = Pick<RunnablePlatforms, 'native' | 'emulated' | 'problems'> | { error: string };

const PLATFORMS_TTL_MS = 30_000; // `docker info` is not free, and probes come every few seconds

async function check(name: string, probe: () => Promise<unknown> | unknown): Promise<{ name: string; ok: boolean; error?: string }> {
  try {
    await probe();
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, error: (err as Error).message };
  }
}

/** /healthz: the process serves. /readyz: it can also build (engine, registry, store), and for which platforms. /metrics: Prometheus. */
export function healthRouter(deps: HealthDeps): Router {
  const router = Router();
  const probePlatforms = deps.platforms ?? (() => runnablePlatforms(deps.docker));
  let cached: { at: number; answer: PlatformsAnswer } | undefined;
  const platforms = async (): Promise<PlatformsAnswer> => {
    if (cached && Date.now() - cached.at < PLATFORMS_TTL_MS) return cached.answer;
    try {
      const { native, emulated, problems } = await probePlatforms();
      const answer = { native, emulated, ...(problems ? { problems } : {}) };
      cached = { at: Date.now(), answer };
      return answer;
    } catch (err) {
      return { error: (err as Error).message }; // the docker check names the engine's trouble; not cached
    }
  };
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/readyz', async (_req, res) => {
    const answer = deps.role === 'receiver' ? undefined : platforms();
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
    res.status(failed.length ? 503 : 200).json({
      ready: failed.length === 0,
      checks,
      ...(failed.length ? { failed: failed.map((f) => f.name) } : {}),
      ...(answer ? { platforms: await answer } : {}),
    });
  });
  router.get('/metrics', async (_req, res) => {
    const counts = await deps.store.countByState();
    deps.metrics.queueDepth.set({ state: 'queued' }, counts.queued);
    deps.metrics.queueDepth.set({ state: 'running' }, counts.running);
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
