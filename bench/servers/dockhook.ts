/**
 * dockhook as `npm start` runs it (loadConfig from the environment, pino to
 * stdout, the real startService), plus an IPC channel for the bench.
 *
 * BENCH_WORKER=paused stops the worker right after start, so deliveries are
 * verified, recorded durably and answered, but no build ever runs: the ingest
 * measurement sees the receiver alone. (startService has no switch for this;
 * Worker.stop() before any build is queued has the same effect.)
 */
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/service.js';
import type { BuildRecord } from '../../src/store/store.js';
import { serveRpc } from '../process.js';

const config = loadConfig(process.env);
const log = createLogger(config.logLevel);
const service = await startService(config, { log });
const paused = process.env.BENCH_WORKER === 'paused';
if (paused) await service.worker?.stop(0);

// The process's own view of its memory, sampled every 50 ms: which part (V8 heap, buffers) makes a peak.
const peaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampleMemory = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[k] = Math.max(peaks[k], m[k]);
};
setInterval(sampleMemory, 50).unref();

const finished = (b: BuildRecord | undefined) => b !== undefined && (b.state === 'succeeded' || b.state === 'failed') && !service.worker?.isRunning(b.id);

serveRpc(
  {
    counts: () => service.store.countByState(),
    /** Builds this process's worker holds now (a slot stays held until the build's last GitHub status is written); -1 on a receiver. */
    active: () => service.worker?.activeCount ?? -1,
    build: (id: number) => service.store.get(id),
    builds: (ids: number[]) => Promise.all(ids.map((id) => service.store.get(id))),
    buildLog: (id: number) => service.logs.read(id),
    /** Current process.memoryUsage() and the highest value of each field seen since the last reset (bytes). */
    memory: ({ reset }: { reset?: boolean } = {}) => {
      sampleMemory();
      const answer = { now: process.memoryUsage(), peaks: { ...peaks } };
      if (reset) for (const k of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[k] = 0;
      return answer;
    },
    /** Resolves with the record once the build is over (its last GitHub status included). */
    waitBuild: async ({ id, timeoutMs }: { id: number; timeoutMs: number }) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const build = await service.store.get(id);
        if (finished(build)) return { build, log: build!.state === 'failed' ? await service.logs.read(id) : undefined };
        if (Date.now() > deadline) throw new Error(`build ${id} still ${build?.state === 'running' ? 'running' : build?.state} after ${timeoutMs} ms\n${await service.logs.read(id)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    /** Resolves once every build in `ids` is running. */
    waitRunning: async ({ ids, timeoutMs }: { ids: number[]; timeoutMs: number }) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const builds = await Promise.all(ids.map((id) => service.store.get(id)));
        if (builds.every((b) => b?.state === 'running')) return builds;
        if (builds.some((b) => finished(b))) throw new Error(`a build ended before all were running: ${JSON.stringify(builds.map((b) => [b?.id, b?.state, b?.failure]))}`);
        if (Date.now() > deadline) throw new Error(`builds not running after ${timeoutMs} ms: ${JSON.stringify(builds.map((b) => [b?.id, b?.state]))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop: async () => {
      await service.stop(0);
      setImmediate(() => process.exit(0));
    },
  },
  { url: service.url, pid: process.pid, builder: config.builder, paused },
);
