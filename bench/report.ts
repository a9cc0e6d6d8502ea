/**
 * Turns the measurements into the one table `npm run bench` prints and the
 * results file it writes: medians with min–max, ratios of rounds measured side
 * by side, and each target marked met or missed.
 */
import type { EngineFacts } from './docker.js';
import type { BusyRound, IngestRounds, PayloadKind } from './ingest.js';
import type { MemoryRound } from './memory.js';
import type { MergeKind, MergeRun, MultiResults } from './multi-image.js';
import type { PipelineResults } from './pipeline.js';
import { fmt, fmtRatio, ratios, summarize, type Summary } from './stats.js';

export interface MachineFacts {
  nproc: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  node: string;
  engine: EngineFacts;
  commit: string;
  loadAtStart: number;
  date: string;
}

export interface ReportInput {
  machine: MachineFacts;
  /** How the servers ran: compiled with tsc (as `npm start` runs dockhook) or under tsx. */
  runtime: 'compiled' | 'tsx';
  rounds: number;
  seconds: number;
  contextBytes: number;
  ingest?: IngestRounds;
  busy?: BusyRound[];
  pipeline?: PipelineResults;
  memory?: MemoryRound[];
  multi?: MultiResults;
  notes: string[];
  minutes: number;
}

interface Row {
  measure: string;
  dockhook: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: string;
}

interface Verdict {
  target: string;
  met: boolean | undefined;
  detail: string;
}

const verdict = (met: boolean | undefined) => (met === undefined ? 'n/a' : met ? 'met' : '**missed**');
const kb2mib = (kb: number) => kb / 1024;

