/**
 * Ingest: requests per second and latency of POST /webhook at 32 connections,
 * dockhook against the bare @octokit/webhooks Node middleware, alternating
 * rounds in the same run; then dockhook's latency while two builds run.
 *
 * Every request is a delivery GitHub could have sent: a new X-GitHub-Delivery
 * each time and, for the merged pull request, a new merge_commit_sha (else the
 * dedup by repository + sha answers "duplicate" without writing), the body
 * re-signed with HMAC-SHA256. The load generator is this process; each
 * receiver is a process of its own.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { examplePayload, mergedPullRequestPayload, signDelivery } from '../test/support/deliveries.js';
import { dockerInfo, noise, type BenchRepo } from './fixtures.js';
import { cpuMs, type ServerProcess } from './process.js';
import { percentile, summarize, type Summary } from './stats.js';

export type PayloadKind = 'ignored' | 'merged';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  count: number;
  codes: Record<string, number>;
  errors: number;
  timeouts: number;
  seconds: number;
  /** Receiver CPU (user + system) per answered request, µs; when its pid was given. */
  cpuUsPerRequest: number;
}

const PLACEHOLDER_SHA = 'f'.repeat(40);
const shaPrefix = randomBytes(4).toString('hex');
let shaCounter = 0;
/** A sha no other request of this process used. */
const freshSha = () => shaPrefix + (shaCounter++).toString(16).padStart(32, '0');

export interface DeliveryTarget {
  owner: string;
  repo: string;
  /** merged_at of the merged deliveries (a far-future one queues them behind a running build of the same repository). */
  mergedAt?: string;
}

