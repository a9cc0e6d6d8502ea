/**
 * Memory: peak RSS of the dockhook process while it streams a 300 MB build
 * context (incompressible files committed to a git repository served by the
 * fake GitHub) into the engine. dockhook runs in a child process, fresh for
 * each round; its /proc/<pid>/status is sampled every 50 ms, and VmHWM (the
 * kernel's own high-water mark of resident memory) is the figure.
 */
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import { dockerInfo, type BenchRepo } from './fixtures.js';
import type { ServerProcess } from './process.js';

const mb = (bytes: number) => (bytes / 1048576).toFixed(1);

export interface ProcMemory {
  /** kB, as /proc reports them. */
  vmRss: number;
  vmHwm: number;
}

export async function readProcMemory(pid: number): Promise<ProcMemory | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { vmRss: field('VmRSS'), vmHwm: field('VmHWM') };
}

/** Samples a process until stopped; keeps the highest VmRSS and the last VmHWM seen. */
export function sampleMemory(pid: number, everyMs = 50) {
  let maxRss = 0;
  let hwm = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const m = await readProcMemory(pid);
      if (m) {
        samples++;
        maxRss = Math.max(maxRss, m.vmRss);
        hwm = Math.max(hwm, m.vmHwm);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { maxRssKb: maxRss, hwmKb: hwm, samples };
    },
  };
}

export interface MemoryRound {
  builder: 'classic' | 'buildkit';
  /** VmHWM once started and idle (kB): the process's own floor. */
  idleHwmKb: number;
  /** VmHWM after the build (kB): the peak. */
  peakHwmKb: number;
  maxSampledRssKb: number;
  seconds: number;
  contextBytes: number;
  /** The build had not finished after capSeconds: it was stopped, and the peak is a lower bound. */
  cut: boolean;
  /** process.memoryUsage() of dockhook when idle and the highest values seen during the build (bytes). */
  idleUsage: NodeJS.MemoryUsage;
  buildPeaks: NodeJS.MemoryUsage;
}

export interface MemoryOptions {
  repo: BenchRepo;
  secret: string;
  builders: ('classic' | 'buildkit')[];
  rounds: number;
  /** A build still running after this long is stopped (its peak so far is reported); that builder gets no further rounds. */
  capSeconds: number;
  tmp: string;
  startDockhook: (dataDir: string, builder: 'classic' | 'buildkit') => Promise<ServerProcess<{ url: string; pid: number }>>;
  onProgress: (line: string) => void;
}

export async function runMemory(o: MemoryOptions): Promise<MemoryRound[]> {
  const out: MemoryRound[] = [];
  let n = 0;
  const cutBuilders = new Set<string>();
  for (let round = 1; round <= o.rounds; round++) {
    for (const builder of round % 2 === 1 ? o.builders : [...o.builders].reverse()) {
      if (cutBuilders.has(builder)) continue;
      const dataDir = await mkdtemp(join(o.tmp, 'memory-data-'));
      const dockhook = await o.startDockhook(dataDir, builder);
      try {
        // Let start-up settle (lazy requires, first GC) before taking the idle mark.
        await new Promise((r) => setTimeout(r, 500));
        const idle = await readProcMemory(dockhook.pid);
        const idleUsage = (await dockhook.call<{ now: NodeJS.MemoryUsage }>('memory', { reset: true })).now;
        const sha = await o.repo.commit({ 'dockerInfo.json': dockerInfo(`bench-memory-${builder}`, `1.0.${n++}`) });
        const sampler = sampleMemory(dockhook.pid);
        const { body, headers } = await signDelivery(o.secret, mergedPullRequestPayload({ owner: o.repo.owner, repo: o.repo.name, sha }));
        const t0 = Date.now();
        const res = await fetch(`${dockhook.ready.url}/webhook`, { method: 'POST', body, headers });
        const answer = (await res.json()) as { build?: number };
        if (res.status !== 202 || answer.build === undefined) throw new Error(`delivery answered ${res.status}: ${JSON.stringify(answer)}`);
        let finished: { build: { state: string; failure?: string; finishedAt: number }; log?: string } | undefined;
        try {
          finished = await dockhook.call('waitBuild', { id: answer.build, timeoutMs: o.capSeconds * 1000 });
        } catch (err) {
          if (!/still running/.test((err as Error).message)) throw err;
          cutBuilders.add(builder);
        }
        const peak = await readProcMemory(dockhook.pid);
        const sampled = await sampler.stop();
        const buildPeaks = (await dockhook.call<{ peaks: NodeJS.MemoryUsage }>('memory')).peaks;
        if (finished && finished.build.state !== 'succeeded') throw new Error(`memory build (${builder}) failed: ${finished.build.failure}\n${finished.log ?? ''}`);
        const built = /built \S+ from (\d+) files \((\d+) bytes/.exec(await dockhook.call<string>('buildLog', answer.build));
        const r: MemoryRound = {
          builder,
          idleHwmKb: idle?.vmHwm ?? NaN,
          peakHwmKb: Math.max(peak?.vmHwm ?? 0, sampled.hwmKb),
          maxSampledRssKb: sampled.maxRssKb,
          seconds: finished ? (finished.build.finishedAt - t0) / 1000 : (Date.now() - t0) / 1000,
          contextBytes: built ? Number(built[2]) : NaN,
          cut: finished === undefined,
          idleUsage,
          buildPeaks,
        };
        out.push(r);
        o.onProgress(
          r.cut
            ? `memory round ${round}/${o.rounds} ${builder.padEnd(8)} build still running after ${o.capSeconds} s, stopped: VmHWM so far ${(r.peakHwmKb / 1024).toFixed(1)} MiB (idle ${(r.idleHwmKb / 1024).toFixed(1)} MiB); no further ${builder} rounds`
            : `memory round ${round}/${o.rounds} ${builder.padEnd(8)} peak VmHWM ${(r.peakHwmKb / 1024).toFixed(1)} MiB (idle ${(r.idleHwmKb / 1024).toFixed(1)} MiB), ${r.seconds.toFixed(1)} s, ${(r.contextBytes / 1048576).toFixed(0)} MiB sent; during the build heapTotal ≤ ${mb(buildPeaks.heapTotal)}, external ≤ ${mb(buildPeaks.external)}, arrayBuffers ≤ ${mb(buildPeaks.arrayBuffers)} MiB (idle ${mb(idleUsage.heapTotal)}, ${mb(idleUsage.external)}, ${mb(idleUsage.arrayBuffers)})`,
        );
      } finally {
        await dockhook.stop();
      }
    }
  }
  return out;
}
