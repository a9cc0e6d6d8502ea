/**
 * Past one machine (`npm run bench -- --scale`): dockhook on PostgreSQL, its
 * receivers and workers each a process of their own, the workers on two
 * Docker engines (the machine's dockerd and test/support/second-engine.ts's).
 *
 * 1. throughput: a queue of 20 builds of 20 repositories, each mostly a
 *    `RUN sleep 2` (unique per build, so no cache hides it), on 1 worker
 *    (engine 1) and on 2 workers (engines 1 and 2); wall time from the first
 *    build's created_at to the last one's finished_at;
 * 2. claim latency: created_at → started_at of builds delivered one at a
 *    time to a worker with nothing to do (LISTEN/NOTIFY wakes it);
 * 3. ingest of merged deliveries: SQLite, PostgreSQL (ROLE=receiver) and the
 *    bare @octokit/webhooks middleware under the same load (ingest.ts);
 * 4. a cold engine: a one-line change built on engine 2, which never built the
 *    image, with its earlier version in the registry (built on engine 1) and
 *    without any cache refs.
 *
 * Every timestamp of a build is the database's clock (created_at,
 * started_at, finished_at are clock_timestamp() in the statement that sets
 * them). Nothing here asserts a timing.
 */
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import type { TestPostgres } from '../test/support/postgres.js';
import { removeRegistryImages, type DockerCli } from './docker.js';
import { createBenchRepo, dockerInfo, type BenchRepo } from './fixtures.js';
import { runMergedIngest, type MergedContender, type MergedIngestRounds } from './ingest.js';
import type { ServerProcess } from './process.js';
import { percentile } from './stats.js';

type Dockhook = ServerProcess<{ url: string; pid: number }>;

interface Build {
  id: number;
  sha: string;
  state: string;
  failure?: string;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  attempts: number;
}

export interface ScaleEnv {
  cli: DockerCli;
  /** DOCKER_HOST of the second engine. */
  engine2Host: string;
  registryHost: string;
  secret: string;
  tmp: string;
  postgres: TestPostgres;
  github: ServerProcess<{ apiUrl: string }>;
  serve: (repo: BenchRepo) => Promise<unknown>;
  /** A dockhook process (bench/servers/dockhook.ts) with a fresh DATA_DIR and these settings on top of the bench's. */
  start: (name: string, env: Record<string, string>) => Promise<Dockhook>;
  /** The bare @octokit/webhooks middleware (bench/servers/octokit-floor.ts). */
  startFloor: (name: string) => Promise<ServerProcess<{ url: string; pid: number }>>;
  onProgress: (line: string) => void;
}

const BUILDER = 'buildkit';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function deliver(receiver: Dockhook, secret: string, repo: BenchRepo, sha: string, mergedAt?: string): Promise<number> {
  const { body, headers } = await signDelivery(secret, mergedPullRequestPayload({ owner: repo.owner, repo: repo.name, sha, mergedAt }));
  const res = await fetch(`${receiver.ready.url}/webhook`, { method: 'POST', body, headers });
  const answer = (await res.json()) as { build?: number };
  if (res.status !== 202 || answer.build === undefined) throw new Error(`merge of ${repo.name} answered ${res.status} ${JSON.stringify(answer)}`);
  return answer.build;
}

const isFinal = (b: Build | undefined) => b?.state === 'succeeded' || b?.state === 'failed';

/** Polls the store (through any process) until every build is over; a failed one stops the bench with its log. */
async function waitAll(via: Dockhook, ids: number[], timeoutMs: number): Promise<Build[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const builds = await via.call<(Build | undefined)[]>('builds', ids);
    const failed = builds.find((b) => b?.state === 'failed');
    if (failed) throw new Error(`build ${failed.id} failed: ${failed.failure}\n${await via.call<string>('buildLog', failed.id)}`);
    if (builds.every(isFinal)) return builds as Build[];
    if (Date.now() > deadline) throw new Error(`builds not over after ${timeoutMs} ms: ${JSON.stringify(builds.map((b) => [b?.id, b?.state]))}`);
    await sleep(100);
  }
}

