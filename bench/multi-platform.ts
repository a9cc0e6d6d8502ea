/**
 * Multi-platform builds and artifact downloads (`npm run bench -- --only platforms`).
 *
 * 1. Builds. Three repositories served by the fake GitHub, each a
 *    single-object dockerInfo.json with the same Dockerfile
 *    (`FROM ${DOCKHOOK_REGISTRY}/busybox:multi`, a RUN step writing a nonce
 *    new for every build, so no build is answered by the engine's cache):
 *    `plat-both` (platforms linux/amd64 and linux/arm64), `plat-amd64`
 *    (linux/amd64 only) and `plat-arm64` (linux/arm64 only). Per round and
 *    builder, one merge of each, one after the other (the two-platform build
 *    first in odd rounds, last in even ones): T_both against T_amd64 +
 *    T_arm64, each from the delivery's POST to the build's finishedAt
 *    (GET /api/builds/<id>). The index assembly of the two-platform build is
 *    read from its log (GET /api/builds/<id>/log, each line stamped with an
 *    ISO time): from the last "pushed <repo>:_platform-… <digest>" to the
 *    "pushed <repo>:<first tag> <digest>" after it (reading back both
 *    children, putIndex, recording the push). putIndex alone is also timed
 *    from this process against the registry, with the two children the
 *    build pushed, under a tag of the bench's own.
 * 2. Memory. A 200 MiB .tar.gz of random bytes is pushed as an artifact with
 *    pushArtifact straight into the registry and recorded with
 *    store.recordArtifact on a succeeded build of a fresh SQLite store
 *    (written before dockhook starts on it); a fresh dockhook process then
 *    serves GET /api/builds/<id>/artifacts/<name> to this process, which reads
 *    and hashes the whole body while /proc/<pid>/status (VmRSS) is sampled
 *    every 20 ms; VmHWM at the end is the peak; then the same download again
 *    in the same process. Two kinds of process: the bench's compiled server
 *    (plain node, as `npm start`, with --node-args: the target's, checked
 *    against the Dockerfile's CMD) and test/support/dockhook-process.ts
 *    spawnDockhook (src/main.ts under tsx, for comparison only).
 *
 * Nothing here asserts a timing: the targets are printed as met or missed.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { pushArtifact } from '../src/registry/artifact.js';
import { createRegistryClient } from '../src/registry/client.js';
import { indexChildFor, putIndex } from '../src/registry/image-index.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { pushBusyboxIndex } from '../test/support/busybox-index.js';
import { mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import { spawnDockhook } from '../test/support/dockhook-process.js';
import { createBenchRepo, type BenchRepo } from './fixtures.js';
import { readProcMemory } from './memory.js';
import { REPO_ROOT, type ServerProcess } from './process.js';
import type { MachineFacts } from './report.js';
import { fmt, fmtRatio, ratios, summarize } from './stats.js';

export type Builder = 'classic' | 'buildkit';
export type PlatformsKind = 'both' | 'amd64' | 'arm64';

const PLATFORMS: Record<PlatformsKind, string[]> = { both: ['linux/amd64', 'linux/arm64'], amd64: ['linux/amd64'], arm64: ['linux/arm64'] };

export interface PlatformBuildRun {
  builder: Builder;
  kind: PlatformsKind;
  round: number;
  id: number;
  sha: string;
  /** Delivery POST → the build's finishedAt, ms. */
  ms: number;
  /** startedAt → finishedAt, ms. */
  ownMs: number;
  /** From the log, ms after the delivery: each platform's "building <platform>" line and its "pushed …:_platform-…" line. */
  platforms: { platform: string; buildingAt?: number; pushedAt?: number }[];
  /** The last child's "pushed" line → the "pushed <first tag>" line after it (the index PUT answered, the push recorded), ms. */
  assemblyMs?: number;
  /** "pushing <first tag>" → "pushed <first tag>", ms: the index's own PUT (children read back, putIndex, recordPush). */
  indexPutMs?: number;
  /** A RUN step answered by the engine's cache (it should never be). */
  cached: boolean;
}

export interface PutIndexSample {
  builder: Builder;
  round: number;
  /** indexChildFor of both children (in parallel), ms. */
  childrenMs: number;
  /** putIndex (reads both back, PUTs the index), ms. */
  putIndexMs: number;
}

export interface ArtifactRound {
  runner: 'compiled' | 'tsx';
  round: number;
  /** kB from /proc/<pid>/status, once started and idle. */
  idleRssKb: number;
  idleHwmKb: number;
  /** The highest VmRSS sampled during the download, and VmHWM after it (kB). */
  maxRssKb: number;
  peakHwmKb: number;
  samples: number;
  /** First byte → last byte, s. */
  seconds: number;
  /** CPU time the dockhook process spent (user + system, /proc/<pid>/stat) from the request to 100 ms after the last byte, ms. */
  cpuMs: number;
  bytes: number;
  digestOk: boolean;
  /** The node flags the process runs with (from /proc/<pid>/cmdline), e.g. ["--max-semi-space-size=4"]. */
  nodeFlags: string[];
  /**
   * The compiled server's own process.memoryUsage() (its 50 ms sampler, bench/servers/dockhook.ts): just
   * before the download, and the highest value of each field during it, MiB. Not for tsx (no channel).
   */
  inner?: { before: InnerMemory; peaks: InnerMemory };
  /** The same download again in the same process: the highest VmRSS sampled during it (kB). */
  againMaxRssKb: number;
}