/** The autocannon request for one payload kind: headers and body built anew for each request. */
export async function deliveryRequest(kind: PayloadKind, secret: string, target: DeliveryTarget) {
  const payload =
    kind === 'merged'
      ? mergedPullRequestPayload({ owner: target.owner, repo: target.repo, sha: PLACEHOLDER_SHA, mergedAt: target.mergedAt ?? '2024-05-01T10:00:00Z' })
      : examplePayload('pull_request', 'opened');
  const template = await signDelivery(secret, payload);
  const parts = template.body.split(PLACEHOLDER_SHA);
  if (kind === 'merged' && parts.length !== 2) throw new Error(`expected the placeholder sha once in the merged payload, found it ${parts.length - 1} times`);
  const fixed = { ...template.headers };
  const staticBody = kind === 'ignored' ? template.body : undefined;
  const staticSignature = template.headers['x-hub-signature-256'];
  return {
    bytes: Buffer.byteLength(template.body),
    request: {
      method: 'POST' as const,
      path: '/webhook',
      setupRequest: (req: autocannon.Request) => {
        const body = staticBody ?? parts.join(freshSha());
        const signature = staticBody ? staticSignature : `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
        return {
          ...req,
          body,
          headers: { ...fixed, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature },
        };
      },
    },
  };
}

/** One load run: `connections` keep-alive connections for `seconds`, every response's latency kept. */
export async function load(url: string, kind: PayloadKind, secret: string, target: DeliveryTarget, seconds: number, connections = 32, receiverPid?: number): Promise<LoadResult> {
  const { request } = await deliveryRequest(kind, secret, target);
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  const codes: Record<string, number> = {};
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    timeout: 10,
    requests: [request],
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (n === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[n++] = responseTime;
    codes[statusCode] = (codes[statusCode] ?? 0) + 1;
  });
  const cpu0 = receiverPid ? await cpuMs(receiverPid) : Number.NaN;
  const result = await instance;
  const cpu1 = receiverPid ? await cpuMs(receiverPid) : Number.NaN;
  const all = latencies.subarray(0, n);
  return {
    rps: n / result.duration,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    p999: percentile(all, 99.9),
    count: n,
    codes,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    cpuUsPerRequest: ((cpu1 - cpu0) * 1000) / n,
  };
}

type Contender = 'dockhook' | 'floor';

export interface IngestRounds {
  /** [kind][contender] → one LoadResult per round. */
  runs: Record<PayloadKind, Record<Contender, LoadResult[]>>;
  payloadBytes: Record<PayloadKind, number>;
  /** 202 answers dockhook gave to merged deliveries, and the queued builds its store holds after the runs. */
  accepted: number;
  recorded: number;
  /** Requests still in flight when a load run ended may be recorded without their answer being counted: at most this many. */
  inFlightAllowance: number;
  unexpected: string[];
}

export interface IngestOptions {
  dockhook: ServerProcess<{ url: string }>;
  floor: ServerProcess<{ url: string }>;
  secret: string;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  onProgress: (line: string) => void;
}

const expected: Record<Contender, Record<PayloadKind, number>> = {
  dockhook: { ignored: 200, merged: 202 },
  floor: { ignored: 200, merged: 200 },
};

function checkCodes(r: LoadResult, want: number, what: string, unexpected: string[]): void {
  const other = Object.entries(r.codes).filter(([code]) => Number(code) !== want);
  if (other.length > 0 || r.errors > 0 || r.timeouts > 0) {
    unexpected.push(`${what}: ${JSON.stringify(r.codes)} errors=${r.errors} timeouts=${r.timeouts}`);
  }
}

/** Alternating rounds: in odd rounds dockhook goes first, in even ones the middleware does, for each payload. */
export async function runIngest(o: IngestOptions): Promise<IngestRounds> {
  const target = { owner: 'bench', repo: 'ingest' };
  const kinds: PayloadKind[] = ['ignored', 'merged'];
  const urls: Record<Contender, string> = { dockhook: o.dockhook.ready.url, floor: o.floor.ready.url };
  const pids: Record<Contender, number> = { dockhook: o.dockhook.pid, floor: o.floor.pid };
  const runs = { ignored: { dockhook: [], floor: [] }, merged: { dockhook: [], floor: [] } } as IngestRounds['runs'];
  const unexpected: string[] = [];
  let accepted = 0;
  let mergedRuns = 0;

  for (const kind of kinds) {
    for (const who of ['dockhook', 'floor'] as Contender[]) {
      const warm = await load(urls[who], kind, o.secret, target, o.warmupSeconds, 32, pids[who]);
      checkCodes(warm, expected[who][kind], `warm-up ${who} ${kind}`, unexpected);
      if (who === 'dockhook' && kind === 'merged') {
        accepted += warm.codes[202] ?? 0;
        mergedRuns++;
      }
    }
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const kind of kinds) {
      const order: Contender[] = round % 2 === 1 ? ['dockhook', 'floor'] : ['floor', 'dockhook'];
      for (const who of order) {
        const r = await load(urls[who], kind, o.secret, target, o.seconds, 32, pids[who]);
        checkCodes(r, expected[who][kind], `round ${round} ${who} ${kind}`, unexpected);
        if (who === 'dockhook' && kind === 'merged') {
          accepted += r.codes[202] ?? 0;
          mergedRuns++;
        }
        runs[kind][who].push(r);
        o.onProgress(
          `ingest round ${round}/${o.rounds} ${kind.padEnd(7)} ${who.padEnd(8)} ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  CPU ${r.cpuUsPerRequest.toFixed(0)} µs/req`,
        );
      }
    }
  }
  const counts = await o.dockhook.call<Record<string, number>>('counts');
  return {
    runs,
    payloadBytes: { ignored: (await deliveryRequest('ignored', o.secret, target)).bytes, merged: (await deliveryRequest('merged', o.secret, target)).bytes },
    accepted,
    recorded: counts.queued ?? 0,
    inFlightAllowance: mergedRuns * 32,
    unexpected,
  };
}

// ------------------------------------------------------------ while building

export interface BusyRound {
  load: LoadResult;
  /** Whether both builds were still running when the load ended. */
  bothRunning: boolean;
  /** How long the builds had been running when the load started (ms). */
  startedAfterMs: number;
}

export interface BusyOptions {
  /** Starts a fresh dockhook (worker running, BUILD_CONCURRENCY=2) with its own data dir. */
  startDockhook: (dataDir: string) => Promise<ServerProcess<{ url: string }>>;
  repos: [BenchRepo, BenchRepo];
  secret: string;
  rounds: number;
  seconds: number;
  tmp: string;
  onProgress: (line: string) => void;
}

/** The repository files for a build that lasts: a 64 MiB context to stream, then 10 s of log lines. */
export function busyRepoFiles(serviceName: string, version: string): Record<string, string | Buffer> {
  const files: Record<string, string | Buffer> = {
    Dockerfile: ['FROM busybox:latest', 'COPY Dockerfile /Dockerfile.copy', 'RUN for i in $(seq 1 40); do echo "step $i of 40"; sleep 0.25; done', ''].join('\n'),
    'dockerInfo.json': dockerInfo(serviceName, version),
  };
  for (let i = 0; i < 8; i++) files[`data/chunk-${i}.bin`] = noise(8 * 1024 * 1024);
  return files;
}

/**
 * Each round: a fresh dockhook, two merges (two repositories, so both run at
 * once), and once both builds are running, the merged-payload load for
 * `seconds`. The load's merges are for the first repository with a later
 * merged_at, so they queue behind its build and never start one.
 */
export async function runWhileBuilding(o: BusyOptions): Promise<BusyRound[]> {
  const out: BusyRound[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    const dataDir = await mkdtemp(join(o.tmp, 'busy-data-'));
    const dockhook = await o.startDockhook(dataDir);
    try {
      const ids: number[] = [];
      for (const repo of o.repos) {
        const sha = await repo.commit({ 'dockerInfo.json': dockerInfo(`bench-busy-${repo.name}`, `1.0.${Date.now()}`) });
        const { body, headers } = await signDelivery(o.secret, mergedPullRequestPayload({ owner: repo.owner, repo: repo.name, sha }));
        const res = await fetch(`${dockhook.ready.url}/webhook`, { method: 'POST', body, headers });
        const answer = (await res.json()) as { build?: number };
        if (res.status !== 202 || answer.build === undefined) throw new Error(`merge of ${repo.name} answered ${res.status} ${JSON.stringify(answer)}`);
        ids.push(answer.build);
      }
      const running = await dockhook.call<{ startedAt: number }[]>('waitRunning', { ids, timeoutMs: 30_000 });
      const startedAfterMs = Date.now() - Math.max(...running.map((b) => b.startedAt));
      const r = await load(dockhook.ready.url, 'merged', o.secret, { owner: o.repos[0].owner, repo: o.repos[0].name, mergedAt: '2099-01-01T00:00:00Z' }, o.seconds, 32, dockhook.pid);
      const after = await dockhook.call<({ state: string } | undefined)[]>('builds', ids);
      const bothRunning = after.every((b) => b?.state === 'running');
      out.push({ load: r, bothRunning, startedAfterMs });
      o.onProgress(
        `while building round ${round}/${o.rounds}: ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (both builds still running at the end: ${bothRunning})`,
      );
    } finally {
      await dockhook.stop();
    }
  }
  return out;
}

export const summaries = (rs: LoadResult[]): { rps: Summary; p50: Summary; p99: Summary } => ({
  rps: summarize(rs.map((r) => r.rps)),
  p50: summarize(rs.map((r) => r.p50)),
  p99: summarize(rs.map((r) => r.p99)),
});

// ------------------------------------------------------------ merged, N receivers

export interface MergedContender {
  /** Its name in the results, e.g. 'postgres' or 'floor'. */
  name: string;
  server: ServerProcess<{ url: string }>;
  /** The answer every merged delivery must get (202 from dockhook, 200 from the bare middleware). */
  expect: number;
  /** dockhook: its store's queued builds are counted after the runs, to check every 202 was recorded. */
  durable: boolean;
  /** CPU ms used so far by a server the receiver depends on (PostgreSQL's processes), sampled around each run. */
  serverCpuMs?: () => Promise<number>;
}

export type MergedLoadResult = LoadResult & { /** CPU of that server per answered request, µs. */ serverCpuUsPerRequest?: number };

export interface MergedIngestRounds {
  /** contender → one LoadResult per round. */
  runs: Record<string, MergedLoadResult[]>;
  payloadBytes: number;
  /** Per durable contender: 202 answers given, queued builds its store holds after the runs, and the in-flight allowance. */
  durability: Record<string, { accepted: number; recorded: number; allowance: number }>;
  unexpected: string[];
}

/**
 * The merged-payload load (a new delivery id and merge_commit_sha per request)
 * against several receivers, the same load for each: a warm-up each, then
 * `rounds` rounds whose order rotates by one contender per round.
 */
export async function runMergedIngest(o: {
  contenders: MergedContender[];
  secret: string;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  onProgress: (line: string) => void;
}): Promise<MergedIngestRounds> {
  const target = { owner: 'bench', repo: 'ingest' };
  const runs: Record<string, MergedLoadResult[]> = {};
  const durability: MergedIngestRounds['durability'] = {};
  const unexpected: string[] = [];
  const count = (c: MergedContender, r: LoadResult) => {
    if (!c.durable) return;
    const d = (durability[c.name] ??= { accepted: 0, recorded: 0, allowance: 0 });
    d.accepted += r.codes[202] ?? 0;
    d.allowance += 32;
  };
  for (const c of o.contenders) {
    runs[c.name] = [];
    const warm = await load(c.server.ready.url, 'merged', o.secret, target, o.warmupSeconds, 32, c.server.pid);
    checkCodes(warm, c.expect, `warm-up ${c.name}`, unexpected);
    count(c, warm);
  }
  for (let round = 1; round <= o.rounds; round++) {
    const shift = (round - 1) % o.contenders.length;
    const order = [...o.contenders.slice(shift), ...o.contenders.slice(0, shift)];
    for (const c of order) {
      const server0 = c.serverCpuMs ? await c.serverCpuMs() : Number.NaN;
      const r: MergedLoadResult = await load(c.server.ready.url, 'merged', o.secret, target, o.seconds, 32, c.server.pid);
      if (c.serverCpuMs) r.serverCpuUsPerRequest = (((await c.serverCpuMs()) - server0) * 1000) / r.count;
      checkCodes(r, c.expect, `round ${round} ${c.name}`, unexpected);
      count(c, r);
      runs[c.name]!.push(r);
      const db = r.serverCpuUsPerRequest === undefined ? '' : ` + database ${r.serverCpuUsPerRequest.toFixed(0)}`;
      o.onProgress(`ingest round ${round}/${o.rounds} merged ${c.name.padEnd(18)} ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  CPU ${r.cpuUsPerRequest.toFixed(0)}${db} µs/req`);
    }
  }
  for (const c of o.contenders.filter((x) => x.durable)) {
    durability[c.name]!.recorded = (await c.server.call<Record<string, number>>('counts')).queued ?? 0;
  }
  return { runs, payloadBytes: (await deliveryRequest('merged', o.secret, target)).bytes, durability, unexpected };
}