/** Until the worker holds no build (its last GitHub status written). */
async function waitIdle(worker: Dockhook, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await worker.call<number>('active')) > 0) {
    if (Date.now() > deadline) throw new Error(`worker still busy after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The builds each worker process started, from its JSON log (`build started`). */
async function startedBy(worker: Dockhook): Promise<Set<number>> {
  const text = await readFile(worker.logPath, 'utf8').catch(() => '');
  const ids = new Set<number>();
  for (const line of text.split('\n')) {
    if (!line.includes('"build started"')) continue;
    try {
      const j = JSON.parse(line) as { msg?: string; build?: number };
      if (j.msg === 'build started' && typeof j.build === 'number') ids.add(j.build);
    } catch {
      // not a log line
    }
  }
  return ids;
}

async function stopAll(procs: Dockhook[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop()));
}

// ------------------------------------------------------------ PostgreSQL

export interface PostgresFacts {
  version: string;
  settings: Record<string, string>;
}

/**
 * test/support/postgres.ts turns fsync, synchronous_commit and
 * full_page_writes off (throwaway test data). The bench measures what a
 * deployment gets: PostgreSQL's shipped defaults, all three on.
 */
export async function withShippedDurability(server: TestPostgres): Promise<PostgresFacts> {
  const names = ['fsync', 'synchronous_commit', 'full_page_writes'];
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    for (const n of names) await client.query(`ALTER SYSTEM SET ${n} = on`);
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end();
  }
  // The reload is asynchronous: ask new sessions until they see it.
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const settings: Record<string, string> = {};
      for (const n of [...names, 'shared_buffers', 'wal_level', 'max_connections']) settings[n] = (await c.query(`SHOW ${n}`)).rows[0][n];
      const version = (await c.query('SHOW server_version')).rows[0].server_version as string;
      if (names.every((n) => settings[n] === 'on')) return { version, settings };
      if (i > 50) throw new Error(`PostgreSQL did not take the durability settings: ${JSON.stringify(settings)}`);
    } finally {
      await c.end();
    }
    await sleep(100);
  }
}

const CLK_TCK = 100;

/** utime + stime (`ms`) and cutime + cstime (`childrenMs`: children that exited and were waited for) of a process. */
async function statOf(pid: string): Promise<{ ppid: number; ms: number; childrenMs: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (i: number, j: number) => ((Number(f[i]) + Number(f[j])) * 1000) / CLK_TCK;
    return { ppid: Number(f[1]), ms: ms(11, 12), childrenMs: ms(13, 14) };
  } catch {
    return undefined;
  }
}

/**
 * CPU ms used so far by the PostgreSQL server behind `url`: the postmaster,
 * every live child (the backends of dockhook's pools among them), and the
 * children that have exited (the postmaster's cutime + cstime), so a backend
 * closing mid-run takes nothing away from the sum.
 */
export async function postgresCpuSampler(url: string): Promise<() => Promise<number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const backend = String((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const postmaster = (await statOf(backend))?.ppid;
  await c.end();
  if (!postmaster) throw new Error('cannot find the PostgreSQL postmaster in /proc');
  return async () => {
    let ms = 0;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const s = pid === String(postmaster) ? await statOf(pid) : undefined;
      if (s) {
        ms += s.ms + s.childrenMs;
        continue;
      }
      const child = await statOf(pid);
      if (child?.ppid === postmaster) ms += child.ms;
    }
    return ms;
  };
}

// ------------------------------------------------------------ 1. throughput

export interface ThroughputRun {
  round: number;
  workers: number;
  /** created_at of the first build → finished_at of the last (database clock). */
  wallMs: number;
  /** The first POST (this process's clock) → the last success status at the fake GitHub: when the last worker slot was free again. */
  untilLastStatusMs: number;
  /** Builds each worker started. */
  perWorker: number[];
  /** Per build: started_at → finished_at (claim to pushed). */
  buildMs: number[];
  /** Per build: created_at → started_at (time in the queue). */
  queuedMs: number[];
  /** Per build: finished_at → its success status at the fake GitHub (the worker's slot is held until then). */
  statusTailMs: number[];
}

export interface ThroughputResults {
  builds: number;
  sleepSeconds: number;
  concurrency: number;
  runs: ThroughputRun[];
}

async function throughputArm(e: ScaleEnv, workers: number, round: number, o: { builds: number; sleepSeconds: number; concurrency: number }): Promise<ThroughputRun> {
  const tag = `r${round}-w${workers}`;
  const repos = await Promise.all(
    range(o.builds).map((i) =>
      createBenchRepo(e.tmp, 'scale', `tp-${tag}-${i}`, {
        // Unique per build: neither engine has this step in its cache, nor has the registry.
        Dockerfile: `FROM busybox:latest\nRUN sleep ${o.sleepSeconds} && echo ${randomUUID()} > /stamp\n`,
        'dockerInfo.json': dockerInfo(`scale-tp-${tag}-${i}`, '1.0.0'),
      }),
    ),
  );
  for (const r of repos) await e.serve(r);
  const shas = await Promise.all(repos.map((r) => r.commit({ 'merge.txt': `${r.name}\n` }, 'merge')));
  const db = await e.postgres.createDatabase();
  const procs: Dockhook[] = [];
  try {
    const receiver = await e.start(`scale-tp-${tag}-receiver`, { ROLE: 'receiver', DATABASE_URL: db, BUILDER });
    procs.push(receiver);
    const ws = await Promise.all(
      range(workers).map((i) =>
        e.start(`scale-tp-${tag}-worker-${i + 1}`, {
          ROLE: 'worker',
          DATABASE_URL: db,
          BUILDER,
          WORKER_NAME: `worker-${i + 1}`,
          BUILD_CONCURRENCY: String(o.concurrency),
          ...(i === 1 ? { DOCKER_HOST: e.engine2Host } : {}),
        }),
      ),
    );
    procs.push(...ws);
    const t0 = Date.now();
    const ids: number[] = [];
    for (const [i, repo] of repos.entries()) ids.push(await deliver(receiver, e.secret, repo, shas[i]!));
    const builds = await waitAll(receiver, ids, 600_000);
    // The success statuses land after finished_at (the worker writes them next; GitHub writes are spaced out).
    const deadline = Date.now() + 120_000;
    let arrivals: { sha: string; state: string; at: number }[] = [];
    for (;;) {
      arrivals = (await e.github.call<typeof arrivals>('statusArrivals')).filter((a) => a.state === 'success');
      if (shas.every((s) => arrivals.some((a) => a.sha === s)) || Date.now() > deadline) break;
      await sleep(100);
    }
    const successAt = (sha: string) => arrivals.find((a) => a.sha === sha)?.at ?? Number.NaN;
    for (const w of ws) await waitIdle(w);
    const started = await Promise.all(ws.map(startedBy));
    const run: ThroughputRun = {
      round,
      workers,
      wallMs: Math.max(...builds.map((b) => b.finishedAt!)) - Math.min(...builds.map((b) => b.createdAt)),
      untilLastStatusMs: Math.max(...shas.map(successAt)) - t0,
      perWorker: started.map((s) => ids.filter((id) => s.has(id)).length),
      buildMs: builds.map((b) => b.finishedAt! - b.startedAt!),
      queuedMs: builds.map((b) => b.startedAt! - b.createdAt),
      statusTailMs: builds.map((b) => successAt(b.sha) - b.finishedAt!),
    };
    e.onProgress(
      `throughput round ${round}, ${workers} worker${workers > 1 ? 's' : ''}: ${(run.wallMs / 1000).toFixed(1)} s for ${o.builds} builds (per worker ${run.perWorker.join('+')}); last status after ${(run.untilLastStatusMs / 1000).toFixed(1)} s`,
    );
    return run;
  } finally {
    await stopAll(procs);
  }
}

export async function runThroughput(e: ScaleEnv, o: { rounds: number; builds: number; sleepSeconds: number; concurrency: number }): Promise<ThroughputResults> {
  const runs: ThroughputRun[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // Which arm goes first alternates, so a drift of the machine's load favours neither.
    for (const workers of round % 2 === 1 ? [1, 2] : [2, 1]) runs.push(await throughputArm(e, workers, round, o));
  }
  return { builds: o.builds, sleepSeconds: o.sleepSeconds, concurrency: o.concurrency, runs };
}

// ------------------------------------------------------------ 2. claim latency

export interface ClaimResults {
  /** created_at → started_at per build, ms (database clock). */
  latenciesMs: number[];
  concurrency: number;
  warmup: number;
  /** The time of each whole cycle (delivery → worker idle again), ms: what paces this measurement. */
  cycleMs: number[];
  /** POST /webhook → 202 as this process saw it, ms. */
  answerMs: number[];
}

/**
 * One receiver and one worker (engine 1). Each build is delivered only when
 * the worker holds no build at all, so nothing waits for a slot; the build is
 * trivial (FROM busybox, COPY one small file).
 */
export async function runClaimLatency(e: ScaleEnv, o: { builds: number; warmup: number; concurrency: number }): Promise<ClaimResults> {
  const repo = await createBenchRepo(e.tmp, 'scale', 'claim', {
    Dockerfile: 'FROM busybox:latest\nCOPY v.txt /v.txt\n',
    'dockerInfo.json': dockerInfo('scale-claim', '1.0.0'),
    'v.txt': 'v0\n',
  });
  await e.serve(repo);
  const db = await e.postgres.createDatabase();
  const procs: Dockhook[] = [];
  const out: ClaimResults = { latenciesMs: [], concurrency: o.concurrency, warmup: o.warmup, cycleMs: [], answerMs: [] };
  try {
    const receiver = await e.start('scale-claim-receiver', { ROLE: 'receiver', DATABASE_URL: db, BUILDER });
    procs.push(receiver);
    const worker = await e.start('scale-claim-worker', { ROLE: 'worker', DATABASE_URL: db, BUILDER, WORKER_NAME: 'worker-1', BUILD_CONCURRENCY: String(o.concurrency) });
    procs.push(worker);
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < o.warmup + o.builds; i++) {
      await waitIdle(worker);
      const sha = await repo.commit({ 'dockerInfo.json': dockerInfo('scale-claim', `1.0.${i + 1}`), 'v.txt': `v${i + 1}\n` });
      const c0 = Date.now();
      const id = await deliver(receiver, e.secret, repo, sha, new Date(t0 + i * 1000).toISOString());
      const answered = Date.now() - c0;
      const { build } = await worker.call<{ build: Build }>('waitBuild', { id, timeoutMs: 120_000 });
      if (build.state !== 'succeeded') throw new Error(`claim build ${id} failed: ${build.failure}`);
      if (i < o.warmup) continue;
      out.latenciesMs.push(build.startedAt! - build.createdAt);
      out.answerMs.push(answered);
      out.cycleMs.push(Date.now() - c0);
      const n = out.latenciesMs.length;
      if (n % 20 === 0 || n === o.builds) {
        e.onProgress(`claim latency: ${n}/${o.builds} builds, p50 ${percentile(out.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(out.latenciesMs, 99).toFixed(1)} ms, max ${Math.max(...out.latenciesMs).toFixed(0)} ms`);
      }
    }
    return out;
  } finally {
    await stopAll(procs);
  }
}

// ------------------------------------------------------------ 3. ingest

export type IngestScale = MergedIngestRounds & { labels: Record<string, string> };

export async function runScaleIngest(e: ScaleEnv, o: { rounds: number; seconds: number; warmupSeconds: number }): Promise<IngestScale> {
  const pgDb = await e.postgres.createDatabase();
  const asyncDb = await e.postgres.createDatabase();
  const admin = new pg.Client({ connectionString: e.postgres.url });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${new URL(asyncDb).pathname.slice(1)} SET synchronous_commit = off`);
  } finally {
    await admin.end();
  }
  const pgCpu = await postgresCpuSampler(e.postgres.url);
  const procs: ServerProcess<{ url: string; pid: number }>[] = [];
  try {
    const [sqlite, postgres, postgresAsync, floor] = await Promise.all([
      e.start('scale-ingest-sqlite', { BENCH_WORKER: 'paused' }),
      e.start('scale-ingest-postgres', { ROLE: 'receiver', DATABASE_URL: pgDb }),
      e.start('scale-ingest-postgres-async', { ROLE: 'receiver', DATABASE_URL: asyncDb }),
      e.startFloor('scale-ingest-octokit-floor'),
    ]);
    procs.push(sqlite, postgres, postgresAsync, floor);
    const contenders: MergedContender[] = [
      { name: 'sqlite', server: sqlite, expect: 202, durable: true },
      { name: 'postgres', server: postgres, expect: 202, durable: true, serverCpuMs: pgCpu },
      { name: 'postgres-async', server: postgresAsync, expect: 202, durable: true, serverCpuMs: pgCpu },
      { name: 'floor', server: floor, expect: 200, durable: false },
    ];
    e.onProgress(`ingest: ${contenders.map((c) => c.name).join(', ')}; ${o.rounds} rounds × ${o.seconds} s each, 32 connections, merged deliveries with new SHAs`);
    const result = await runMergedIngest({ contenders, secret: e.secret, rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds, onProgress: e.onProgress });
    return {
      ...result,
      labels: {
        sqlite: 'dockhook, SQLite (ROLE=all, worker paused)',
        postgres: 'dockhook, PostgreSQL (ROLE=receiver)',
        'postgres-async': 'dockhook, PostgreSQL with synchronous_commit=off',
        floor: 'bare @octokit/webhooks middleware',
      },
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

// ------------------------------------------------------------ 4. cold engine

export interface ColdRun {
  round: number;
  cache: 'registry' | 'none';
  /** created_at → finished_at of the one-line change on engine 2, ms. */
  wallMs: number;
  /** started_at → finished_at. */
  buildMs: number;
  cachedSteps: number;
  totalSteps: number;
  /** Whether the slow RUN step came from the cache. */
  slowStepCached: boolean;
}

export interface ColdResults {
  sleepSeconds: number;
  runs: ColdRun[];
}

/**
 * Per round two repositories with the same Dockerfile shape (FROM the
 * registry's busybox, a slow RUN unique to the repository, COPY v.txt).
 * Engine 1 builds and pushes each one's first version: "registry" under the
 * image's own name, "none" under another name, so the second version's
 * image has nothing in the registry that chooseCacheRefs could pick. Then
 * engine 2, which never built either, builds each one's second version (one
 * line of v.txt changed), one at a time, in an order that alternates.
 */
export async function runColdEngine(e: ScaleEnv, o: { rounds: number; sleepSeconds: number }): Promise<ColdResults> {
  // The base from the registry, as from Docker Hub: both engines then hold the same layers (each engine's own busybox import differs).
  const baseRef = `${e.registryHost}/scale-base/busybox:1`;
  const engine2 = (args: string[]) => e.cli.run(args, { DOCKER_HOST: e.engine2Host });
  await e.cli.run(['tag', 'busybox:latest', baseRef]);
  const procs: Dockhook[] = [];
  try {
    await e.cli.run(['push', '-q', baseRef]);
    await engine2(['pull', '-q', baseRef]);
    const arms = [];
    for (let round = 1; round <= o.rounds; round++) {
      for (const cache of ['registry', 'none'] as const) {
        const image = `scale-cold-r${round}-${cache}`;
        const repo = await createBenchRepo(e.tmp, 'scale', `cold-r${round}-${cache}`, {
          Dockerfile: `FROM ${baseRef}\nRUN sleep ${o.sleepSeconds} && echo ${randomUUID()} > /base\nCOPY v.txt /v.txt\n`,
          'dockerInfo.json': dockerInfo(cache === 'registry' ? image : `${image}-elsewhere`, '1.0.0'),
          'v.txt': 'first version\n',
        });
        await e.serve(repo);
        arms.push({ round, cache, image, repo });
      }
    }
    const warm = await createBenchRepo(e.tmp, 'scale', 'cold-warmup', {
      Dockerfile: `FROM ${baseRef}\nCOPY v.txt /v.txt\n`,
      'dockerInfo.json': dockerInfo('scale-cold-warmup', '1.0.0'),
      'v.txt': `${randomUUID()}\n`,
    });
    await e.serve(warm);

    const db = await e.postgres.createDatabase();
    const receiver = await e.start('scale-cold-receiver', { ROLE: 'receiver', DATABASE_URL: db, BUILDER });
    procs.push(receiver);
    // Engine 1: every first version.
    const worker1 = await e.start('scale-cold-worker-1', { ROLE: 'worker', DATABASE_URL: db, BUILDER, WORKER_NAME: 'worker-1', BUILD_CONCURRENCY: '2' });
    procs.push(worker1);
    const seedIds: number[] = [];
    for (const a of arms) seedIds.push(await deliver(receiver, e.secret, a.repo, await a.repo.commit({ 'merge.txt': '1\n' }), '2026-01-01T00:00:00Z'));
    await waitAll(receiver, seedIds, 600_000);
    await waitIdle(worker1);
    await worker1.stop();
    procs.splice(procs.indexOf(worker1), 1);
    e.onProgress(`cold engine: ${seedIds.length} first versions built and pushed from engine 1`);

    // Engine 2 only from here on.
    const worker2 = await e.start('scale-cold-worker-2', { ROLE: 'worker', DATABASE_URL: db, BUILDER, WORKER_NAME: 'worker-2', BUILD_CONCURRENCY: '2', DOCKER_HOST: e.engine2Host });
    procs.push(worker2);
    const warmId = await deliver(receiver, e.secret, warm, await warm.commit({ 'merge.txt': '1\n' }));
    await worker2.call('waitBuild', { id: warmId, timeoutMs: 120_000 });

    const runs: ColdRun[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? (['registry', 'none'] as const) : (['none', 'registry'] as const);
      for (const cache of order) {
        const a = arms.find((x) => x.round === round && x.cache === cache)!;
        const sha = await a.repo.commit({ 'dockerInfo.json': dockerInfo(a.image, '1.0.1'), 'v.txt': 'one line changed\n' });
        await waitIdle(worker2);
        const id = await deliver(receiver, e.secret, a.repo, sha, '2026-01-02T00:00:00Z');
        const { build } = await worker2.call<{ build: Build }>('waitBuild', { id, timeoutMs: 300_000 });
        const log = await worker2.call<string>('buildLog', id);
        if (build.state !== 'succeeded') throw new Error(`cold build ${id} failed: ${build.failure}\n${log}`);
        const counted = /layers from cache: (\d+) of (\d+) steps/.exec(log);
        const run: ColdRun = {
          round,
          cache,
          wallMs: build.finishedAt! - build.createdAt,
          buildMs: build.finishedAt! - build.startedAt!,
          cachedSteps: counted ? Number(counted[1]) : Number.NaN,
          totalSteps: counted ? Number(counted[2]) : Number.NaN,
          slowStepCached: /cached: .*RUN sleep/.test(log),
        };
        runs.push(run);
        e.onProgress(
          `cold engine round ${round}/${o.rounds}, ${cache === 'registry' ? 'registry cache' : 'no cache refs'}: ${(run.wallMs / 1000).toFixed(2)} s (${run.cachedSteps} of ${run.totalSteps} steps from cache)`,
        );
      }
    }
    await waitIdle(worker2);
    return { sleepSeconds: o.sleepSeconds, runs };
  } finally {
    await stopAll(procs);
    // By name: only the tag goes. (removeRegistryImages removes by image id, and on engine 1 this id is busybox:latest's.)
    await e.cli.run(['rmi', baseRef]).catch(() => undefined);
    await engine2(['rmi', baseRef]).catch(() => undefined);
  }
}

/** Engine 2's images of the bench's registry (the builds' tags), as removeRegistryImages does for engine 1. */
export async function cleanEngine2(e: Pick<ScaleEnv, 'cli' | 'engine2Host' | 'registryHost'>): Promise<void> {
  const cli2: DockerCli = { run: (args, env = {}) => e.cli.run(args, { DOCKER_HOST: e.engine2Host, ...env }) };
  await cli2.run(['rmi', `${e.registryHost}/scale-base/busybox:1`]).catch(() => undefined);
  await removeRegistryImages(cli2, e.registryHost);
}
