/**
 * Pipeline overhead: wall time from the delivery to the last pushed digest for
 * a sample repository, dockhook (classic builder and BuildKit) against
 * `docker build` + `docker push` of the same files through the CLI, with a
 * cold and with a warm layer cache.
 *
 * Every build is of a fresh commit (a new version in dockerInfo.json, a new
 * commit time, so new file mtimes): a cold round really builds and uploads new
 * layers. Each contender pushes the same three tags (sha-<7>, the version,
 * latest) to its own repository of the same registry.
 */
import { rm } from 'node:fs/promises';
import { mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import { cliBuildAndPush, coldCache, type DockerCli } from './docker.js';
import { checkout, dockerInfo, type BenchRepo } from './fixtures.js';
import type { ServerProcess } from './process.js';

export type PipelineContender = 'dockhook-classic' | 'dockhook-buildkit' | 'cli-classic';
export type Cache = 'cold' | 'warm';

export interface PipelineOptions {
  cli: DockerCli;
  registryHost: string;
  repo: BenchRepo;
  dockhook: Record<'classic' | 'buildkit', ServerProcess<{ url: string }>>;
  secret: string;
  rounds: number;
  tmp: string;
  onProgress: (line: string) => void;
}

/** Where the time went: dockhook's from its build log's timestamps, the CLI's from its two commands. */
export type Phases = Record<string, number>;

export interface PipelineResults {
  /** [cache][contender] → wall ms per round. */
  ms: Record<Cache, Record<PipelineContender, number[]>>;
  /** [cache][contender] → phases (ms) per round. */
  phases: Record<Cache, Record<PipelineContender, Phases[]>>;
  /** BuildKit failures, with the engine's exact words, if any. */
  failures: string[];
}

const CONTENDERS: PipelineContender[] = ['dockhook-classic', 'cli-classic', 'dockhook-buildkit'];

let versionCounter = 0;

const stamp = (log: string, re: RegExp, last = false): number => {
  const lines = log.split('\n').filter((l) => re.test(l.slice(25)));
  const line = last ? lines[lines.length - 1] : lines[0];
  return line ? Date.parse(line.slice(0, 24)) : Number.NaN;
};

/** Splits a build's wall time using the timestamps of its log lines. */
function dockhookPhases(log: string, t0: number, finishedAt: number): Phases {
  const started = stamp(log, /^dockhook build #/);
  const building = stamp(log, /^building /);
  const built = stamp(log, /^built /);
  return {
    'delivery → build started (202, queue, pending status)': started - t0,
    'spec, tag check, .dockerignore, tarball request (GitHub + registry calls)': building - started,
    'tarball body → context → engine build': built - building,
    'push of 3 tags': finishedAt - built,
  };
}

async function viaDockhook(o: PipelineOptions, builder: 'classic' | 'buildkit', round: number, cache: Cache): Promise<{ ms: number; phases: Phases }> {
  const service = `bench-${builder}`;
  const version = `${round}.${cache === 'cold' ? 0 : 1}.${versionCounter++}`;
  const sha = await o.repo.commit({ 'dockerInfo.json': dockerInfo(service, version) });
  const { body, headers } = await signDelivery(o.secret, mergedPullRequestPayload({ owner: o.repo.owner, repo: o.repo.name, sha }));
  const server = o.dockhook[builder];
  const t0 = Date.now();
  const res = await fetch(`${server.ready.url}/webhook`, { method: 'POST', body, headers });
  const answer = (await res.json()) as { build?: number };
  if (res.status !== 202 || answer.build === undefined) throw new Error(`delivery answered ${res.status}: ${JSON.stringify(answer)}`);
  const { build, log } = await server.call<{ build: { state: string; finishedAt: number; pushed: { digest: string }[]; failure?: string }; log?: string }>('waitBuild', {
    id: answer.build,
    timeoutMs: 300_000,
  });
  if (build.state !== 'succeeded') throw new Error(`dockhook (${builder}) build failed: ${build.failure}\n${log ?? ''}`);
  if (build.pushed.length !== 3 || !build.pushed.every((p) => p.digest.startsWith('sha256:'))) throw new Error(`expected 3 pushed digests, got ${JSON.stringify(build.pushed)}`);
  const text = await server.call<string>('buildLog', answer.build);
  return { ms: build.finishedAt - t0, phases: dockhookPhases(text, t0, build.finishedAt) };
}

async function viaCli(o: PipelineOptions, round: number, cache: Cache): Promise<{ ms: number; phases: Phases }> {
  const version = `${round}.${cache === 'cold' ? 0 : 1}.${versionCounter++}`;
  const sha = await o.repo.commit({ 'dockerInfo.json': dockerInfo('bench-cli', version) });
  const dir = await checkout(o.repo, sha, o.tmp);
  try {
    const repository = `${o.registryHost}/bench-cli`;
    const refs = [`${repository}:sha-${sha.slice(0, 7)}`, `${repository}:${version}`, `${repository}:latest`];
    const labels = {
      'org.opencontainers.image.revision': sha,
      'org.opencontainers.image.source': `https://github.com/${o.repo.owner}/${o.repo.name}`,
      'org.opencontainers.image.version': version,
      'org.opencontainers.image.created': new Date().toISOString(),
      'org.opencontainers.image.title': 'bench-cli',
    };
    const t0 = Date.now();
    const { buildMs } = await cliBuildAndPush(o.cli, dir, refs, labels);
    const ms = Date.now() - t0;
    return { ms, phases: { 'docker build': buildMs, 'docker push × 3': ms - buildMs } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Per round and contender: a cold build (cache reset just before), then a warm
 * one (the same files again, a new commit; the cold build left its layers
 * cached and pushed). The contenders' order rotates from round to round.
 */
export async function runPipeline(o: PipelineOptions): Promise<PipelineResults> {
  const ms = {
    cold: { 'dockhook-classic': [], 'dockhook-buildkit': [], 'cli-classic': [] },
    warm: { 'dockhook-classic': [], 'dockhook-buildkit': [], 'cli-classic': [] },
  } as PipelineResults['ms'];
  const phases = {
    cold: { 'dockhook-classic': [], 'dockhook-buildkit': [], 'cli-classic': [] },
    warm: { 'dockhook-classic': [], 'dockhook-buildkit': [], 'cli-classic': [] },
  } as PipelineResults['phases'];
  const failures: string[] = [];
  let buildkitBroken = false;

  const one = async (who: PipelineContender, round: number, cache: Cache): Promise<void> => {
    if (who === 'dockhook-buildkit' && buildkitBroken) return;
    if (cache === 'cold') await coldCache(o.cli, o.registryHost);
    let took: { ms: number; phases: Phases };
    try {
      took = who === 'cli-classic' ? await viaCli(o, round, cache) : await viaDockhook(o, who === 'dockhook-classic' ? 'classic' : 'buildkit', round, cache);
    } catch (err) {
      if (who !== 'dockhook-buildkit') throw err;
      buildkitBroken = true;
      failures.push((err as Error).message);
      o.onProgress(`pipeline: BuildKit build failed, not measured further: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    ms[cache][who].push(took.ms);
    phases[cache][who].push(took.phases);
    const detail = Object.entries(took.phases)
      .map(([k, v]) => `${k.split(' (')[0]} ${(v / 1000).toFixed(2)}`)
      .join(', ');
    o.onProgress(`pipeline round ${round}/${o.rounds} ${cache} ${who.padEnd(17)} ${(took.ms / 1000).toFixed(2)} s  [${detail}]`);
  };

  // One untimed build each first: the first build after start-up pays for lazy loading and first connections.
  for (const who of CONTENDERS) {
    if (who === 'cli-classic') await viaCli(o, 0, 'warm');
    else await viaDockhook(o, who === 'dockhook-classic' ? 'classic' : 'buildkit', 0, 'warm').catch(() => undefined);
  }
  o.onProgress('pipeline: warm-up builds done');
  for (let round = 1; round <= o.rounds; round++) {
    const shift = (round - 1) % CONTENDERS.length;
    const order = [...CONTENDERS.slice(shift), ...CONTENDERS.slice(0, shift)];
    for (const who of order) {
      await one(who, round, 'cold');
      await one(who, round, 'warm');
    }
  }
  return { ms, phases, failures };
}
