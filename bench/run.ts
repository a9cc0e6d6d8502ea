/**
 * `npm run bench`: ingest, pipeline overhead and memory, in that order, on this
 * machine; prints one table and writes it to bench/results/<YYYY-MM-DD>.md.
 *
 *   npm run bench                         everything (about 14 minutes on 2 cores)
 *   npm run bench -- --only ingest,memory one or more of ingest, busy (ingest while two
 *                                         builds run), pipeline, memory, multi (multi-image
 *                                         merges: what the untouched images cost)
 *   npm run bench -- --rounds 3           fewer rounds (every section)
 *   npm run bench -- --quick              1 round, 2 s loads, a 64 MB context: a smoke run
 *   npm run bench -- --profile            ingest only, dockhook under --cpu-prof;
 *                                         writes bench/results/<date>-profile.md
 *   npm run bench -- --keep               keep bench/tmp/run-* (servers' logs, build logs)
 *   npm run bench -- --tsx                run the servers under tsx instead of compiling them
 *   npm run bench -- --dist DIR           use servers already compiled into DIR (by
 *                                         bench/tsconfig.servers.json): A/B a change to src/
 *   npm run bench -- --node-args=--max-semi-space-size=4
 *                                         extra node flags for every dockhook process
 *   npm run bench -- --label NAME         write bench/results/<date>-NAME.md instead
 *   npm run bench -- --only platforms     multi-platform builds (needs QEMU) and a 200 MiB artifact
 *                                         download's peak RSS; writes bench/results/<date>-multi-platform.md
 *   npm run bench -- --scale              past one machine (same as --only scale): PostgreSQL,
 *                                         receivers and workers as processes, two engines;
 *                                         writes bench/results/<date>-scale.md (about 12 minutes)
 *
 * Nothing here asserts a timing: the targets are printed as met or missed.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBusyboxImage } from '../test/support/base-image.js';
import { startRegistry } from '../test/support/registry-server.js';
import { compileServers } from './compile.js';
import { coldCache, dockerCli, engineFacts, removeRegistryImages } from './docker.js';
import { bigContextFiles, createBenchRepo, sampleFiles } from './fixtures.js';
import { busyRepoFiles, load, runIngest, runWhileBuilding, type BusyRound, type IngestRounds, type PayloadKind } from './ingest.js';
import { runMemory, type MemoryRound } from './memory.js';
import { runMulti, type MultiResults } from './multi-image.js';
import { runPlatforms, writePlatformsReport, type PlatformsResults } from './multi-platform.js';
import { runPipeline, type PipelineResults } from './pipeline.js';
import { REPO_ROOT, spawnServer, type ServerProcess } from './process.js';
import { profileMarkdown, readProfile, summarizeProfile } from './profile.js';
import { renderReport, type MachineFacts } from './report.js';
import { renderScaleReport } from './scale-report.js';
import { cleanEngine2, runClaimLatency, runColdEngine, runScaleIngest, runThroughput, withShippedDurability, type ClaimResults, type ColdResults, type IngestScale, type PostgresFacts, type ThroughputResults } from './scale.js';
import { startPostgres, type TestPostgres } from '../test/support/postgres.js';
import { ensureSecondEngine } from '../test/support/second-engine.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    dist: { type: 'string' },
    'node-args': { type: 'string' },
    label: { type: 'string' },
    scale: { type: 'boolean', default: false },
  },
});

const SECRET = 'bench-webhook-secret-7c41';
const TOKEN = 'ghp_benchtoken0123456789';
const quick = args.quick;
const sections = new Set((args.profile ? '' : args.scale ? 'scale' : (args.only ?? 'ingest,busy,pipeline,memory,multi')).split(',').map((s) => s.trim()));
const mainReport = !args.profile && [...sections].some((s) => s !== 'scale' && s !== 'platforms');
const rounds = args.rounds ? Number(args.rounds) : quick ? 1 : 5;
const seconds = args.seconds ? Number(args.seconds) : quick ? 2 : 5;
const CONTEXT_BYTES = quick ? 64 * 1024 * 1024 : 300 * 1024 * 1024;

const started = Date.now();
const say = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const date = new Date().toISOString().slice(0, 10);
const tmpRoot = join(REPO_ROOT, 'bench', 'tmp');
await mkdir(tmpRoot, { recursive: true });
const tmp = await mkdtemp(join(tmpRoot, `run-${date}-`));
const logs = join(tmp, 'logs');
await mkdir(logs);
let logN = 0;
const logPath = (name: string) => join(logs, `${String(++logN).padStart(2, '0')}-${name}.log`);

const cli = await dockerCli(tmp);
const engine = await engineFacts(cli);
const sh = (cmd: string, a: string[]) => {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8', cwd: REPO_ROOT }).trim();
  } catch {
    return '?';
  }
};
const machine: MachineFacts = {
  nproc: Number(sh('nproc', [])),
  cpu: cpus()[0]?.model ?? '?',
  memGiB: totalmem() / 1024 ** 3,
  kernel: release(),
  node: process.version,
  engine,
  commit: `${sh('git', ['rev-parse', '--short', 'HEAD'])}${sh('git', ['status', '--porcelain', '--', 'src']) ? ' (src/ has uncommitted changes)' : ''}`,
  loadAtStart: loadavg()[0]!,
  date: new Date().toISOString(),
};
say(`machine: ${machine.nproc} cores, node ${machine.node}, engine ${engine.serverVersion} (API ${engine.apiVersion}), CLI ${engine.clientVersion}, buildx ${engine.buildx ? 'yes' : 'no'}; load average ${machine.loadAtStart.toFixed(2)}`);

let compiledDir: string | undefined = args.dist ? resolve(args.dist) : undefined;
if (compiledDir) say(`servers from ${compiledDir} (--dist)`);
else if (!args.tsx) {
  const compiled = await compileServers(join(tmp, 'dist'));
  compiledDir = compiled.outDir;
  say(`servers compiled with tsc${compiled.warnings ? ' (with type errors, JavaScript emitted anyway)' : ''}`);
}
await ensureBusyboxImage();
const registry = await startRegistry();
const github = await spawnServer<{ apiUrl: string }>('bench/servers/github.ts', { compiledDir, env: { GITHUB_TOKEN: TOKEN }, logPath: logPath('fake-github') });
say(`registry ${registry.host}, fake GitHub ${github.ready.apiUrl}; scratch in ${tmp}`);

const serve = (repo: { owner: string; name: string; dir: string; branch: string }) => github.call('addRepo', repo);
const profDir = join(tmp, 'prof');
const dockhookNodeArgs = (args['node-args'] ?? '').split(' ').filter(Boolean);

function startDockhook(name: string, dataDir: string, env: Record<string, string> = {}, cpuProfDir?: string): Promise<ServerProcess<{ url: string; pid: number }>> {
  return spawnServer('bench/servers/dockhook.ts', {
    compiledDir,
    logPath: logPath(name),
    nodeArgs: [...dockhookNodeArgs, ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [])],
    env: {
      WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: TOKEN,
      GITHUB_API_URL: github.ready.apiUrl,
      REGISTRY: registry.host,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      BUILDER: 'classic',
      ...env,
    },
  });
}

let ingest: IngestRounds | undefined;
let busy: BusyRound[] | undefined;
let pipeline: PipelineResults | undefined;
let memory: MemoryRound[] | undefined;
let multi: MultiResults | undefined;
let platforms: PlatformsResults | undefined;
let scale: { engine2: string; loads: [string, number][]; postgres?: PostgresFacts; throughput?: ThroughputResults; claim?: ClaimResults; ingest?: IngestScale; cold?: ColdResults } | undefined;
let postgres: TestPostgres | undefined;
let engine2Host: string | undefined;
const scaleNotes: string[] = [];
const notes: string[] = [];
if (args.dist) notes.push(`The servers came from ${compiledDir} (--dist), not from this checkout's src/.`);
if (dockhookNodeArgs.length) notes.push(`dockhook ran with the node flags ${dockhookNodeArgs.join(' ')} (--node-args).`);

try {
  if (args.profile) {
    // Each receiver alone under --cpu-prof, one process per payload: where does a delivery's time go?
    const parts: string[] = [];
    const target = { owner: 'bench', repo: 'ingest' };
    for (const who of ['dockhook', 'floor'] as const) {
      for (const kind of ['ignored', 'merged'] as PayloadKind[]) {
        const dir = join(profDir, `${who}-${kind}`);
        const server =
          who === 'dockhook'
            ? await startDockhook(`dockhook-profile-${kind}`, await mkdtemp(join(tmp, 'profile-data-')), { BENCH_WORKER: 'paused' }, dir)
            : await spawnServer<{ url: string; pid: number }>('bench/servers/octokit-floor.ts', {
                compiledDir,
                env: { WEBHOOK_SECRET: SECRET },
                logPath: logPath(`octokit-floor-profile-${kind}`),
                nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
              });
        let requests = 0;
        try {
          requests += (await load(server.ready.url, kind, SECRET, target, 2)).count;
          for (let round = 1; round <= rounds; round++) {
            const r = await load(server.ready.url, kind, SECRET, target, seconds, 32, server.pid);
            requests += r.count;
            say(`profile ${who} ${kind} round ${round}/${rounds}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms, CPU ${r.cpuUsPerRequest.toFixed(0)} µs/req (under --cpu-prof)`);
          }
        } finally {
          await server.stop();
        }
        // The main thread's profile is the first file (a second one, if any, is a worker thread's).
        const file = (await readdir(dir)).filter((x) => x.endsWith('.cpuprofile')).sort()[0];
        if (!file) continue;
        const summary = summarizeProfile(await readProfile(join(dir, file)), [
          /^\(anonymous\)  src\/http\/webhook\./,
          /^enqueue  src\/queue\/store\./,
          /^prepare  better-sqlite3$/,
          /^verify  @octokit\/webhooks(-methods)?$/,
          /^parsePayload  src\/http\/webhook\./,
          /^decideBuild  src\/intake\./,
          /  pino$/,
          /^(json|send)  express$/,
          /^rawParser  body-parser$/,
          /^octokitWebhooksMiddleware  @octokit\/webhooks$/,
        ]);
        parts.push(profileMarkdown(`${who === 'dockhook' ? 'dockhook' : 'bare @octokit/webhooks middleware'}, ${kind} payload, ${rounds} × ${seconds} s at 32 connections`, summary, requests));
      }
    }
    const path = join(REPO_ROOT, 'bench', 'results', `${date}-profile.md`);
    await mkdir(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(
      path,
      `# CPU profiles under ingest load, ${machine.date}\n\nWritten by \`npm run bench -- --profile\` (dockhook ${machine.commit}${args.dist ? `, servers from ${compiledDir}` : ''}, node ${machine.node}). Each receiver alone, after a 2 s warm-up; self time by area and by function; shares are of the time the process was busy.\n\n${parts.join('\n')}`,
    );
    say(`profile summary written to ${path}`);
  }

  if (sections.has('ingest') && !args.profile) {
    const dockhook = await startDockhook('dockhook-ingest', await mkdtemp(join(tmp, 'ingest-data-')), { BENCH_WORKER: 'paused' });
    const floor = await spawnServer<{ url: string }>('bench/servers/octokit-floor.ts', { compiledDir, env: { WEBHOOK_SECRET: SECRET }, logPath: logPath('octokit-floor') });
    try {
      say(`ingest: dockhook ${dockhook.ready.url} (worker paused), bare middleware ${floor.ready.url}; ${rounds} rounds × ${seconds} s per contender and payload, 32 connections`);
      ingest = await runIngest({ dockhook, floor, secret: SECRET, rounds, seconds, warmupSeconds: quick ? 1 : 2, onProgress: say });
    } finally {
      await Promise.all([dockhook.stop(), floor.stop()]);
    }
  }

  if (sections.has('busy')) {
    const busyRepos = await Promise.all(['busy-a', 'busy-b'].map((name) => createBenchRepo(tmp, 'bench', name, busyRepoFiles(`bench-busy-${name}`, '0.0.0'))));
    for (const r of busyRepos) await serve(r);
    say(`ingest while building: ${quick ? 1 : 3} rounds, each a fresh dockhook with two builds running`);
    busy = await runWhileBuilding({
      startDockhook: (dataDir) => startDockhook('dockhook-busy', dataDir, { BUILD_CONCURRENCY: '2' }),
      repos: [busyRepos[0]!, busyRepos[1]!],
      secret: SECRET,
      rounds: quick ? 1 : 3,
      seconds,
      tmp,
      onProgress: say,
    });
  }

  if (sections.has('pipeline')) {
    const repo = await createBenchRepo(tmp, 'bench', 'sample', sampleFiles('bench-classic', '0.0.0'));
    await serve(repo);
    const [classic, buildkit] = await Promise.all([
      startDockhook('dockhook-pipeline-classic', await mkdtemp(join(tmp, 'pipeline-classic-')), { BUILDER: 'classic' }),
      startDockhook('dockhook-pipeline-buildkit', await mkdtemp(join(tmp, 'pipeline-buildkit-')), { BUILDER: 'buildkit' }),
    ]);
    try {
      say(`pipeline: ${rounds} rounds, each contender cold then warm; sample of ${repo.dir}`);
      pipeline = await runPipeline({ cli, registryHost: registry.host, repo, dockhook: { classic, buildkit }, secret: SECRET, rounds, tmp, onProgress: say });
    } finally {
      await Promise.all([classic.stop(), buildkit.stop()]);
    }
  }

  if (sections.has('memory')) {
    await coldCache(cli, registry.host);
    say(`memory: generating a ${(CONTEXT_BYTES / 1048576).toFixed(0)} MiB repository of incompressible files`);
    const dockerfile = 'FROM busybox:latest\nCOPY Dockerfile /Dockerfile.copy\n';
    const repo = await createBenchRepo(tmp, 'bench', 'big', bigContextFiles(CONTEXT_BYTES, 'bench-memory', '0.0.0', dockerfile));
    await serve(repo);
    memory = await runMemory({
      repo,
      secret: SECRET,
      builders: ['classic', 'buildkit'],
      rounds: quick ? 1 : Math.min(rounds, 3),
      capSeconds: 150,
      tmp,
      startDockhook: (dataDir, builder) => startDockhook(`dockhook-memory-${builder}`, dataDir, { BUILDER: builder, BUILD_CONCURRENCY: '1' }),
      onProgress: say,
    });
  }

  if (sections.has('multi')) {
    const concurrency = 2;
    const dockhook = await startDockhook('dockhook-multi', await mkdtemp(join(tmp, 'multi-data-')), { BUILDER: 'classic', BUILD_CONCURRENCY: String(concurrency) });
    try {
      say(`multi: ${rounds} rounds, each a merge of all 3 images of a monorepo, one of web/ only, and the same web change in a web-only repository`);
      multi = await runMulti({ dockhook, github, serve, secret: SECRET, rounds, tmp, concurrency, onProgress: say });
      for (const a of multi.anomalies) say(`multi: ${a.split('\n')[0]}`);
    } finally {
      await dockhook.stop();
    }
  }

  if (sections.has('platforms')) {
    const env = { WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.ready.apiUrl, REGISTRY: registry.host, LOG_LEVEL: 'info', BUILDER: 'classic' };
    platforms = await runPlatforms({ registry, github, serve, secret: SECRET, rounds: quick ? 1 : Math.min(rounds, 3), builders: ['classic', 'buildkit'], tmp, env, artifactBytes: (quick ? 32 : 200) * 1024 * 1024, artifactRounds: quick ? 1 : Math.min(rounds, 3), onProgress: say, startDockhook: (name, dataDir, e) => startDockhook(name, dataDir, e) });
    for (const a of platforms.anomalies) say(`platforms: ${a}`);
  }

  if (sections.has('scale')) {
    // Past one machine: a second dockerd and a PostgreSQL of the bench's own.
    const engine2 = await ensureSecondEngine();
    engine2Host = engine2.dockerHost;
    const v = (await cli.run(['version', '--format', '{{.Server.Version}} (API {{.Server.APIVersion}}, {{.Server.Os}})'], { DOCKER_HOST: engine2Host })).stdout.trim();
    const d = (await cli.run(['info', '--format', '{{.Driver}}'], { DOCKER_HOST: engine2Host })).stdout.trim();
    scale = { engine2: `Docker ${v.replace(/, linux\)$/, `, ${d})`)}`, loads: [] };
    const load1 = (part: string) => scale!.loads.push([part, loadavg()[0]!]);
    postgres = await startPostgres();
    scale.postgres = await withShippedDurability(postgres);
    say(`scale: engine 2 ${engine2Host} (${scale.engine2}); PostgreSQL ${scale.postgres.version} on port ${postgres.port} (fsync, synchronous_commit, full_page_writes on)`);
    const env = {
      cli,
      engine2Host,
      registryHost: registry.host,
      secret: SECRET,
      tmp,
      postgres,
      github,
      serve,
      start: async (name: string, e: Record<string, string>) => startDockhook(name, await mkdtemp(join(tmp, 'scale-data-')), e),
      startFloor: (name: string) => spawnServer<{ url: string; pid: number }>('bench/servers/octokit-floor.ts', { compiledDir, env: { WEBHOOK_SECRET: SECRET }, logPath: logPath(name) }),
      onProgress: say,
    };
    const tpRounds = quick ? 1 : Math.min(rounds, 3);
    say(`scale 1/4, throughput: ${tpRounds} round(s), 20 builds each on 1 worker and on 2 workers (2 engines), BUILD_CONCURRENCY=2 per worker`);
    load1('throughput');
    scale.throughput = await runThroughput(env, { rounds: tpRounds, builds: 20, sleepSeconds: 2, concurrency: 2 });
    const claimBuilds = quick ? 10 : 100;
    say(`scale 2/4, claim latency: ${claimBuilds} builds one at a time to an idle worker`);
    load1('claim latency');
    scale.claim = await runClaimLatency(env, { builds: claimBuilds, warmup: 3, concurrency: 2 });
    say('scale 3/4, ingest: SQLite, PostgreSQL, PostgreSQL with synchronous_commit=off, the bare middleware');
    load1('ingest');
    scale.ingest = await runScaleIngest(env, { rounds, seconds, warmupSeconds: quick ? 1 : 2 });
    say(`scale 4/4, cold engine: ${rounds} round(s), a one-line change on engine 2 with and without the registry cache`);
    load1('cold engine');
    scale.cold = await runColdEngine(env, { rounds, sleepSeconds: 5 });
    load1('the end');
  }
} catch (err) {
  notes.push(`The run stopped early: ${(err as Error).message}`);
  scaleNotes.push(`The run stopped early: ${(err as Error).message}`);
  process.exitCode = 1;
  say(`FAILED: ${(err as Error).stack ?? String(err)}`);
} finally {
  if (engine2Host) await cleanEngine2({ cli, engine2Host, registryHost: registry.host }).catch(() => undefined);
  await postgres?.destroy().catch(() => undefined);
  await removeRegistryImages(cli, registry.host).catch(() => undefined);
  await cli.run(['builder', 'prune', '-af']).catch(() => undefined);
  await github.stop();
  await registry.close();
}

if (scale) {
  if (args.dist) scaleNotes.push(`The servers came from ${compiledDir} (--dist), not from this checkout's src/.`);
  if (dockhookNodeArgs.length) scaleNotes.push(`dockhook ran with the node flags ${dockhookNodeArgs.join(' ')} (--node-args).`);
  const report = renderScaleReport({ machine, engine2: scale.engine2, loads: scale.loads, postgres: scale.postgres, rounds, seconds, throughput: scale.throughput, claim: scale.claim, ingest: scale.ingest, cold: scale.cold, notes: scaleNotes, minutes: (Date.now() - started) / 60000 });
  process.stdout.write(`\n${report.table}\n`);
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const suffix = args.label ? `-${args.label.replace(/[^a-zA-Z0-9_.-]/g, '-')}` : quick ? '-quick' : '';
  const path = join(resultsDir, `${date}-scale${suffix}.md`);
  await writeFile(path, report.markdown);
  say(`written to ${path}`);
}

if (platforms) {
  const suffix = args.label ? `-${args.label.replace(/[^a-zA-Z0-9_.-]/g, '-')}` : quick ? '-quick' : '';
  const { path, table } = await writePlatformsReport(platforms, machine, notes, (Date.now() - started) / 60000, suffix);
  process.stdout.write(`\n${table}\n`);
  say(`written to ${path}`);
}

if (mainReport) {
  const report = renderReport({ machine, runtime: compiledDir ? 'compiled' : 'tsx', rounds, seconds, contextBytes: CONTEXT_BYTES, ingest, busy, pipeline, memory, multi, notes, minutes: (Date.now() - started) / 60000 });
  process.stdout.write(`\n${report.table}\n`);
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const suffix = args.label ? `-${args.label.replace(/[^a-zA-Z0-9_.-]/g, '-')}` : quick ? '-quick' : '';
  const path = join(resultsDir, `${date}${suffix}.md`);
  await writeFile(path, report.markdown);
  say(`written to ${path}`);
}

if (!args.keep && process.exitCode !== 1) await rm(tmp, { recursive: true, force: true });
else say(`kept ${tmp} (logs in ${logs})`);
