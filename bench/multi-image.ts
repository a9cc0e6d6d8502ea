/**
 * Multi-image merges: what the images a merge did not touch cost.
 *
 * A 3-image monorepo (base; api FROM ${DOCKHOOK_REGISTRY}/base, depends_on
 * base; web) and a repository holding web alone (the single-object
 * dockerInfo.json, the same Dockerfile and files under web/), both served by
 * the fake GitHub and built by one dockhook process. Per round:
 *
 * - all:   a merge changing a file in each of base/, api/, web/ (and a new
 *          nonce in each Dockerfile's RUN step), every version bumped;
 * - one:   a merge changing only web/web.txt, web's version bumped (base and
 *          api are not built: their old manifests are re-tagged);
 * - alone: the same change in the web-only repository: the baseline.
 *
 * Each figure is wall time from the delivery's POST to the last final
 * (non-pending) commit status the fake GitHub received for the merge's
 * contexts (dockhook/base, dockhook/api, dockhook/web; `dockhook` alone),
 * using the arrival times the fake notes in ms. Every status write is kept,
 * so the report can say where dockhook's GitHub write limiter (the
 * throttling plugin) sat on the way to the last status.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import { createBenchRepo, dockerInfoImages, imageContextFiles, noise, workDockerfile, type BenchRepo, type ImageEntry } from './fixtures.js';
import { cpuMs, type ServerProcess } from './process.js';

export type MergeKind = 'all' | 'one' | 'alone';

export interface StatusWrite {
  context: string;
  state: string;
  description: string | null;
  /** Arrival at the fake GitHub, ms since the epoch. */
  at: number;
}

/** One image build of a merge (for `alone`, the merge's single build). */
export interface ImageRun {
  service: string;
  /** Its commit status context. */
  context: string;
  id: number;
  state: string;
  /** Its final status says "unchanged since …": re-tagged, not built. */
  reused: boolean;
  description: string;
  /** ms since the epoch, from GET /api/builds/<id> (startedAt, finishedAt). */
  startedAt: number;
  finishedAt: number;
  /** Arrival of its final status. */
  finalAt: number;
  /** From its build log's timestamps, when it was built: the line "building …" and the line "built …". */
  buildingAt?: number;
  builtAt?: number;
  /** The engine's "[Warning] …" lines in its build log (e.g. a build argument no Dockerfile ARG consumed). */
  engineWarnings: string[];
  /** The RUN step's container, from " ---> Running in <id>" to "Removing intermediate container <id>" (classic builder). */
  runStepMs?: number;
}

export interface MergeRun {
  kind: MergeKind;
  round: number;
  sha: string;
  headId: number;
  /** The POST of the delivery. */
  t0: number;
  /** t0 → the last final status. */
  ms: number;
  /** The merge's own build (for a multi-image merge: planning, then it queues the images). */
  head: { startedAt: number; finishedAt: number };
  images: ImageRun[];
  /** Every status write for the merge's commit, in arrival order (read again 1.5 s after the last final one). */
  writes: StatusWrite[];
  /** GitHub API requests during the merge, per route. */
  requests: Record<string, number>;
  /** 1-minute load average of the machine at the delivery (it may be shared). */
  load: number;
  /** How long the bench waited for a quiet machine before the delivery, and the busy share of all cores it saw last (0–1). */
  quiet: { waitedMs: number; busyShare: number };
  /** CPU time (ms, user + system) from the delivery to the last final status: the whole machine's, and dockhook's process's. */
  cpu: { machineMs: number; dockhookMs: number };
}

export interface MultiResults {
  /** The timed merges, in the order they ran. */
  merges: MergeRun[];
  rounds: number;
  /** MiB hashed by each Dockerfile's RUN step. */
  workMiB: number;
  /** Pause after a merge's last status before the next delivery, so no write of one merge waits behind another's. */
  gapMs: number;
  concurrency: number;
  /** Anything dockhook did that it should not have (an unchanged image rebuilt, a duplicate final status…), with log lines. */
  anomalies: string[];
  /** dockhook's own warn and error log lines during the section (warm-up included), each with what the bench knows of its build. */
  serverWarnings: string[];
}

export interface MultiOptions {
  dockhook: ServerProcess<{ url: string }>;
  github: ServerProcess<{ apiUrl: string }>;
  serve: (repo: BenchRepo) => Promise<unknown>;
  secret: string;
  rounds: number;
  tmp: string;
  concurrency: number;
  workMiB?: number;
  onProgress: (line: string) => void;
}

