/**
 * Turns the measurements into the one table `npm run bench` prints and the
 * results file it writes: medians with min–max, ratios of rounds measured side
 * by side, and each target marked met or missed.
 */
import type { EngineFacts } from './docker.js';
import type { BusyRound, IngestRounds, PayloadKind } from './ingest.js';
import type { MemoryRound } from './memory.js';
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
  ]
    .filter(Boolean)
    .join('\n');

  const lines = verdicts.map((v) => `- ${v.target}: ${verdict(v.met)} — ${v.detail}.`).join('\n');
  const unexpected = r.ingest?.unexpected.length ? `\nUnexpected answers during the ingest runs:\n\n${r.ingest.unexpected.map((u) => `- ${u}`).join('\n')}\n` : '';
  const bk = r.pipeline?.failures.length ? `\nBuildKit failures (exact engine errors):\n\n${r.pipeline.failures.map((f) => '```\n' + f + '\n```').join('\n')}\n` : '';
  const notes = r.notes.length ? `\nNotes:\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : '';

  const markdown = `# dockhook benchmark, ${m.date.slice(0, 10)}

Written by \`npm run bench\`.

## Machine

${facts}

## Results

${table}

## Targets

${lines}
${unexpected}${bk}${notes}${phaseTable ? `\n## Where the pipeline's time goes\n\n${phaseTable}\n` : ''}
## Method

${method}
`;
  return { table, markdown };
}

export type { Summary };