export interface InnerMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface PlatformsResults {
  builders: Builder[];
  rounds: number;
  builds: PlatformBuildRun[];
  putIndex: PutIndexSample[];
  artifactBytes: number;
  artifact: ArtifactRound[];
  anomalies: string[];
}

export interface PlatformsOptions {
  registry: { host: string; url: string };
  github: ServerProcess<{ apiUrl: string }>;
  serve: (repo: BenchRepo) => Promise<unknown>;
  secret: string;
  rounds: number;
  builders: Builder[];
  tmp: string;
  /** The bench's compiled dockhook server (bench/servers/dockhook.ts) on `dataDir`. */
  startDockhook: (name: string, dataDir: string, env: Record<string, string>) => Promise<ServerProcess<{ url: string; pid: number }>>;
  /** What spawnDockhook needs besides DATA_DIR (WEBHOOK_SECRET, GITHUB_TOKEN, REGISTRY, …). */
  env: Record<string, string>;
  artifactBytes: number;
  artifactRounds: number;
  onProgress: (line: string) => void;
}

interface BuildJson {
  id: number;
  state: string;
  image: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  failure: string | null;
  platforms: { platform: string; digest: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stamp = (line: string) => Date.parse(line.slice(0, 24));
const text = (line: string) => line.slice(25);

/** Reads the stamped log lines of a multi-platform build. */
export function parsePlatformLog(log: string, t0: number): Pick<PlatformBuildRun, 'platforms' | 'assemblyMs' | 'indexPutMs' | 'cached'> & { lines: string[] } {
  const lines = log.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
  const platforms: PlatformBuildRun['platforms'] = [];
  let lastChild = -1;
  lines.forEach((l, i) => {
    const b = /^building (?:\S+ )?(?:for )?(\w+\/\w+(?:\/\w+)?)\b/.exec(text(l));
    if (b && !platforms.some((p) => p.platform === b[1])) platforms.push({ platform: b[1]!, buildingAt: stamp(l) - t0 });
    const p = /^pushed \S+:_platform-\S+?-(\w+)-(\w+)(?:-(\w+))? sha256:/.exec(text(l));
    if (p) {
      const platform = [p[1], p[2], p[3]].filter(Boolean).join('/');
      const entry = platforms.find((x) => x.platform === platform) ?? (platforms.push({ platform }), platforms.at(-1)!);
      entry.pushedAt = stamp(l) - t0;
      lastChild = i;
    }
  });
  let assemblyMs: number | undefined;
  let indexPutMs: number | undefined;
  if (lastChild >= 0) {
    const after = lines.slice(lastChild + 1);
    const pushing = after.find((l) => /^pushing \S+:(?!_platform-)\S+$/.test(text(l)));
    const pushed = after.find((l) => /^pushed \S+:(?!_platform-)\S+ sha256:/.test(text(l)));
    if (pushed) assemblyMs = stamp(pushed) - stamp(lines[lastChild]!);
    if (pushing && pushed) indexPutMs = stamp(pushed) - stamp(pushing);
  }
  // Classic: " ---> Using cache" after the RUN step; BuildKit: "CACHED [2/2] RUN …"; both: dockhook's "layers from cache: N of M steps".
  const cached = lines.some((l, i) => (/RUN echo /.test(l) && (/CACHED/.test(l) || /Using cache/.test(lines[i + 1] ?? ''))) || /layers from cache: [1-9]/.test(l));
  return { platforms, assemblyMs, indexPutMs, cached, lines };
}

export async function runPlatforms(o: PlatformsOptions): Promise<PlatformsResults> {
  const anomalies: string[] = [];
  const builds: PlatformBuildRun[] = [];
  const putIndexSamples: PutIndexSample[] = [];
  const run = randomUUID().slice(0, 8);
  const registry = createRegistryClient({ url: o.registry.url });

  o.onProgress('platforms: pushing busybox:multi (amd64 + arm64) to the registry');
  await pushBusyboxIndex(o.registry);

  let n = 0;
  const dockerfile = (nonce: string) => `ARG DOCKHOOK_REGISTRY\nFROM \${DOCKHOOK_REGISTRY}/busybox:multi\nRUN echo ${nonce} > /run.txt && uname -m > /arch\nCMD ["cat", "/arch"]\n`;
  const info = (kind: PlatformsKind, builder: Builder, version: string) => JSON.stringify({ service_name: `plat-${kind}-${builder}`, version, platforms: PLATFORMS[kind] }, null, 2) + '\n';

  let pr = 0;
  for (const builder of o.builders) {
    const repos = {} as Record<PlatformsKind, BenchRepo>;
    for (const kind of ['both', 'amd64', 'arm64'] as PlatformsKind[]) {
      repos[kind] = await createBenchRepo(o.tmp, 'bench', `plat-${kind}-${builder}`, { 'dockerInfo.json': info(kind, builder, '0.0.0'), Dockerfile: dockerfile(`${run}-${builder}-${kind}-init`), 'README.md': `${kind}\n` });
      await o.serve(repos[kind]);
    }
    const dockhook = await o.startDockhook(`dockhook-platforms-${builder}`, await mkdtemp(join(o.tmp, `platforms-${builder}-`)), { BUILDER: builder, BUILD_CONCURRENCY: '1' });
    try {
      const api = async <T>(path: string, as: 'json' | 'text' = 'json'): Promise<T> => {
        const res = await fetch(`${dockhook.ready.url}${path}`);
        if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
        return (as === 'json' ? await res.json() : await res.text()) as T;
      };
      const build = async (kind: PlatformsKind, round: number): Promise<PlatformBuildRun> => {
        const repo = repos[kind];
        const sha = await repo.commit({ Dockerfile: dockerfile(`${run}-${builder}-${kind}-r${round}-${++n}`), 'dockerInfo.json': info(kind, builder, `1.${round}.${n}`) }, `round ${round}`);
        const { body, headers } = await signDelivery(o.secret, mergedPullRequestPayload({ owner: repo.owner, repo: repo.name, sha, number: ++pr }));
        const t0 = Date.now();
        const res = await fetch(`${dockhook.ready.url}/webhook`, { method: 'POST', body, headers });
        const answer = (await res.json()) as { build?: number };
        if (res.status !== 202 || answer.build === undefined) throw new Error(`delivery answered ${res.status}: ${JSON.stringify(answer)}`);
        const id = answer.build;
        await dockhook.call('waitBuild', { id, timeoutMs: 300_000 });
        const b = await api<BuildJson>(`/api/builds/${id}`);
        const log = await api<string>(`/api/builds/${id}/log`, 'text');
        if (b.state !== 'succeeded') throw new Error(`platforms ${builder} ${kind} (build #${id}) ${b.state}: ${b.failure}\n${log.split('\n').slice(-30).join('\n')}`);
        const parsed = parsePlatformLog(log, t0);
        const r: PlatformBuildRun = { builder, kind, round, id, sha, ms: Date.parse(b.finishedAt!) - t0, ownMs: Date.parse(b.finishedAt!) - Date.parse(b.startedAt!), ...parsed };
        delete (r as { lines?: unknown }).lines;
        if (r.cached) anomalies.push(`${builder} ${kind} round ${round} (build #${id}): a RUN step came from the engine cache`);
        if (parsed.platforms.filter((p) => p.pushedAt !== undefined).length !== PLATFORMS[kind].length) anomalies.push(`${builder} ${kind} round ${round} (build #${id}): the log shows ${parsed.platforms.length} platform pushes, expected ${PLATFORMS[kind].length}`);
        if (round > 0 && kind === 'both') {
          // putIndex alone, from here, with the children the build pushed (under the bench's own tag).
          const name = b.image!.slice(o.registry.host.length + 1).replace(/:.*$/, '');
          for (let k = 0; k < 3; k++) {
            const c0 = performance.now();
            const children = await Promise.all(b.platforms.map((p) => indexChildFor(registry, name, p.digest, p.platform)));
            const c1 = performance.now();
            await putIndex(registry, name, `bench-index-r${round}-${k}`, children);
            putIndexSamples.push({ builder, round, childrenMs: c1 - c0, putIndexMs: performance.now() - c1 });
          }
        }
        return r;
      };

      // Untimed warm-up: each repository built once (the engine pulls busybox:multi for both platforms).
      for (const kind of ['both', 'amd64', 'arm64'] as PlatformsKind[]) await build(kind, 0);
      o.onProgress(`platforms ${builder}: warm-up builds done`);
      for (let round = 1; round <= o.rounds; round++) {
        const order: PlatformsKind[] = round % 2 === 1 ? ['both', 'amd64', 'arm64'] : ['amd64', 'arm64', 'both'];
        const got: Partial<Record<PlatformsKind, PlatformBuildRun>> = {};
        for (const kind of order) {
          const r = await build(kind, round);
          builds.push(r);
          got[kind] = r;
        }
        const pair = got.amd64!.ms + got.arm64!.ms;
        const last = putIndexSamples.filter((s) => s.builder === builder && s.round === round).map((s) => s.putIndexMs);
        o.onProgress(
          `platforms ${builder} round ${round}/${o.rounds}: both ${(got.both!.ms / 1000).toFixed(2)} s vs amd64 ${(got.amd64!.ms / 1000).toFixed(2)} + arm64 ${(got.arm64!.ms / 1000).toFixed(2)} = ${(pair / 1000).toFixed(2)} s (${(got.both!.ms / pair).toFixed(2)}×); index assembly ${got.both!.assemblyMs ?? '?'} ms (log), putIndex ${last.map((x) => x.toFixed(0)).join('/')} ms`,
        );
      }
    } finally {
      await dockhook.stop();
    }
  }

  const artifact = await runArtifactMemory(o, registry, anomalies);
  return { builders: o.builders, rounds: o.rounds, builds, putIndex: putIndexSamples, artifactBytes: o.artifactBytes, artifact, anomalies };
}

/** A real .tar.gz (one file of random bytes, gzip level 1, which leaves random bytes as large as they are) written to `path`; its digest and size. */
async function randomTarGz(path: string, bytes: number): Promise<{ digest: string; size: number }> {
  const tar = pack();
  const chunk = 1024 * 1024;
  let left = bytes;
  const data = new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const b = randomBytes(Math.min(chunk, left));
      left -= b.length;
      this.push(b);
    },
  });
  const entry = tar.entry({ name: 'blob.bin', size: bytes }, (err) => (err ? tar.destroy(err) : tar.finalize()));
  const hash = createHash('sha256');
  let size = 0;
  const written = pipeline(
    tar,
    createGzip({ level: 1 }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const b of source) {
        hash.update(b);
        size += b.length;
        yield b;
      }
    },
    createWriteStream(path),
  );
  await pipeline(data, entry);
  await written;
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** The node flags of the Dockerfile's CMD ["node", <flags>…, "dist/main.js"]: what the image runs dockhook with. */
export async function dockerfileNodeFlags(): Promise<string[]> {
  const text = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(text)?.[1];
  const argv = cmd ? (JSON.parse(cmd) as string[]) : [];
  if (argv[0] !== 'node' || argv.at(-1) !== 'dist/main.js') throw new Error(`the Dockerfile's CMD is not ["node", …, "dist/main.js"]: ${cmd}`);
  return argv.slice(1, -1);
}

