/**
 * The results file of `npm run bench -- --scale`: one table with each target
 * met or missed, then a section per measurement with what explains it.
 */
import type { MachineFacts } from './report.js';
import type { ClaimResults, ColdResults, IngestScale, PostgresFacts, ThroughputResults } from './scale.js';
import { fmt, fmtRatio, percentile, ratios, summarize } from './stats.js';

export interface ScaleReportInput {
  machine: MachineFacts;
  engine2: string;
  /** The 1-min load average as each part started (and at the end). */
  loads: [string, number][];
  postgres?: PostgresFacts;
  rounds: number;
  seconds: number;
  throughput?: ThroughputResults;
  claim?: ClaimResults;
  ingest?: IngestScale;
  cold?: ColdResults;
  notes: string[];
  minutes: number;
}

const verdict = (met: boolean | undefined) => (met === undefined ? 'n/a' : met ? 'met' : '**missed**');
const s = (ms: number) => ms / 1000;
const med = (xs: number[]) => summarize(xs).median;

export function renderScaleReport(r: ScaleReportInput): { table: string; markdown: string } {
  const rows: string[] = [];
  const targets: string[] = [];
  const sections: string[] = [];
  const row = (measure: string, value: string, baseline: string, ratio: string, target: string, v: string) => rows.push(`| ${measure} | ${value} | ${baseline} | ${ratio} | ${target} | ${v} |`);

  if (r.throughput) {
    const t = r.throughput;
    const one = t.runs.filter((x) => x.workers === 1).sort((a, b) => a.round - b.round);
    const two = t.runs.filter((x) => x.workers === 2).sort((a, b) => a.round - b.round);
    const speedup = ratios(
      one.map((x) => x.wallMs),
      two.map((x) => x.wallMs),
    );
    const met = speedup.n ? speedup.median >= 1.8 : undefined;
    row(
      `Throughput: ${t.builds} builds (\`RUN sleep ${t.sleepSeconds}\`, 20 repositories), BUILD_CONCURRENCY=${t.concurrency} per worker, first created_at → last finished_at, s`,
      `${fmt(summarize(two.map((x) => s(x.wallMs))), 1)} (2 workers, 2 engines)`,
      `${fmt(summarize(one.map((x) => s(x.wallMs))), 1)} (1 worker)`,
      fmtRatio(speedup),
      '≥ 1.8× faster',
      verdict(met),
    );
    targets.push(`- Throughput, 2 workers on 2 engines vs 1: ${verdict(met)} — speed-up ${fmtRatio(speedup)} (1-worker wall ÷ 2-worker wall, per round).`);
    const lines = [
      '| round | workers | wall s (created → finished) | until the last success status s | builds per worker | build s, median (claim → pushed) | queued s, median (max) | status tail s, median (max) |',
      '| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
      ...[...t.runs]
        .sort((a, b) => a.round - b.round || a.workers - b.workers)
        .map(
          (x) =>
            `| ${x.round} | ${x.workers} | ${s(x.wallMs).toFixed(1)} | ${s(x.untilLastStatusMs).toFixed(1)} | ${x.perWorker.join(' + ')} | ${s(med(x.buildMs)).toFixed(2)} | ${s(med(x.queuedMs)).toFixed(1)} (${s(Math.max(...x.queuedMs)).toFixed(1)}) | ${s(med(x.statusTailMs)).toFixed(2)} (${s(Math.max(...x.statusTailMs)).toFixed(2)}) |`,
        ),
    ];
    const buildMed = (w: number) => med(t.runs.filter((x) => x.workers === w).flatMap((x) => x.buildMs));
    const slots = (w: number) => w * t.concurrency;
    const engineBound = (w: number) => Math.ceil(t.builds / slots(w)) * buildMed(w);
    const statusBound = (w: number) => (2 * t.builds * 1000) / w; // two writes per build, one per second per process
    sections.push(`## 1. Build throughput

${lines.join('\n')}

- Build s is started_at → finished_at of each build (claim, GitHub reads, context, engine build, push of 3 tags). Queued s is created_at → started_at. The status tail is finished_at → the build's \`success\` status arriving at the fake GitHub: the worker holds the build's slot (one of BUILD_CONCURRENCY) until that write is done.
- If only the slots limited it: ⌈${t.builds} ÷ slots⌉ × that arm's median build = ${s(engineBound(1)).toFixed(1)} s on 1 worker (${slots(1)} slots × ${s(buildMed(1)).toFixed(2)} s), ${s(engineBound(2)).toFixed(1)} s on 2 (${slots(2)} slots × ${s(buildMed(2)).toFixed(2)} s). Their ratio, the speed-up two engines would give if nothing else limited it: ${(engineBound(1) / engineBound(2)).toFixed(2)}×. A build's time beyond its ${t.sleepSeconds} s of sleep is CPU work (BuildKit, dockerd, the push, dockhook) that ${r.machine.nproc} cores share between all builds running at once.
- If only GitHub writes limited it: every build writes two statuses (pending, success), and @octokit/plugin-throttling spaces a process's writes 1 s apart (its \`write\` group: maxConcurrent 1, minTime 1000 ms), so one worker process completes at most 0.5 builds/s: ${s(statusBound(1)).toFixed(0)} s for ${t.builds} builds on 1 worker, ${s(statusBound(2)).toFixed(0)} s on 2.`);
  }

  if (r.claim) {
    const c = r.claim;
    const p50 = percentile(c.latenciesMs, 50);
    const p99 = percentile(c.latenciesMs, 99);
    const met = c.latenciesMs.length ? p99 <= 100 : undefined;
    row(
      `Claim latency, created_at → started_at (LISTEN/NOTIFY, idle worker), ${c.latenciesMs.length} builds, ms`,
      `p50 ${p50.toFixed(1)}, p99 ${p99.toFixed(1)}`,
      `max ${Math.max(...c.latenciesMs).toFixed(1)}`,
      '',
      'p99 ≤ 100 ms',
      verdict(met),
    );
    targets.push(`- Claim latency p99 ≤ 100 ms: ${verdict(met)} — p50 ${p50.toFixed(1)} ms, p90 ${percentile(c.latenciesMs, 90).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...c.latenciesMs).toFixed(1)} ms over ${c.latenciesMs.length} builds.`);
    const slow = c.latenciesMs.filter((x) => x > 1000).length;
    sections.push(`## 2. Claim latency

| builds | p50 ms | p90 ms | p99 ms | max ms | min ms | over 1 s (a poll, not a NOTIFY) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| ${c.latenciesMs.length} | ${p50.toFixed(1)} | ${percentile(c.latenciesMs, 90).toFixed(1)} | ${p99.toFixed(1)} | ${Math.max(...c.latenciesMs).toFixed(1)} | ${Math.min(...c.latenciesMs).toFixed(1)} | ${slow} |

- One receiver (ROLE=receiver) and one worker (ROLE=worker, BUILD_CONCURRENCY=${c.concurrency}, engine 1) on PostgreSQL; after ${c.warmup} warm-up builds, each build was delivered only once the worker held no build at all (its last status written), so no build waited for a slot. The build: FROM busybox, COPY one small file.
- created_at is set by the INSERT of the enqueue transaction, before its COMMIT (the NOTIFY goes out at the COMMIT); started_at by the worker's claim UPDATE. Both are clock_timestamp() of the database, stored as whole milliseconds (so each figure is ±1 ms). The window holds: the rest of the enqueue transaction and its commit (a WAL flush: synchronous_commit is on), the notification's trip to the worker's LISTEN connection, the worker's claim query.
- Side figures: POST /webhook → 202 as the load generator saw it, median ${med(c.answerMs).toFixed(1)} ms (max ${Math.max(...c.answerMs).toFixed(1)}); one whole cycle (delivery → the worker idle again) median ${s(med(c.cycleMs)).toFixed(2)} s, which is GitHub's write spacing (two statuses per build, 1 s apart), not the build.`);
  }

  if (r.ingest) {
    const ing = r.ingest;
    const names = Object.keys(ing.runs);
    const rps = (n: string) => ing.runs[n]!.map((x) => x.rps);
    const floor = 'floor';
    const lines = [
      '| receiver | req/s | p50 ms | p99 ms | receiver CPU µs/delivery | PostgreSQL CPU µs/delivery | req/s ÷ middleware | req/s ÷ SQLite |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...names.map((n) => {
        const runs = ing.runs[n]!;
        const dbCpu = runs.some((x) => x.serverCpuUsPerRequest !== undefined) ? fmt(summarize(runs.map((x) => x.serverCpuUsPerRequest ?? Number.NaN)), 0) : '–';
        return `| ${ing.labels[n] ?? n} | ${fmt(summarize(rps(n)), 0)} | ${fmt(summarize(runs.map((x) => x.p50)), 2)} | ${fmt(summarize(runs.map((x) => x.p99)), 2)} | ${fmt(summarize(runs.map((x) => x.cpuUsPerRequest)), 0)} | ${dbCpu} | ${n === floor ? '1' : fmtRatio(ratios(rps(n), rps(floor)))} | ${n === 'sqlite' ? '1' : fmtRatio(ratios(rps(n), rps('sqlite')))} |`;
      }),
    ];
    for (const n of ['sqlite', 'postgres']) {
      if (!ing.runs[n]) continue;
      const ratio = ratios(rps(n), rps(floor));
      const p99 = summarize(ing.runs[n]!.map((x) => x.p99));
      row(`Ingest req/s, merged, new SHAs, 32 connections: ${ing.labels[n]}`, fmt(summarize(rps(n)), 0), `${fmt(summarize(rps(floor)), 0)} (middleware)`, fmtRatio(ratio), '≥ 0.9× middleware (the ingest bench\'s target)', verdict(ratio.n ? ratio.median >= 0.9 : undefined));
      row(`Ingest p99 ms @32, merged: ${ing.labels[n]}`, fmt(p99, 2), fmt(summarize(ing.runs[floor]!.map((x) => x.p99)), 2), '', '≤ 25 ms (the ingest bench\'s target)', verdict(p99.n ? p99.median <= 25 : undefined));
      targets.push(`- Ingest ${n} ≥ 0.9× middleware: ${verdict(ratio.n ? ratio.median >= 0.9 : undefined)} — ${fmtRatio(ratio)}; p99 ≤ 25 ms: ${verdict(p99.n ? p99.median <= 25 : undefined)} — ${fmt(p99, 2, 'ms')}.`);
    }
    const pgVsSqlite = ratios(rps('postgres'), rps('sqlite'));
    row('Ingest req/s, PostgreSQL ÷ SQLite', '', '', fmtRatio(pgVsSqlite), '(side by side)', '');
    const durability = Object.entries(ing.durability)
      .map(([n, d]) => `${n}: ${d.accepted} answered 202, ${d.recorded} recorded (${d.recorded >= d.accepted && d.recorded - d.accepted <= d.allowance ? `every 202 recorded; ${d.recorded - d.accepted} more were in flight when a run stopped, at most ${d.allowance}` : '**mismatch**'})`)
      .join('; ');
    sections.push(`## 3. Ingest: SQLite vs PostgreSQL vs the bare middleware

${lines.join('\n')}

- The same load for each: autocannon, 32 connections, ${r.seconds} s per receiver and round, ${r.rounds} rounds (the order rotates by one receiver per round), after a 2 s warm-up each; every request a merged \`pull_request.closed\` (${(ing.payloadBytes / 1024).toFixed(1)} KiB) with a new delivery id and a new merge_commit_sha, re-signed (HMAC-SHA256). Each receiver is a process of its own; PostgreSQL's server and the load generator share the same 2 cores.
- Durability differs, and the rows say which: SQLite runs WAL with synchronous=NORMAL (a commit is not fsynced; a power loss can lose the last commits, a crash of dockhook cannot). "PostgreSQL" is its shipped default, synchronous_commit=on and fsync=on: the 202 goes out after the WAL is flushed to disk. "synchronous_commit=off" (set on that database) is PostgreSQL's equivalent of SQLite's NORMAL.
- PostgreSQL CPU is the postmaster and all its children (dockhook's pooled backends, the WAL writer…) from /proc, per answered delivery.
- Durability check: ${durability}.${ing.unexpected.length ? `\n- Unexpected answers: ${ing.unexpected.join('; ')}` : ''}`);
  }

  if (r.cold) {
    const c = r.cold;
    const withCache = c.runs.filter((x) => x.cache === 'registry').sort((a, b) => a.round - b.round);
    const without = c.runs.filter((x) => x.cache === 'none').sort((a, b) => a.round - b.round);
    const ratio = ratios(
      withCache.map((x) => x.wallMs),
      without.map((x) => x.wallMs),
    );
    const met = ratio.n ? ratio.median <= 0.5 : undefined;
    row(
      'Cold engine: one-line change on the engine that never built the image, created_at → finished_at, s',
      `${fmt(summarize(withCache.map((x) => s(x.wallMs))), 2)} (registry cache)`,
      `${fmt(summarize(without.map((x) => s(x.wallMs))), 2)} (no cache refs)`,
      fmtRatio(ratio),
      '≤ 0.5× without',
      verdict(met),
    );
    targets.push(`- Cold engine with the registry cache ≤ 0.5× without: ${verdict(met)} — ${fmtRatio(ratio)}.`);
    const lines = [
      '| round | cache | created → finished s | claim → pushed s | steps from cache | slow RUN from cache |',
      '| ---: | --- | ---: | ---: | ---: | --- |',
      ...[...c.runs].map((x) => `| ${x.round} | ${x.cache === 'registry' ? 'registry (1.0.0 of the image, from engine 1)' : 'none (1.0.0 pushed under another name)'} | ${s(x.wallMs).toFixed(2)} | ${s(x.buildMs).toFixed(2)} | ${x.cachedSteps} of ${x.totalSteps} | ${x.slowStepCached ? 'yes' : 'no'} |`),
    ];
    sections.push(`## 4. A cold engine, with the registry's layer cache and without

${lines.join('\n')}

- Dockerfile: \`FROM <registry>/scale-base/busybox:1\` (busybox pushed to the bench's registry and pulled onto engine 2 before the rounds: each engine's own \`docker import\`ed busybox has other layers), \`RUN sleep ${c.sleepSeconds} && echo <uuid> > /base\` (a uuid per repository, so neither engine ever had the step), \`COPY v.txt /v.txt\`.
- Engine 1 (worker 1 alone) built and pushed every first version (1.0.0); then worker 1 stopped and worker 2 alone (engine 2) built one warm-up image and then each second version (1.0.1, v.txt changed), one at a time, the order of the two alternating by round. "registry": the image's 1.0.0 and latest are in the registry, so cachefrom names them and BuildKit reads their inline cache. "none": the same Dockerfile's 1.0.0 was pushed under another image name, so chooseCacheRefs finds no tag of this image.
- BuildKit (BUILDER=buildkit) on both engines; the steps from cache are the build log's \`layers from cache: N of M steps\`.`);
  }

  const head = '| Measure | value | baseline | ratio | target | verdict |\n| --- | ---: | ---: | ---: | --- | --- |';
  const table = [head, ...rows].join('\n');
  const m = r.machine;
  const facts = [
    `- Date: ${m.date}; dockhook commit ${m.commit}; the run took ${r.minutes.toFixed(1)} min.`,
    `- Machine: ${m.nproc} cores (\`nproc\`), ${m.cpu}, ${m.memGiB.toFixed(1)} GiB, Linux ${m.kernel}; 1-min load average at start ${m.loadAtStart.toFixed(2)} (the machine may be shared).`,
    `- Node ${m.node}; engine 1: Docker ${m.engine.serverVersion} (API ${m.engine.apiVersion}, ${m.engine.storageDriver}); engine 2: ${r.engine2} (test/support/second-engine.ts: a second dockerd on the same machine, its own data-root and bridge).`,
    r.postgres
      ? `- PostgreSQL ${r.postgres.version} (Debian's package, test/support/postgres.ts, on 127.0.0.1 on the same machine), with the shipped durability: ${Object.entries(r.postgres.settings)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}.`
      : '',
    `- Registry: distribution's \`docker-registry\` on 127.0.0.1; GitHub: the test suite's fake GitHub, each in its own process. Builder: BuildKit.`,
    r.loads.length ? `- 1-min load average when each part started: ${r.loads.map(([p, l]) => `${p} ${l.toFixed(2)}`).join(', ')}. The machine is shared: a load well above what the bench itself makes means other work ran alongside, and the figures include it.` : '',
    `- **Noisy numbers**: everything (PostgreSQL, two dockerds, the registry, the fake GitHub, every dockhook process and the load generator) shares these ${m.nproc} cores. Medians over rounds with (min–max); a ratio is per round, of two arms measured back to back, then summarized the same way.`,
  ]
    .filter(Boolean)
    .join('\n');
  const notes = r.notes.length ? `\n## Notes\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : '';

  const markdown = `# dockhook past one machine: scale benchmark, ${m.date.slice(0, 10)}

Written by \`npm run bench -- --scale\`. A benchmark, not a test: no timing is asserted anywhere.

## Machine

${facts}

## Results

${table}

## Targets

${targets.join('\n')}

${sections.join('\n\n')}
${notes}`;
  return { table, markdown };
}