export function renderReport(r: ReportInput): { table: string; markdown: string } {
  const rows: Row[] = [];
  const verdicts: Verdict[] = [];
  const target = (t: string, met: boolean | undefined, detail: string) => {
    verdicts.push({ target: t, met, detail });
    return verdict(met);
  };

  if (r.ingest) {
    const ing = r.ingest;
    const label: Record<PayloadKind, string> = {
      ignored: `ignored \`pull_request.opened\` (${(ing.payloadBytes.ignored / 1024).toFixed(1)} KiB)`,
      merged: `merged \`pull_request.closed\` (${(ing.payloadBytes.merged / 1024).toFixed(1)} KiB, new sha, durable write)`,
    };
    for (const kind of ['ignored', 'merged'] as PayloadKind[]) {
      const d = ing.runs[kind].dockhook;
      const f = ing.runs[kind].floor;
      const rps = ratios(
        d.map((x) => x.rps),
        f.map((x) => x.rps),
      );
      const want = kind === 'ignored' ? 1.0 : 0.9;
      rows.push({
        measure: `Ingest req/s, ${label[kind]}`,
        dockhook: fmt(summarize(d.map((x) => x.rps)), 0),
        baseline: fmt(summarize(f.map((x) => x.rps)), 0),
        ratio: fmtRatio(rps),
        target: `≥ ${want.toFixed(1)}× middleware`,
        verdict: target(`ingest ${kind} ≥ ${want.toFixed(1)}×`, rps.n ? rps.median >= want : undefined, `median ratio ${fmtRatio(rps)}`),
      });
      const p50 = ratios(
        d.map((x) => x.p50),
        f.map((x) => x.p50),
      );
      rows.push({
        measure: `Ingest p50 ms @32, ${kind}`,
        dockhook: fmt(summarize(d.map((x) => x.p50)), 2),
        baseline: fmt(summarize(f.map((x) => x.p50)), 2),
        ratio: fmtRatio(p50),
        target: '',
        verdict: '',
      });
      rows.push({
        measure: `Receiver CPU µs per delivery, ${kind}`,
        dockhook: fmt(summarize(d.map((x) => x.cpuUsPerRequest)), 0),
        baseline: fmt(summarize(f.map((x) => x.cpuUsPerRequest)), 0),
        ratio: fmtRatio(
          ratios(
            d.map((x) => x.cpuUsPerRequest),
            f.map((x) => x.cpuUsPerRequest),
          ),
        ),
        target: '',
        verdict: '',
      });
      const p99d = summarize(d.map((x) => x.p99));
      rows.push({
        measure: `Ingest p99 ms @32, ${kind}`,
        dockhook: fmt(p99d, 2),
        baseline: fmt(summarize(f.map((x) => x.p99)), 2),
        ratio: fmtRatio(
          ratios(
            d.map((x) => x.p99),
            f.map((x) => x.p99),
          ),
        ),
        target: '≤ 25 ms',
        verdict: target(`p99 ≤ 25 ms (${kind})`, p99d.n ? p99d.median <= 25 : undefined, `median p99 ${fmt(p99d, 2, 'ms')}`),
      });
    }
  }

  if (r.busy && r.busy.length > 0) {
    const busyP99 = summarize(r.busy.map((b) => b.load.p99));
    const busyRps = summarize(r.busy.map((b) => b.load.rps));
    const idleP99 = summarize(r.ingest?.runs.merged.dockhook.map((x) => x.p99) ?? []);
    const idleRps = summarize(r.ingest?.runs.merged.dockhook.map((x) => x.rps) ?? []);
    const all = r.busy.every((b) => b.bothRunning);
    rows.push({
      measure: 'Ingest req/s while 2 builds run, merged',
      dockhook: fmt(busyRps, 0),
      baseline: idleRps.n ? `${fmt(idleRps, 0)} (dockhook idle)` : '',
      ratio: idleRps.n ? `${(busyRps.median / idleRps.median).toFixed(2)}×` : '',
      target: '',
      verdict: '',
    });
    rows.push({
      measure: `Ingest p99 ms @32 while 2 builds run, merged${all ? '' : ' (a build ended early in some round)'}`,
      dockhook: fmt(busyP99, 2),
      baseline: idleP99.n ? `${fmt(idleP99, 2)} (dockhook idle)` : '',
      ratio: idleP99.n ? `${(busyP99.median / idleP99.median).toFixed(2)}×` : '',
      target: '≤ 50 ms',
      verdict: target('p99 while building ≤ 50 ms', busyP99.median <= 50, `median p99 ${fmt(busyP99, 2, 'ms')}`),
    });
  }

  if (r.pipeline) {
    const p = r.pipeline;
    for (const cache of ['cold', 'warm'] as const) {
      const dc = p.ms[cache]['dockhook-classic'];
      const cl = p.ms[cache]['cli-classic'];
      const dk = p.ms[cache]['dockhook-buildkit'];
      const ratioC = ratios(dc, cl);
      rows.push({
        measure: `Pipeline s, ${cache} cache, classic builder (delivery → last digest)`,
        dockhook: fmt(summarize(dc.map((x) => x / 1000)), 2),
        baseline: `${fmt(summarize(cl.map((x) => x / 1000)), 2)} (CLI)`,
        ratio: fmtRatio(ratioC),
        target: '≤ 1.10× CLI',
        verdict: target(`pipeline ${cache} classic ≤ 1.10×`, ratioC.n ? ratioC.median <= 1.1 : undefined, `median ratio ${fmtRatio(ratioC)}`),
      });
      const ratioK = ratios(dk, cl);
      rows.push({
        measure: `Pipeline s, ${cache} cache, BuildKit (vs the CLI's classic build: this CLI has no buildx)`,
        dockhook: fmt(summarize(dk.map((x) => x / 1000)), 2),
        baseline: `${fmt(summarize(cl.map((x) => x / 1000)), 2)} (CLI, classic)`,
        ratio: fmtRatio(ratioK),
        target: '≤ 1.10× CLI',
        verdict: target(`pipeline ${cache} BuildKit ≤ 1.10× (CLI classic)`, ratioK.n ? ratioK.median <= 1.1 : undefined, `median ratio ${fmtRatio(ratioK)}`),
      });
      const kvc = ratios(dk, dc);
      rows.push({
        measure: `BuildKit vs classic in dockhook, ${cache} cache`,
        dockhook: `${fmt(summarize(dk.map((x) => x / 1000)), 2)} vs ${fmt(summarize(dc.map((x) => x / 1000)), 2)}`,
        baseline: '',
        ratio: fmtRatio(kvc),
        target: '(< 1 = BuildKit faster)',
        verdict: kvc.n ? (kvc.median < 1 ? 'BuildKit faster' : 'classic faster') : 'n/a',
      });
    }
  }

  if (r.memory && r.memory.length > 0) {
    for (const builder of ['classic', 'buildkit'] as const) {
      const ms = r.memory.filter((m) => m.builder === builder);
      if (ms.length === 0) continue;
      const peak = summarize(ms.map((m) => kb2mib(m.peakHwmKb)));
      const idle = summarize(ms.map((m) => kb2mib(m.idleHwmKb)));
      const sent = summarize(ms.filter((m) => !m.cut).map((m) => m.contextBytes / 1048576));
      const cut = ms.some((m) => m.cut);
      rows.push({
        measure: `Peak RSS MiB (VmHWM), ${cut ? `${(r.contextBytes / 1048576).toFixed(0)} MiB context, build stopped after ${Math.max(...ms.map((m) => m.seconds)).toFixed(0)} s unfinished` : `${fmt(sent, 0)} MiB context`}, ${builder}`,
        dockhook: cut ? `≥ ${fmt(peak, 1)}` : fmt(peak, 1),
        baseline: `${fmt(idle, 1)} (idle, before the build)`,
        ratio: `${(peak.median / idle.median).toFixed(2)}×`,
        target: '≤ 150 MB',
        verdict: target(`peak RSS ≤ 150 MB (${builder})`, peak.median * 1.048576 <= 150, `median peak ${fmt(peak, 1, 'MiB')} = ${(peak.median * 1.048576).toFixed(1)} MB`),
      });
      rows.push({
        measure: `Memory build wall time s, ${builder}`,
        dockhook: cut ? `> ${fmt(summarize(ms.map((m) => m.seconds)), 0)} (stopped)` : fmt(summarize(ms.map((m) => m.seconds)), 1),
        baseline: '',
        ratio: '',
        target: '',
        verdict: '',
      });
    }
  }

  if (r.multi && r.multi.merges.length > 0) {
    const mm = r.multi;
    const one = ofKind(mm, 'one');
    const alone = ofKind(mm, 'alone');
    const all = ofKind(mm, 'all');
    const sec = (ms: MergeRun[]) => summarize(ms.map((m) => m.ms / 1000));
    const cost = summarize(pairs(one, alone).map(([a, b]) => (a.ms - b.ms) / 1000));
    rows.push({
      measure: 'Multi-image merge touching web/ only, s (delivery → final dockhook/base, /api, /web)',
      dockhook: fmt(sec(one), 2),
      baseline: `${fmt(sec(alone), 2)} (web alone)`,
      ratio: fmtRatio(ratios(one.map((m) => m.ms), alone.map((m) => m.ms))),
      target: '',
      verdict: '',
    });
    rows.push({
      measure: 'What the 2 untouched images cost, s (T_one − T_alone, per round)',
      dockhook: fmt(cost, 2),
      baseline: '',
      ratio: '',
      target: '≤ 0.2 s',
      verdict: target('untouched images ≤ 0.2 s (T_one − T_alone)', cost.n ? cost.median <= 0.2 : undefined, `median difference ${fmt(cost, 2, 's')}`),
    });
    // T_one − T_alone split exactly into three parts per round: web starts later (the merge's own build plans
    // first), web's own build takes longer or shorter (engine, other load), the last final status comes later after it.
    const webOf = (m: MergeRun) => m.images.find((i) => i.service === 'web' || i.service === 'web (alone)')!;
    const split = pairs(one, alone).map(([a, b]) => {
      const [wa, wb] = [webOf(a), webOf(b)];
      return {
        start: wa.startedAt - a.t0 - (wb.startedAt - b.t0),
        build: wa.finishedAt - wa.startedAt - (wb.finishedAt - wb.startedAt),
        status: a.t0 + a.ms - wa.finishedAt - (b.t0 + b.ms - wb.finishedAt),
      };
    });
    const part = (k: 'start' | 'build' | 'status') => fmt(summarize(split.map((x) => x[k] / 1000)), 2);
    rows.push({
      measure: "… per round, split: web starts later (the merge's own build plans) / web's own build (engine, other load) / last final status after web finished (status writes)",
      dockhook: `${part('start')} / ${part('build')} / ${part('status')}`,
      baseline: '',
      ratio: '',
      target: '',
      verdict: '',
    });
    const core = (ms: MergeRun[], k: 'machineMs' | 'dockhookMs') => fmt(summarize(ms.map((m) => m.cpu[k] / 1000)), 2);
    rows.push({
      measure: 'CPU core-s per merge, whole machine (dockhook\'s process): web only vs web alone',
      dockhook: `${core(one, 'machineMs')} (${core(one, 'dockhookMs')})`,
      baseline: `${core(alone, 'machineMs')} (${core(alone, 'dockhookMs')})`,
      ratio: '',
      target: '',
      verdict: '',
    });
    rows.push({
      measure: 'Multi-image merge changing all 3, s (T_all; ratio T_one/T_all)',
      dockhook: fmt(sec(all), 2),
      baseline: `${fmt(sec(one), 2)} (web only)`,
      ratio: fmtRatio(ratios(pairs(one, all).map(([a]) => a.ms), pairs(one, all).map(([, b]) => b.ms))),
      target: '',
      verdict: '',
    });
    for (const service of ['base', 'api']) {
      const reused = one.flatMap((m) => m.images.filter((i) => i.service === service && i.reused));
      rows.push({
        measure: `Unchanged image's own build, ${service}, ms (startedAt → finishedAt: re-tag through the registry API)`,
        dockhook: fmt(summarize(reused.map((i) => i.finishedAt - i.startedAt)), 0),
        baseline: `${fmt(summarize(all.flatMap((m) => m.images.filter((i) => i.service === service)).map((i) => i.finishedAt - i.startedAt)), 0)} (built, in T_all)`,
        ratio: '',
        target: '',
        verdict: '',
      });
    }
    rows.push({
      measure: 'GitHub status writes per merge: web only / web alone / all 3 (serial; ≤ 1 a second on average, bursts of 5)',
      dockhook: `${fmt(summarize(one.map((m) => m.writes.length)), 0)} / ${fmt(summarize(alone.map((m) => m.writes.length)), 0)} / ${fmt(summarize(all.map((m) => m.writes.length)), 0)}`,
      baseline: '',
      ratio: '',
      target: '',
      verdict: '',
    });
    rows.push({
      measure: 'Last final status after its build finished, s: web only / web alone / all 3 (the write limiter on the critical path)',
      dockhook: `${fmt(summarize(one.map(lastLag)), 2)} / ${fmt(summarize(alone.map(lastLag)), 2)} / ${fmt(summarize(all.map(lastLag)), 2)}`,
      baseline: '',
      ratio: '',
      target: '',
      verdict: '',
    });
  }

  let phaseTable = '';
  if (r.pipeline) {
    const lines: string[] = ['| contender, cache | phase | median s (min–max) |', '| --- | --- | ---: |'];
    for (const cache of ['cold', 'warm'] as const) {
      for (const who of ['dockhook-classic', 'cli-classic', 'dockhook-buildkit'] as const) {
        const list = r.pipeline.phases[cache][who];
        if (list.length === 0) continue;
        for (const phase of Object.keys(list[0]!)) {
          lines.push(`| ${who}, ${cache} | ${phase} | ${fmt(summarize(list.map((p) => p[phase]! / 1000)), 2)} |`);
        }
      }
    }
    phaseTable = lines.join('\n');
  }

  const head = '| Measure | dockhook | baseline | ratio | target | verdict |\n| --- | ---: | ---: | ---: | --- | --- |';
  const table = [head, ...rows.map((x) => `| ${x.measure} | ${x.dockhook} | ${x.baseline} | ${x.ratio} | ${x.target} | ${x.verdict} |`)].join('\n');

  const m = r.machine;
  const facts = [
    `- Date: ${m.date}; dockhook commit ${m.commit}; run took ${r.minutes.toFixed(1)} min.`,
    `- Machine: ${m.nproc} cores (\`nproc\`), ${m.cpu}, ${m.memGiB.toFixed(1)} GiB, Linux ${m.kernel}; 1-min load average at start ${m.loadAtStart.toFixed(2)} (the machine may be shared).`,
    `- Node ${m.node}; Docker engine ${m.engine.serverVersion} (API ${m.engine.apiVersion}, ${m.engine.storageDriver}); Docker CLI ${m.engine.clientVersion}, buildx ${m.engine.buildx ? 'present' : 'absent (the CLI can only use the classic builder)'}.`,
    `- Registry: distribution's \`docker-registry\` on 127.0.0.1; GitHub: the test suite's fake GitHub (serving real git repositories), each in its own process.`,
  ].join('\n');

  const method = [
    `- Figures are medians over rounds with (min–max). A ratio is computed per round from the two contenders measured side by side in that round, then summarized the same way.`,
    r.ingest
      ? `- Ingest: autocannon, 32 connections, ${r.seconds} s per contender, payload and round, ${r.rounds} rounds alternating which contender goes first, after a warm-up. Each request carries a new X-GitHub-Delivery; each merged delivery a new merge_commit_sha; each body is signed with HMAC-SHA256 (the SHA-1 header is not sent). Receivers: dockhook's real \`startService\` (LOG_LEVEL=info to a file, worker paused so no build runs) and \`createNodeMiddleware(new Webhooks({ secret }))\` with one \`pull_request\` handler on \`node:http\`; each in its own process, the load generator in a third. Latency is autocannon's per-request time, percentiles over every response of the round. Durability check: dockhook answered 202 to ${r.ingest.accepted} merged deliveries and its store holds ${r.ingest.recorded} queued builds (${r.ingest.recorded >= r.ingest.accepted && r.ingest.recorded - r.ingest.accepted <= r.ingest.inFlightAllowance ? `every 202 is recorded; the ${r.ingest.recorded - r.ingest.accepted} extra were in flight when a load run stopped, at most ${r.ingest.inFlightAllowance}` : '**mismatch**'}).`
      : '',
    r.busy
      ? `- While building: a fresh dockhook (BUILD_CONCURRENCY=2, classic builder) per round, two merges of two repositories (64 MiB of incompressible files each, then a RUN step printing a line every 250 ms for 10 s); once both builds are running, the merged-payload load as above (its merges queue behind the first repository's build, so no third build starts). Both builds were still running at the end of the load in ${r.busy.filter((b) => b.bothRunning).length} of ${r.busy.length} rounds.`
      : '',
    r.pipeline
      ? `- Pipeline: a ~4.5 MB sample (2 MB binary, 2.5 MB text in 120 files; Dockerfile FROM busybox, two COPY, one RUN). dockhook: from the POST of the delivery to the build's \`finished_at\` (all three tags pushed: sha-<7>, the version, latest). CLI: \`docker build\` (DOCKER_BUILDKIT=0) with the same three tags and labels, then three \`docker push\`, on a \`git archive\` checkout of the same commit (the checkout is not timed). Cold: the bench's images removed and \`docker builder prune -af\` before the build; warm: the same files built again right after (a new commit that only bumps dockerInfo.json, which .dockerignore leaves out). Each build is of a fresh commit with a new commit time, so cold builds make new layers. ${r.rounds} rounds, contender order rotating.`
      : '',
    r.memory
      ? `- Memory: ${(r.contextBytes / 1048576).toFixed(0)} MiB of random files committed to a git repository, served as a gzip tarball by the fake GitHub; dockhook (classic and BuildKit, a fresh process per round) streams it into the engine (Dockerfile: FROM busybox, COPY of one small file). VmHWM from /proc/<pid>/status of the dockhook process, sampled every 50 ms and read once the build is over; ${r.runtime === 'compiled' ? 'the servers are compiled with tsc first and run with plain `node`, as `npm start` runs dockhook' : 'the servers ran under `node --import tsx` (--tsx), whose loader adds to the idle figure'}.`
      : '',
    r.multi
      ? `- Multi-image: one dockhook (classic builder, BUILD_CONCURRENCY=${r.multi.concurrency}) building two repositories served by the fake GitHub: a monorepo whose dockerInfo.json lists base (context base/), api (context api/, \`depends_on: ["base"]\`, \`FROM \${DOCKHOOK_REGISTRY}/base:\${BASE_VERSION}\` with BASE_VERSION a build arg of its entry) and web (context web/), and a repository holding web alone (single-object dockerInfo.json with \`context: "web"\`, the same web/ files and Dockerfile). Each context holds its Dockerfile, a text file and 1 MiB of random data; each Dockerfile copies its context, then a RUN step hashes ${r.multi.workMiB} MiB (\`dd if=/dev/zero | sha256sum\`) and writes a nonce that is new every round (the engine keeps its cache between runs). Per round: T_all, a merge changing the text file and the RUN nonce of all three contexts, every version bumped; then T_one (the monorepo's web/web.txt changed and web's version bumped) and T_alone (the same change in the web-only repository), in an order alternating from round to round. Each figure runs from the POST of the delivery to the arrival at the fake GitHub (noted there in ms) of the last final (non-pending) status of the merge's contexts: dockhook/base, dockhook/api, dockhook/web, or \`dockhook\` for web alone. Unchanged builds' durations are startedAt → finishedAt of GET /api/builds/<id> of each image build (listed by the merge's GET /api/builds/<head>). After each merge's last status the bench waits ${(r.multi.gapMs / 1000).toFixed(1)} s (so the write limiter's bucket has refilled) and reads the statuses again, so no merge's writes queue behind the previous one's and stray writes are counted; before each delivery it waits (at most 15 s) for two 250 ms windows in a row with under a quarter of the machine's cores busy (/proc/stat). CPU core-s: /proc/stat's busy time of all cores, and dockhook's process's user + system time (/proc/<pid>/stat), from the delivery to the last final status. Untimed warm-up: both repositories' first builds, and one web-only merge. ${r.multi.rounds} rounds.`
      : '',
  ]
    .filter(Boolean)
    .join('\n');

  const lines = verdicts.map((v) => `- ${v.target}: ${verdict(v.met)} — ${v.detail}.`).join('\n');
  const unexpected = r.ingest?.unexpected.length ? `\nUnexpected answers during the ingest runs:\n\n${r.ingest.unexpected.map((u) => `- ${u}`).join('\n')}\n` : '';
  const bk = r.pipeline?.failures.length ? `\nBuildKit failures (exact engine errors):\n\n${r.pipeline.failures.map((f) => '```\n' + f + '\n```').join('\n')}\n` : '';
  const multi = r.multi && r.multi.merges.length > 0 ? `\n${multiSection(r.multi)}` : '';
  const notes = r.notes.length ? `\nNotes:\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : '';

  const markdown = `# dockhook benchmark, ${m.date.slice(0, 10)}

Written by \`npm run bench\`.

## Machine

${facts}

## Results

${table}

## Targets

${lines}
${unexpected}${bk}${notes}${phaseTable ? `\n## Where the pipeline's time goes\n\n${phaseTable}\n` : ''}${multi}
## Method

${method}
`;
  return { table, markdown };
}

// ---------------------------------------------------------------- multi-image

const ofKind = (m: MultiResults, kind: MergeKind) => m.merges.filter((x) => x.kind === kind);

/** The merges of two kinds measured in the same round, paired. */
function pairs(a: MergeRun[], b: MergeRun[]): [MergeRun, MergeRun][] {
  return a.flatMap((x) => {
    const y = b.find((z) => z.round === x.round);
    return y ? [[x, y] as [MergeRun, MergeRun]] : [];
  });
}

/** The image whose final status arrived last. */
const lastImage = (m: MergeRun) => m.images.reduce((a, b) => (b.finalAt > a.finalAt ? b : a));
/** s between that image's finishedAt and the arrival of its final status. */
const lastLag = (m: MergeRun) => (lastImage(m).finalAt - lastImage(m).finishedAt) / 1000;
const s2 = (ms: number[]) => fmt(summarize(ms.map((x) => x / 1000)), 2);

/**
 * The last final status waited on the client's write spacing when it came
 * more than 0.1 s after its build had finished and about 1 s (0.9–1.2 s) after
 * the write before it.
 */
function spacingBound(m: MergeRun): boolean {
  const last = lastImage(m);
  const upTo = m.writes.filter((w) => w.at <= last.finalAt);
  const prev = upTo.length >= 2 ? upTo[upTo.length - 2]! : undefined;
  const gap = prev ? last.finalAt - prev.at : 0;
  return last.finalAt - last.finishedAt > 100 && gap >= 900 && gap <= 1200;
}

function multiSection(mm: MultiResults): string {
  const kinds: [MergeKind, string][] = [
    ['one', 'web only (T_one)'],
    ['alone', 'web alone (T_alone)'],
    ['all', 'all 3 (T_all)'],
  ];
  const one = ofKind(mm, 'one');
  const alone = ofKind(mm, 'alone');
  const all = ofKind(mm, 'all');
  const out: string[] = ['## Multi-image merges', ''];

  out.push('Per round, s from the delivery to the last final status:', '');
  out.push(
    '| round | T_all | T_one | T_alone | T_one − T_alone | status writes (one / alone / all) | CPU core-s, machine (dockhook) (all / one / alone) | quiet wait s, busy share before (all / one / alone) | load average (all / one / alone) |',
    '| ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |',
  );
  for (let round = 1; round <= mm.rounds; round++) {
    const [a, o, w] = (['all', 'one', 'alone'] as MergeKind[]).map((k) => mm.merges.find((m) => m.kind === k && m.round === round));
    const f = (m?: MergeRun) => (m ? (m.ms / 1000).toFixed(2) : 'n/a');
    out.push(`| ${round} | ${f(a)} | ${f(o)} | ${f(w)} | ${o && w ? ((o.ms - w.ms) / 1000).toFixed(2) : 'n/a'} | ${o?.writes.length ?? '?'} / ${w?.writes.length ?? '?'} / ${a?.writes.length ?? '?'} | ${[a, o, w].map((m) => (m ? `${(m.cpu.machineMs / 1000).toFixed(2)} (${(m.cpu.dockhookMs / 1000).toFixed(2)})` : '?')).join(' / ')} | ${[a, o, w].map((m) => (m ? `${(m.quiet.waitedMs / 1000).toFixed(1)}, ${Math.round(m.quiet.busyShare * 100)} %` : '?')).join(' / ')} | ${[a, o, w].map((m) => m?.load.toFixed(2) ?? '?').join(' / ')} |`);
  }

  out.push('', 'Timeline, s after the delivery (medians over rounds, min–max); "pending" and "final" are the arrivals of its commit statuses at the fake GitHub:', '');
  out.push('| merge | build | started | finished | pending status | final status |', '| --- | --- | ---: | ---: | ---: | ---: |');
  for (const [kind, label] of kinds) {
    const ms = ofKind(mm, kind);
    if (!ms.length) continue;
    if (kind !== 'alone') out.push(`| ${label} | the merge's own build (plans, queues the images) | ${s2(ms.map((m) => m.head.startedAt - m.t0))} | ${s2(ms.map((m) => m.head.finishedAt - m.t0))} | | |`);
    const services = [...new Set(ms.flatMap((m) => m.images.map((i) => i.service)))];
    for (const service of services) {
      const list = ms.flatMap((m) => m.images.filter((i) => i.service === service).map((i) => ({ m, i })));
      const pend = list.map(({ m, i }) => (m.writes.find((w) => w.context === i.context && w.state === 'pending')?.at ?? Number.NaN) - m.t0);
      const reused = list.filter(({ i }) => i.reused).length;
      const how = reused === list.length ? 'unchanged, re-tagged' : reused === 0 ? 'built' : `built ${list.length - reused}×, re-tagged ${reused}×`;
      out.push(
        `| ${label} | ${service} (${how}) | ${s2(list.map(({ m, i }) => i.startedAt - m.t0))} | ${s2(list.map(({ m, i }) => i.finishedAt - m.t0))} | ${pend.some(Number.isFinite) ? s2(pend) : '—'} | ${s2(list.map(({ m, i }) => i.finalAt - m.t0))} |`,
      );
    }
  }

  // web's own path, side by side: where T_one and T_alone differ.
  const phases = (m: MergeRun) => {
    const web = m.images.find((i) => i.service === 'web' || i.service === 'web (alone)')!;
    return {
      'delivery → web build started (the monorepo: the merge\'s own build plans first)': web.startedAt - m.t0,
      'started → "building" (spec, tag check, cache refs, tarball request)': (web.buildingAt ?? Number.NaN) - web.startedAt,
      '"building" → "built" (context → engine build)': (web.builtAt ?? Number.NaN) - (web.buildingAt ?? Number.NaN),
      '  of which the RUN step (its container: the same work in every merge)': web.runStepMs ?? Number.NaN,
      '"built" → finishedAt (push of its tags)': web.finishedAt - (web.builtAt ?? Number.NaN),
      'finishedAt → its final status at GitHub (the status write, after any wait for the write limiter)': web.finalAt - web.finishedAt,
      'web\'s final status → the merge\'s last final status': lastImage(m).finalAt - web.finalAt,
    };
  };
  out.push('', "web's path, s (medians, min–max):", '');
  out.push('| phase | web only (T_one) | web alone (T_alone) | all 3 (T_all) |', '| --- | ---: | ---: | ---: |');
  const keys = Object.keys(phases((one[0] ?? alone[0] ?? all[0])!));
  for (const k of keys) out.push(`| ${k} | ${s2(one.map((m) => phases(m)[k as keyof ReturnType<typeof phases>]))} | ${s2(alone.map((m) => phases(m)[k as keyof ReturnType<typeof phases>]))} | ${s2(all.map((m) => phases(m)[k as keyof ReturnType<typeof phases>]))} |`);

  out.push('', "GitHub writes go through dockhook's write limiter (src/github.ts: serial, a bucket of 5 refilled 1 a second, one per process):", '');
  for (const [kind, label] of kinds) {
    const ms = ofKind(mm, kind);
    if (!ms.length) continue;
    const bound = ms.filter(spacingBound).length;
    const lastDone = summarize(ms.map((m) => (Math.max(...m.images.map((i) => i.finishedAt)) - m.t0) / 1000));
    const order = ms[0]!.writes.map((w) => `${w.context.replace(/^dockhook\/?/, '') || 'dockhook'} ${w.state}`).join(' → ');
    out.push(
      `- ${label}: ${fmt(summarize(ms.map((m) => m.writes.length)), 0)} writes per merge (round ${ms[0]!.round}: ${order}); the last image build finished ${fmt(lastDone, 2, 's')} after the delivery, the last final status arrived ${fmt(summarize(ms.map((m) => m.ms / 1000)), 2, 's')} after it, ${fmt(summarize(ms.map(lastLag)), 2, 's')} after its build finished. The last status waited on the limiter (> 0.1 s after its build finished, 0.9–1.2 s after the write before it) in ${bound} of ${ms.length} rounds${bound ? ': **the limiter is on the critical path**' : ''}.`,
    );
  }

  const slotWait = (ms: MergeRun[]) =>
    ms.flatMap((m) => {
      const base = m.images.find((i) => i.service === 'base');
      const api = m.images.find((i) => i.service === 'api');
      return base && api ? [api.startedAt - base.finishedAt] : [];
    });
  const wait = summarize(slotWait(one).map((x) => x / 1000));
  out.push(
    `- api (depends_on base, unchanged) started ${fmt(wait, 2, 's')} after base's build finished in the web-only merges, ${s2(slotWait(all))} s in T_all` +
      (wait.median > 0.5
        ? `: base's worker slot stayed held until its final status was written (spacing included), and with BUILD_CONCURRENCY=${mm.concurrency} web held the other, so api waited for base's status write.`
        : ': it did not wait for base\'s status write (the slot is given back once the store has the outcome).'),
  );

  out.push('', 'GitHub API requests per merge (medians), by route:', '');
  const routes = [...new Set(mm.merges.flatMap((m) => Object.keys(m.requests)))].sort();
  out.push('| route | web only | web alone | all 3 |', '| --- | ---: | ---: | ---: |');
  for (const route of routes) out.push(`| \`${route}\` | ${fmt(summarize(one.map((m) => m.requests[route] ?? 0)), 0)} | ${fmt(summarize(alone.map((m) => m.requests[route] ?? 0)), 0)} | ${fmt(summarize(all.map((m) => m.requests[route] ?? 0)), 0)} |`);

  const builtImages = mm.merges.flatMap((m) => m.images.filter((i) => !i.reused));
  const warned = builtImages.filter((i) => i.engineWarnings.length);
  if (warned.length) {
    const texts = [...new Set(warned.flatMap((i) => i.engineWarnings))];
    out.push('', `Engine warnings in the build logs: ${warned.length} of ${builtImages.length} built images (${[...new Set(warned.map((i) => i.service))].join(', ')}): ${texts.map((t) => `\`${t}\``).join('; ')}.`);
  }

  out.push('', mm.anomalies.length ? `What dockhook did that it should not have (warm-up included):\n\n${mm.anomalies.map((a) => `- ${a.split('\n')[0]}${a.includes('\n') ? `\n\n\`\`\`\n${a.split('\n').slice(1).join('\n')}\n\`\`\`` : ''}`).join('\n')}` : 'Every merge did what it should (warm-up included): base and api re-tagged as unchanged in each web-only merge, every changed image built, one pending and one final status per built image, one final status per re-tagged image, no status under another context.');
  out.push(
    '',
    mm.serverWarnings.length
      ? `dockhook's log, warn and error lines during the section (warm-up included), ${mm.serverWarnings.length}:\n\n\`\`\`\n${mm.serverWarnings.join('\n')}\n\`\`\``
      : "dockhook's log has no warn or error line from the section.",
  );
  return out.join('\n') + '\n';
}

export type { Summary };