/** User + system CPU time of a process so far, ms (/proc/<pid>/stat utime + stime, in clock ticks of 10 ms). */
async function processCpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The flags a running node process was given before its script (execArgv), from /proc/<pid>/cmdline; tsx's --import included. */
async function processNodeFlags(pid: number): Promise<string[]> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean).slice(1);
  const flags: string[] = [];
  for (let i = 0; i < argv.length && argv[i]!.startsWith('-'); i++) {
    flags.push(argv[i]!);
    if (argv[i] === '--import' || argv[i] === '--require' || argv[i] === '-r') flags.push(argv[++i]!);
  }
  return flags;
}

const toMiB = (m: Record<keyof InnerMemory, number>): InnerMemory => ({
  rss: m.rss / 1048576,
  heapTotal: m.heapTotal / 1048576,
  heapUsed: m.heapUsed / 1048576,
  external: m.external / 1048576,
  arrayBuffers: m.arrayBuffers / 1048576,
});

async function runArtifactMemory(o: PlatformsOptions, registry: ReturnType<typeof createRegistryClient>, anomalies: string[]): Promise<ArtifactRound[]> {
  const dir = join(o.tmp, 'artifact');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'blob.tar.gz');
  o.onProgress(`platforms: writing a ${(o.artifactBytes / 1048576).toFixed(0)} MiB random .tar.gz and pushing it as an artifact`);
  const { digest: layerDigest, size } = await randomTarGz(file, o.artifactBytes);
  if ((await stat(file)).size !== size) throw new Error('the .tar.gz on disk is not the size written');
  const repository = 'bench-artifact';
  const tag = `_artifact-bench-${randomUUID().slice(0, 8)}`;
  const pushed = await pushArtifact(registry, repository, tag, { file: createReadStream(file), fileName: 'blob.tar.gz', digest: layerDigest, size });
  if (pushed.layerDigest !== layerDigest) throw new Error(`the registry took the layer as ${pushed.layerDigest}, not ${layerDigest}`);

  const imageFlags = await dockerfileNodeFlags();
  const out: ArtifactRound[] = [];
  for (let round = 1; round <= o.artifactRounds; round++) {
    for (const runner of (round % 2 === 1 ? ['compiled', 'tsx'] : ['tsx', 'compiled']) as ArtifactRound['runner'][]) {
      // A fresh store holding one succeeded build with the artifact, written before dockhook opens it.
      const dataDir = await mkdtemp(join(o.tmp, `artifact-data-${runner}-`));
      const store = new SqliteStore(dataDir);
      let id: number;
      try {
        const sha = randomBytes(20).toString('hex');
        const queued = await store.enqueue({
          deliveryId: randomUUID(),
          trigger: 'manual',
          owner: 'bench',
          repo: 'artifact',
          repoUrl: 'https://github.com/bench/artifact',
          defaultBranch: 'main',
          branch: 'main',
          sha,
          mergedAt: new Date().toISOString(),
        });
        const claimed = await store.claimNext({ owner: 'bench', ms: 60_000 });
        if (!claimed || claimed.id !== queued.build.id) throw new Error(`could not claim the artifact's build: ${JSON.stringify(claimed)}`);
        id = claimed.id;
        await store.setImage(id, repository, '1.0.0');
        await store.recordArtifact(id, { name: 'blob', path: '/blob', repository, tag, digest: pushed.digest, layerDigest, size });
        if (!(await store.markSucceeded(id, 'bench'))) throw new Error('could not mark the artifact build succeeded');
      } finally {
        await store.close();
      }

      let pid: number;
      let url: string;
      let stop: () => Promise<void>;
      let memory: ((reset: boolean) => Promise<{ now: Record<keyof InnerMemory, number>; peaks: Record<keyof InnerMemory, number> }>) | undefined;
      if (runner === 'compiled') {
        const d = await o.startDockhook('dockhook-artifact', dataDir, { BENCH_WORKER: 'paused' });
        pid = d.pid;
        url = d.ready.url;
        stop = () => d.stop();
        memory = (reset) => d.call('memory', { reset });
      } else {
        const d = await spawnDockhook({ ...o.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' });
        pid = d.child.pid!;
        url = d.url;
        stop = async () => {
          d.kill('SIGTERM');
          const timer = setTimeout(() => d.kill('SIGKILL'), 15_000);
          await d.exited;
          clearTimeout(timer);
        };
      }
      try {
        // Let start-up settle (lazy imports, the first GC) before the idle mark.
        await sleep(1000);
        const nodeFlags = await processNodeFlags(pid);
        const mismatch = `artifact download (compiled): dockhook ran with the node flags ${JSON.stringify(nodeFlags)}, the Dockerfile's CMD has ${JSON.stringify(imageFlags)}: pass --node-args="${imageFlags.join(' ')}" to measure what the image runs`;
        if (runner === 'compiled' && nodeFlags.join(' ') !== imageFlags.join(' ') && !anomalies.includes(mismatch)) anomalies.push(mismatch);
        const idle = await readProcMemory(pid);
        const inner = memory ? { before: toMiB((await memory(true)).now), peaks: undefined as InnerMemory | undefined } : undefined;
        const download = async () => {
          let maxRss = 0;
          let samples = 0;
          let sampling = true;
          const sampler = (async () => {
            while (sampling) {
              const m = await readProcMemory(pid);
              if (m) {
                samples++;
                maxRss = Math.max(maxRss, m.vmRss);
              }
              await sleep(20);
            }
          })();
          const cpu0 = await processCpuMs(pid);
          const t0 = performance.now();
          const res = await fetch(`${url}/api/builds/${id}/artifacts/blob`);
          if (res.status !== 200) throw new Error(`GET /api/builds/${id}/artifacts/blob answered ${res.status}: ${await res.text()}`);
          const hash = createHash('sha256');
          let bytes = 0;
          for await (const b of res.body! as unknown as AsyncIterable<Uint8Array>) {
            hash.update(b);
            bytes += b.length;
          }
          const seconds = (performance.now() - t0) / 1000;
          await sleep(100);
          sampling = false;
          await sampler;
          const after = await readProcMemory(pid);
          const cpuMs = (await processCpuMs(pid)) - cpu0;
          const digestOk = `sha256:${hash.digest('hex')}` === layerDigest && bytes === size;
          return { maxRss, samples, seconds, cpuMs, bytes, digestOk, after };
        };
        const first = await download();
        if (inner) inner.peaks = toMiB((await memory!(true)).peaks);
        // The same download again: what a process past its first registry request and its first big stream holds.
        const again = await download();
        for (const [which, d] of [['first', first], ['again', again]] as const) {
          if (!d.digestOk) anomalies.push(`artifact download (${runner}, round ${round}, ${which}): ${d.bytes} bytes, digest differs or short; expected ${size} bytes`);
        }
        const r: ArtifactRound = {
          runner,
          round,
          idleRssKb: idle?.vmRss ?? NaN,
          idleHwmKb: idle?.vmHwm ?? NaN,
          maxRssKb: first.maxRss,
          peakHwmKb: first.after?.vmHwm ?? NaN,
          samples: first.samples,
          seconds: first.seconds,
          cpuMs: first.cpuMs,
          bytes: first.bytes,
          digestOk: first.digestOk && again.digestOk,
          nodeFlags,
          inner: inner?.peaks ? { before: inner.before, peaks: inner.peaks } : undefined,
          againMaxRssKb: again.maxRss,
        };
        out.push(r);
        const ab = r.inner ? `, arrayBuffers ${r.inner.before.arrayBuffers.toFixed(1)} → max ${r.inner.peaks.arrayBuffers.toFixed(1)}` : '';
        o.onProgress(`platforms artifact ${runner.padEnd(8)} round ${round}/${o.artifactRounds}: peak VmHWM ${(r.peakHwmKb / 1024).toFixed(1)} MiB (VmRSS before ${(r.idleRssKb / 1024).toFixed(1)}, max sampled ${(r.maxRssKb / 1024).toFixed(1)}${ab}), ${(r.bytes / 1048576).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s, dockhook CPU ${r.cpuMs} ms; again: max VmRSS ${(r.againMaxRssKb / 1024).toFixed(1)}; digest ${r.digestOk ? 'ok' : 'WRONG'}`);
      } finally {
        await stop();
      }
    }
  }
  await rm(file, { force: true });
  return out;
}

const verdict = (met: boolean | undefined) => (met === undefined ? 'n/a' : met ? 'met' : '**missed**');
const sec = (ms: number) => ms / 1000;
const MB150_KB = 150e6 / 1024;

export function renderPlatformsReport(r: PlatformsResults, machine: MachineFacts, given: string[], minutes: number): { table: string; markdown: string } {
  const notes = [...given];
  const rows: string[] = [];
  const targets: string[] = [];
  const sections: string[] = [];
  const row = (measure: string, value: string, baseline: string, ratio: string, target: string, v: string) => rows.push(`| ${measure} | ${value} | ${baseline} | ${ratio} | ${target} | ${v} |`);

  for (const builder of r.builders) {
    const of = (kind: PlatformsKind) => r.builds.filter((b) => b.builder === builder && b.kind === kind).sort((a, b) => a.round - b.round);
    const both = of('both');
    const amd = of('amd64');
    const arm = of('arm64');
    if (!both.length) continue;
    const pair = amd.map((a, i) => a.ms + (arm[i]?.ms ?? NaN));
    const asm = summarize(both.map((b) => b.assemblyMs ?? NaN));
    const put = summarize(r.putIndex.filter((p) => p.builder === builder).map((p) => p.putIndexMs));
    const kids = summarize(r.putIndex.filter((p) => p.builder === builder).map((p) => p.childrenMs));
    row(`Two-platform build (${builder}), s: delivery → finishedAt, amd64 + arm64 in one image vs the two single-platform builds one after the other`, fmt(summarize(both.map((b) => sec(b.ms))), 2), `${fmt(summarize(pair.map(sec)), 2)} (amd64 ${fmt(summarize(amd.map((b) => sec(b.ms))), 2)} + arm64 ${fmt(summarize(arm.map((b) => sec(b.ms))), 2)})`, fmtRatio(ratios(both.map((b) => b.ms), pair)), '', '');
    const asmMet = asm.n ? asm.median <= 300 : undefined;
    row(`Index assembly (${builder}), ms: last "pushed …:_platform-…" → "pushed …:sha-…" in the build log`, fmt(asm, 0), '', '', '≤ 0.3 s', verdict(asmMet));
    row(`putIndex alone (${builder}), ms: the build's two children, from the bench process (indexChildFor of both first: ${fmt(kids, 1)} ms)`, fmt(put, 1), '', '', '', '');
    targets.push(`- index assembly ≤ 0.3 s (${builder}): ${asmMet ? 'met' : 'missed'} — median ${fmt(asm, 0)} ms from the last child's push to the index's first tag; putIndex itself ${fmt(put, 1)} ms.`);

    const lines = [`| round | T_both | T_amd64 | T_arm64 | T_amd64 + T_arm64 | ratio | both: amd64 building → pushed | both: arm64 building → pushed | index assembly, ms (pushing → pushed) | putIndex, ms |`, '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
    for (const b of both) {
      const a = amd.find((x) => x.round === b.round)!;
      const m = arm.find((x) => x.round === b.round)!;
      const span = (p: string) => {
        const e = b.platforms.find((x) => x.platform === p);
        return e?.buildingAt !== undefined && e.pushedAt !== undefined ? `${sec(e.buildingAt).toFixed(2)} → ${sec(e.pushedAt).toFixed(2)}` : '?';
      };
      const puts = r.putIndex.filter((p) => p.builder === builder && p.round === b.round).map((p) => p.putIndexMs.toFixed(1));
      lines.push(`| ${b.round} | ${sec(b.ms).toFixed(2)} | ${sec(a.ms).toFixed(2)} | ${sec(m.ms).toFixed(2)} | ${sec(a.ms + m.ms).toFixed(2)} | ${(b.ms / (a.ms + m.ms)).toFixed(2)}× | ${span('linux/amd64')} | ${span('linux/arm64')} | ${b.assemblyMs ?? '?'} (${b.indexPutMs ?? '?'}) | ${puts.join(' / ')} |`);
    }
    const own = (xs: PlatformBuildRun[]) => fmt(summarize(xs.map((b) => sec(b.ownMs))), 2);
    sections.push(
      `### ${builder} builder\n\nPer round, s from the delivery (the two-platform build first in odd rounds, last in even ones); the "building → pushed" columns are the two-platform build's log lines, s after its delivery:\n\n${lines.join('\n')}\n\nThe builds' own durations (startedAt → finishedAt): both ${own(both)} s, amd64 ${own(amd)} s, arm64 ${own(arm)} s.`,
    );
  }

  const art = r.artifact;
  const runners = [...new Set(art.map((a) => a.runner))];
  for (const runner of runners) {
    const xs = art.filter((a) => a.runner === runner);
    const peak = summarize(xs.map((a) => a.peakHwmKb / 1024));
    const before = summarize(xs.map((a) => a.idleRssKb / 1024));
    const again = summarize(xs.map((a) => a.againMaxRssKb / 1024));
    const flags = [...new Set(xs.map((a) => a.nodeFlags.join(' ') || 'none'))].join('; ');
    const mb = (summarize(xs.map((a) => a.peakHwmKb * 1024)).median / 1e6).toFixed(1);
    if (runner === 'compiled') {
      // The target is about dockhook as it runs: plain node on the compiled JavaScript, with the Dockerfile's flags (an anomaly says when they differ).
      const met = xs.every((a) => a.peakHwmKb <= MB150_KB);
      row(`Peak RSS streaming a ${(r.artifactBytes / 1048576).toFixed(0)} MiB artifact download, MiB (VmHWM; the bench's compiled server, plain node as \`npm start\`, node flags ${flags})`, `${fmt(peak, 1)} (VmRSS before ${fmt(before, 1)})`, '', '', '≤ 150 MB', verdict(met));
      targets.push(`- peak RSS ≤ 150 MB (compiled, every round): ${met ? 'met' : 'missed'} — VmHWM ${fmt(peak, 1)} MiB, ${mb} MB (VmRSS before the download ${fmt(before, 1)} MiB; the same download again in the same process: max VmRSS ${fmt(again, 1)} MiB; dockhook's CPU for the download ${fmt(summarize(xs.map((a) => a.cpuMs)), 0)} ms); 150 MB is 143.1 MiB.`);
    } else {
      row(`For comparison, not a target: the same under tsx (spawnDockhook, the tests' way: src/main.ts, tsx's loader, node flags ${flags}), MiB`, `${fmt(peak, 1)} (VmRSS before ${fmt(before, 1)})`, '', '', '', '');
      notes.push(`The tsx process (test/support/dockhook-process.ts) is how the tests run dockhook, not how it runs: with tsx's loader and V8's defaults (no --node-args) it holds ${fmt(before, 1)} MiB before the download; measured for comparison only (VmHWM ${fmt(peak, 1)} MiB, ${mb} MB).`);
    }
  }
  if (art.length) {
    const lines = ['| process | round | VmRSS before, MiB | VmHWM before, MiB | max VmRSS sampled, MiB | VmHWM after, MiB | samples | MiB | s | MiB/s | dockhook CPU, ms | again: max VmRSS, MiB | digest |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |'];
    for (const a of art) {
      lines.push(`| ${a.runner} | ${a.round} | ${(a.idleRssKb / 1024).toFixed(1)} | ${(a.idleHwmKb / 1024).toFixed(1)} | ${(a.maxRssKb / 1024).toFixed(1)} | ${(a.peakHwmKb / 1024).toFixed(1)} | ${a.samples} | ${(a.bytes / 1048576).toFixed(1)} | ${a.seconds.toFixed(2)} | ${(a.bytes / 1048576 / a.seconds).toFixed(0)} | ${a.cpuMs} | ${(a.againMaxRssKb / 1024).toFixed(1)} | ${a.digestOk ? 'ok' : 'WRONG'} |`);
    }
    const inner = art.filter((a) => a.inner);
    let own = '';
    if (inner.length) {
      const f = (n: number) => n.toFixed(1);
      const il = ['| round | rss | heapTotal | heapUsed | external | arrayBuffers |', '| ---: | ---: | ---: | ---: | ---: | ---: |'];
      for (const a of inner) {
        const { before: b, peaks: p } = a.inner!;
        il.push(`| ${a.round} | ${f(b.rss)} → ${f(p.rss)} | ${f(b.heapTotal)} → ${f(p.heapTotal)} | ${f(b.heapUsed)} → ${f(p.heapUsed)} | ${f(b.external)} → ${f(p.external)} | ${f(b.arrayBuffers)} → ${f(p.arrayBuffers)} |`);
      }
      own = `\n\nThe compiled server's own process.memoryUsage(), MiB: just before the first download → the highest value its 50 ms sampler saw during it. The V8 heap stays flat; what grows is arrayBuffers, the chunks already sent that V8 has not collected yet (a sawtooth that an external-memory GC cuts every few tens of MiB), and RSS with it:\n\n${il.join('\n')}`;
    }
    sections.push(`### Artifact download\n\n${lines.join('\n')}${own}`);
  }

  const header = '| Measure | dockhook | baseline | ratio | target | verdict |\n| --- | ---: | ---: | ---: | --- | --- |';
  const table = `${header}\n${rows.join('\n')}`;
  const e = machine.engine;
  const markdown = `# dockhook benchmark, multi-platform builds and artifact downloads, ${machine.date.slice(0, 10)}

Written by \`npm run bench -- --only platforms\`.

## Machine

- Date: ${machine.date}; dockhook commit ${machine.commit}; run took ${minutes.toFixed(1)} min.
- Machine: ${machine.nproc} cores (\`nproc\`), ${machine.cpu}, ${machine.memGiB.toFixed(1)} GiB, Linux ${machine.kernel}; 1-min load average at start ${machine.loadAtStart.toFixed(2)} (the machine may be shared).
- Node ${machine.node}; Docker engine ${e.serverVersion} (API ${e.apiVersion}${e.storageDriver ? `, ${e.storageDriver}` : ''}); linux/arm64 runs under QEMU (binfmt_misc).
- Registry: distribution's \`docker-registry\` on 127.0.0.1; GitHub: the test suite's fake GitHub (serving real git repositories), each in its own process.

## Results

${table}

## Targets

${targets.join('\n')}

## Details

${sections.join('\n\n')}

${r.anomalies.length ? `Anomalies:\n\n${r.anomalies.map((a) => `- ${a}`).join('\n')}` : 'Every build ran its RUN step (none came from the engine cache) and pushed one child per platform; every download was the registry blob, byte for byte.'}
${notes.length ? `\nNotes:\n\n${notes.map((x) => `- ${x}`).join('\n')}\n` : ''}
## Method

- Figures are medians over rounds with (min–max). A ratio is computed per round from the contenders measured side by side in that round, then summarized the same way.
- Builds: one dockhook per builder (${r.builders.join(', ')}; BUILD_CONCURRENCY=1), three repositories served by the fake GitHub, each a single-object dockerInfo.json and the same Dockerfile: \`ARG DOCKHOOK_REGISTRY\`, \`FROM \${DOCKHOOK_REGISTRY}/busybox:multi\` (a manifest list of the host's busybox for amd64 and Debian's busybox-static for arm64, test/support/busybox-index.ts), \`RUN echo <nonce> > /run.txt && uname -m > /arch\` with a nonce new for every build. \`platforms\` is \`["linux/amd64","linux/arm64"]\` for the two-platform image, \`["linux/amd64"]\` and \`["linux/arm64"]\` for the two single-platform images (each then also an index, of one child). Per round: a merge of each (a new commit changing the nonce and the version), one at a time, the two-platform one first in odd rounds and last in even ones; each from the delivery's POST to the build's finishedAt (GET /api/builds/<id>). Untimed warm-up: one build of each repository. ${r.rounds} rounds.
- Index assembly: from the two-platform build's log (GET /api/builds/<id>/log; every line starts with its ISO time, ms resolution): the last "pushed <repo>:_platform-<sha>-<os>-<arch> <digest>" line (that child pushed by the engine, read back, recorded) to the next "pushed <repo>:sha-<sha> <digest>" (both children read back from the registry, the index built and PUT, the push recorded in the store); in brackets, "pushing <repo>:sha-…" → that line. putIndex alone: after each timed two-platform build, this process reads the two children the build pushed (indexChildFor, by digest) and times putIndex (it reads both back again, then PUTs the index) under a tag of its own, 3 times.
- Memory: a ${(r.artifactBytes / 1048576).toFixed(0)} MiB .tar.gz (one file of random bytes, gzip level 1) pushed with pushArtifact (src/registry/artifact.ts) to the registry's \`bench-artifact\`, recorded with store.recordArtifact on a build marked succeeded in a fresh SQLite store, before a fresh dockhook process starts on that DATA_DIR (the compiled bench server with its worker paused, or spawnDockhook); 1 s after start VmRSS/VmHWM from /proc/<pid>/status (before), then this process reads and hashes the whole GET /api/builds/<id>/artifacts/blob as fast as it arrives (loopback: a client as fast as a LAN; one paced to 40 MB/s peaked as high) while VmRSS is sampled every 20 ms; VmHWM after the download is the peak. The download is that process's first registry request, so the peak includes what a process's first fetch costs once (undici and its WebAssembly HTTP parser). Then the same download again in the same process (\"again\"). The node flags are read from /proc/<pid>/cmdline and checked against the Dockerfile's CMD. ${Math.max(0, ...art.map((a) => a.round))} rounds per kind of process, their order alternating.
`;
  return { table, markdown };
}

/** Writes bench/results/<date>-multi-platform<suffix>.md; returns its path. */
export async function writePlatformsReport(r: PlatformsResults, machine: MachineFacts, notes: string[], minutes: number, suffix: string): Promise<{ path: string; table: string }> {
  const report = renderPlatformsReport(r, machine, notes, minutes);
  const dir = join(REPO_ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${machine.date.slice(0, 10)}-multi-platform${suffix}.md`);
  await writeFile(path, report.markdown);
  return { path, table: report.table };
}