const MULTI_CONTEXTS = ['dockhook/base', 'dockhook/api', 'dockhook/web'];
const ALONE_CONTEXTS = ['dockhook'];
const GAP_MS = 1500;
const UNCHANGED = /^unchanged since [0-9a-f]{7}; tagged sha-[0-9a-f]{7}/;

interface BuildJson {
  id: number;
  state: string;
  service: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  failure: string | null;
  images: { id: number; service: string | null; state: string }[] | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Log lines' timestamps: dockhook's build log stamps each line with an ISO time (24 characters) and a space. */
function runStepMs(log: string): number | undefined {
  const lines = log.split('\n');
  const at = lines.findIndex((l) => /Step \d+\/\d+ : RUN echo /.test(l));
  const running = lines.slice(at + 1).find((l) => / ---> Running in [0-9a-f]+/.test(l));
  const id = running?.match(/Running in ([0-9a-f]+)/)?.[1];
  const removed = id ? lines.find((l) => l.includes(`Removing intermediate container ${id}`)) : undefined;
  return at >= 0 && running && removed ? Date.parse(removed.slice(0, 24)) - Date.parse(running.slice(0, 24)) : undefined;
}

function stampOf(log: string, re: RegExp): number | undefined {
  const line = log.split('\n').find((l) => re.test(l.slice(25)));
  return line ? Date.parse(line.slice(0, 24)) : undefined;
}

/** The lines of a build log that say why an image was (not) built. */
function whyLines(log: string): string {
  return log
    .split('\n')
    .filter((l) => /fingerprint|inputs (un)?changed|reusing|tagged |building |built |no longer in the registry|failed|succeeded/.test(l))
    .slice(0, 12)
    .map((l) => `    ${l}`)
    .join('\n');
}

export async function runMulti(o: MultiOptions): Promise<MultiResults> {
  const workMiB = o.workMiB ?? 200;
  const run = randomUUID().slice(0, 8);
  const data = { base: noise(1024 * 1024), api: noise(1024 * 1024), web: noise(1024 * 1024) };
  const anomalies: string[] = [];
  let counter = 0;
  const nextVersion = (round: number) => `${round}.${++counter}.0`;
  const text = (ctx: string, what: string) => `${ctx} ${what} ${randomUUID()}\n`;
  const dockerfiles = (round: number) => ({
    base: workDockerfile('FROM busybox:latest', '/base', `base-${run}-r${round}`, workMiB),
    api: workDockerfile('ARG DOCKHOOK_REGISTRY\nARG BASE_VERSION\nFROM ${DOCKHOOK_REGISTRY}/base:${BASE_VERSION}', '/api', `api-${run}-r${round}`, workMiB),
    web: workDockerfile('FROM busybox:latest', '/web', `web-${run}-r${round}`, workMiB),
  });
  const v = { base: nextVersion(0), api: nextVersion(0), web: nextVersion(0), alone: nextVersion(0) };
  const monoInfo = () =>
    dockerInfoImages([
      { service_name: 'base', version: v.base, context: 'base' },
      { service_name: 'api', version: v.api, context: 'api', depends_on: ['base'], build_args: { BASE_VERSION: v.base } },
      { service_name: 'web', version: v.web, context: 'web' },
    ] satisfies ImageEntry[]);
  // The web-only repository: the single-object format, context web/ as in the monorepo; its own image name (one registry).
  const aloneInfo = () => JSON.stringify({ service_name: 'web-alone', version: v.alone, context: 'web' }, null, 2) + '\n';

  const d0 = dockerfiles(0);
  const mono = await createBenchRepo(o.tmp, 'bench', 'mono', {
    'dockerInfo.json': monoInfo(),
    'README.md': 'a monorepo of three images\n',
    ...imageContextFiles('base', d0.base, text('base', 'initial'), data.base),
    ...imageContextFiles('api', d0.api, text('api', 'initial'), data.api),
    ...imageContextFiles('web', d0.web, text('web', 'initial'), data.web),
  });
  const alone = await createBenchRepo(o.tmp, 'bench', 'web-alone', {
    'dockerInfo.json': aloneInfo(),
    'README.md': 'web alone\n',
    ...imageContextFiles('web', d0.web, text('web', 'initial'), data.web),
  });
  await o.serve(mono);
  await o.serve(alone);

  let pr = 0;
  const api = async (path: string): Promise<BuildJson> => {
    const res = await fetch(`${o.dockhook.ready.url}${path}`);
    if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as BuildJson;
  };
  const statusesFor = (sha: string) => o.github.call<StatusWrite[]>('statusesFor', sha);
  const tally = () => o.github.call<Record<string, number>>('requestTally');
  const buildLog = (id: number) => o.dockhook.call<string>('buildLog', id);

  async function merge(repo: BenchRepo, sha: string, kind: MergeKind, round: number): Promise<MergeRun> {
    const contexts = kind === 'alone' ? ALONE_CONTEXTS : MULTI_CONTEXTS;
    const before = await tally();
    const { body, headers } = await signDelivery(o.secret, mergedPullRequestPayload({ owner: repo.owner, repo: repo.name, sha, number: ++pr }));
    const quiet = await waitQuiet();
    const load = loadavg()[0]!;
    const [machine0, dockhook0] = [(await machineCpu()).busyMs, await cpuMs(o.dockhook.pid)];
    const t0 = Date.now();
    const res = await fetch(`${o.dockhook.ready.url}/webhook`, { method: 'POST', body, headers });
    const answer = (await res.json()) as { build?: number };
    if (res.status !== 202 || answer.build === undefined) throw new Error(`delivery answered ${res.status}: ${JSON.stringify(answer)}`);
    const headId = answer.build;

    const finalOf = (writes: StatusWrite[], context: string) => writes.filter((w) => w.context === context && w.state !== 'pending').at(-1);
    const deadline = Date.now() + 300_000;
    let writes: StatusWrite[] = [];
    for (;;) {
      writes = await statusesFor(sha);
      if (contexts.every((c) => finalOf(writes, c))) break;
      if (Date.now() > deadline) {
        const head = await api(`/api/builds/${headId}`).catch(() => undefined);
        throw new Error(`${kind} merge ${sha.slice(0, 7)}: no final status for ${contexts.filter((c) => !finalOf(writes, c)).join(', ')} after 300 s; statuses ${JSON.stringify(writes)}; head ${JSON.stringify(head)}`);
      }
      await sleep(20);
    }
    const ms = Math.max(...contexts.map((c) => finalOf(writes, c)!.at)) - t0;
    const cpu = { machineMs: (await machineCpu()).busyMs - machine0, dockhookMs: (await cpuMs(o.dockhook.pid)) - dockhook0 };

    // Nothing more should come: read everything again once the write spacing has passed.
    await sleep(GAP_MS);
    writes = await statusesFor(sha);
    const after = await tally();
    const requests: Record<string, number> = {};
    for (const [route, n] of Object.entries(after)) if (n - (before[route] ?? 0) > 0) requests[route] = n - (before[route] ?? 0);

    const head = await api(`/api/builds/${headId}`);
    const ids = kind === 'alone' ? [headId] : (head.images ?? []).map((i) => i.id);
    if (kind !== 'alone' && ids.length !== 3) throw new Error(`${kind} merge ${sha.slice(0, 7)}: GET /api/builds/${headId} lists ${ids.length} images: ${JSON.stringify(head.images)}`);
    const images: ImageRun[] = [];
    for (const id of ids) {
      const b = id === headId ? head : await api(`/api/builds/${id}`);
      const context = kind === 'alone' ? 'dockhook' : `dockhook/${b.service}`;
      const final = finalOf(writes, context)!;
      const log = await buildLog(id);
      const reused = UNCHANGED.test(final.description ?? '');
      if (b.state !== 'succeeded' || final.state !== 'success') {
        throw new Error(`${kind} merge ${sha.slice(0, 7)}: ${b.service ?? 'web-alone'} (build #${id}) ${b.state}, status ${final.state}: ${b.failure ?? final.description}\n${log.split('\n').slice(-30).join('\n')}`);
      }
      images.push({
        service: kind === 'alone' ? 'web (alone)' : b.service!,
        context,
        id,
        state: b.state,
        reused,
        description: final.description ?? '',
        startedAt: Date.parse(b.startedAt!),
        finishedAt: Date.parse(b.finishedAt!),
        finalAt: final.at,
        buildingAt: stampOf(log, /^building /),
        builtAt: stampOf(log, /^built /),
        runStepMs: runStepMs(log),
        engineWarnings: log.split('\n').filter((l) => /^\S+ \[Warning\]/.test(l)).map((l) => l.slice(25)),
      });
      const shouldReuse = kind === 'one' && (b.service === 'base' || b.service === 'api');
      if (reused !== shouldReuse) {
        anomalies.push(
          `${kind} merge ${sha.slice(0, 7)} (round ${round}): ${b.service ?? 'web-alone'} (build #${id}) was ${reused ? 're-tagged as unchanged' : 'built'}, expected ${shouldReuse ? 'unchanged (only web/ changed)' : 'a build (its context changed)'}; its status: "${final.description}"\n${whyLines(log)}\n  the merge's plan (build #${headId}):\n${whyLines(await buildLog(headId))}`,
        );
      }
      // A built image must have run its RUN step: the engine's cache answering it would hide the build.
      if (!reused) {
        const lines = log.split('\n');
        const at = lines.findIndex((l) => /RUN echo /.test(l));
        const next = lines.slice(at + 1).find((l) => /--->|CACHED|DONE/.test(l));
        if (at < 0 || /Using cache|CACHED/.test(next ?? '')) anomalies.push(`${kind} merge ${sha.slice(0, 7)} (round ${round}): ${b.service ?? 'web-alone'} (build #${id}) was built but its RUN step ${at < 0 ? 'is not in its log' : 'came from the engine cache'}:\n${lines.slice(Math.max(at, 0), at + 3).map((l) => `    ${l}`).join('\n')}`);
      }
      const mine = writes.filter((w) => w.context === context);
      const finals = mine.filter((w) => w.state !== 'pending');
      const expected = reused ? ['success'] : ['pending', 'success'];
      if (mine.map((w) => w.state).join(',') !== expected.join(',')) {
        anomalies.push(`${kind} merge ${sha.slice(0, 7)} (round ${round}): ${context} got the statuses ${mine.map((w) => `${w.state} "${w.description}"`).join(', ')}; expected ${expected.join(', ')}${finals.length > 1 ? ' (more than one final status)' : ''}`);
      }
    }
    const stray = writes.filter((w) => !contexts.includes(w.context));
    if (stray.length) anomalies.push(`${kind} merge ${sha.slice(0, 7)} (round ${round}): statuses under other contexts: ${stray.map((w) => `${w.context} ${w.state} "${w.description}"`).join(', ')}`);
    return {
      kind,
      round,
      sha,
      headId,
      t0,
      ms,
      head: { startedAt: Date.parse(head.startedAt!), finishedAt: Date.parse(head.finishedAt!) },
      images,
      writes,
      requests,
      load,
      quiet,
      cpu,
    };
  }

  const ran: MergeRun[] = [];
  const kept = async (m: Promise<MergeRun>) => {
    const x = await m;
    ran.push(x);
    return x;
  };
  const say = (m: MergeRun) => {
    const parts = m.images.map((i) => `${i.service} ${i.reused ? 'unchanged' : 'built'} ${((i.finishedAt - i.startedAt) / 1000).toFixed(2)} s`);
    o.onProgress(`multi round ${m.round}/${o.rounds} ${m.kind.padEnd(5)} ${(m.ms / 1000).toFixed(2)} s  [${parts.join(', ')}; ${m.writes.length} status writes]`);
  };

  // Changes. all: every context (a file and a new RUN nonce), every version; one/alone: web/web.txt and web's version.
  const changeAll = (round: number) => {
    const d = dockerfiles(round);
    v.base = nextVersion(round);
    v.api = nextVersion(round);
    v.web = nextVersion(round);
    return mono.commit(
      {
        ...imageContextFiles('base', d.base, text('base', `r${round} all`), data.base),
        ...imageContextFiles('api', d.api, text('api', `r${round} all`), data.api),
        ...imageContextFiles('web', d.web, text('web', `r${round} all`), data.web),
        'dockerInfo.json': monoInfo(),
      },
      `round ${round}: base, api and web`,
    );
  };
  const changeWeb = (round: number) => {
    v.web = nextVersion(round);
    return mono.commit({ 'web/web.txt': text('web', `r${round} one`), 'dockerInfo.json': monoInfo() }, `round ${round}: web only`);
  };
  // The same change in the web-only repository, whose Dockerfile follows the monorepo's web/Dockerfile of this round.
  const changeAlone = (round: number) => {
    v.alone = nextVersion(round);
    return alone.commit({ 'web/Dockerfile': dockerfiles(round).web, 'web/web.txt': text('web', `r${round} alone`), 'dockerInfo.json': aloneInfo() }, `round ${round}: web`);
  };

  // Untimed warm-up: every image built once, and each path (build, re-tag, the single image) taken once.
  const headOf = (repo: BenchRepo) => execFileSync('git', ['-C', repo.dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  await kept(merge(mono, headOf(mono), 'all', 0));
  await kept(merge(mono, await changeWeb(0), 'one', 0));
  await kept(merge(alone, headOf(alone), 'alone', 0));
  await kept(merge(alone, await changeAlone(0), 'alone', 0));
  o.onProgress('multi: warm-up merges done (all three built, web alone, base and api re-tagged once)');
  const warmAnomalies = anomalies.length;
  if (warmAnomalies) o.onProgress(`multi: ${warmAnomalies} anomalies during the warm-up (in the report)`);

  const merges: MergeRun[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    const all = await kept(merge(mono, await changeAll(round), 'all', round));
    merges.push(all);
    say(all);
    // one and alone side by side, their order alternating from round to round.
    const order: MergeKind[] = round % 2 === 1 ? ['one', 'alone'] : ['alone', 'one'];
    for (const kind of order) {
      const m = await kept(kind === 'one' ? merge(mono, await changeWeb(round), 'one', round) : merge(alone, await changeAlone(round), 'alone', round));
      merges.push(m);
      say(m);
    }
  }
  return { merges, rounds: o.rounds, workMiB, gapMs: GAP_MS, concurrency: o.concurrency, anomalies, serverWarnings: await serverWarnings(o.dockhook.logPath, ran) };
}

const CLK_TCK = Number(process.env.BENCH_CLK_TCK ?? 100);

/** The machine's CPU time so far from /proc/stat (all cores): busy (user, nice, system, irq, softirq, steal) and in all. */
async function machineCpu(): Promise<{ busyMs: number; totalMs: number }> {
  const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyMs: (busy * 1000) / CLK_TCK, totalMs: ((busy + idle + iowait) * 1000) / CLK_TCK };
}

/**
 * Before a timed delivery: waits (at most 15 s) until two 250 ms windows in a row
 * see under a quarter of the machine's cores busy, so what the previous merge
 * left running (the engine committing layers) or another user of a shared
 * machine weighs less on the next figure.
 */
async function waitQuiet(maxMs = 15_000): Promise<{ waitedMs: number; busyShare: number }> {
  const start = Date.now();
  let calm = 0;
  let share = 1;
  for (;;) {
    const a = await machineCpu();
    await sleep(250);
    const b = await machineCpu();
    share = (b.busyMs - a.busyMs) / Math.max(b.totalMs - a.totalMs, 1);
    calm = share < 0.25 ? calm + 1 : 0;
    if (calm >= 2 || Date.now() - start > maxMs) return { waitedMs: Date.now() - start, busyShare: share };
  }
}

const iso = (ms: number) => new Date(ms).toISOString().slice(11, 23);

/** dockhook's warn/error lines (pino JSON), each followed by what the bench saw of the build it names. */
async function serverWarnings(logPath: string, merges: MergeRun[]): Promise<string[]> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let entry: { level?: string | number; time?: string; build?: number; msg?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const level = entry.level;
    if (!(level === 'warn' || level === 'error' || level === 'fatal' || (typeof level === 'number' && level >= 40))) continue;
    let seen = '';
    const image = merges.flatMap((m) => m.images.map((i) => ({ m, i }))).find(({ i }) => i.id === entry.build);
    if (image && entry.time) {
      const at = Date.parse(entry.time);
      const { m, i } = image;
      const state = at > i.finishedAt && at < i.finalAt ? `: it had succeeded at ${iso(i.finishedAt)} and its final status was still waiting to be written (it landed at ${iso(i.finalAt)})` : '';
      seen = `  [bench: build #${i.id} is ${i.service} of the ${m.kind} merge ${m.sha.slice(0, 7)} (round ${m.round}), ${i.state}, "${i.description}"${state}]`;
    }
    out.push(`${line.length > 600 ? `${line.slice(0, 600)}…` : line}${seen ? `\n${seen}` : ''}`);
  }
  return out;
}
