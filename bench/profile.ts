/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self
 * time by function and by area (dockhook's src/, each package, Node's
 * internals, GC). Used by `npm run bench -- --profile`; also runnable alone:
 *   node --import tsx bench/profile.ts path/to/file.cpuprofile
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Time not idle (the event loop had work). */
  busyMs: number;
  byArea: ProfileRow[];
  byFunction: ProfileRow[];
  /** Inclusive time of chosen frames (e.g. the webhook handler, the SQLite enqueue). */
  inclusive: ProfileRow[];
}

/** Where a script lives, in words: "src/http/webhook.ts", "express", "node:internal", "(garbage collector)". */
export function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  // Compiled servers live in bench/tmp/run-*/dist/: name their files as in the repository.
  const src = /\/dist\/(src|bench|test)\/(.+)$/.exec(url) ?? /\/(src|bench|test)\/(.+)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url.startsWith('node:internal') ? 'node:internal' : url;
  return url;
}

export function summarizeProfile(profile: CpuProfile, inclusiveOf: RegExp[] = [], top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') idle += ms;
    const area = areaOf(f.url, f.functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const key = `${f.functionName || '(anonymous)'}  ${area}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + ms);
    // Inclusive: count this sample once for each pattern matched by any frame on its stack.
    const hit = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at)!.callFrame;
      const label = `${cf.functionName || '(anonymous)'}  ${areaOf(cf.url, cf.functionName)}`;
      for (const re of inclusiveOf) if (re.test(label)) hit.add(re.source);
    }
    for (const h of hit) inclusive.set(h, (inclusive.get(h) ?? 0) + ms);
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>, base: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => ({ name, ms, share: base > 0 ? ms / base : 0 }));
  return {
    totalMs: total,
    busyMs: busy,
    byArea: rows(areas, busy).filter((r) => r.name !== '(idle)').slice(0, top),
    byFunction: rows(functions, busy).filter((r) => !r.name.startsWith('(idle)')).slice(0, top),
    inclusive: rows(inclusive, busy),
  };
}

export async function readProfile(path: string): Promise<CpuProfile> {
  return JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
}

/** Markdown tables of a summary (shares are of busy time; µs per request when the request count is given). */
export function profileMarkdown(title: string, s: ProfileSummary, requests?: number): string {
  const per = (ms: number) => (requests ? ` ${((ms * 1000) / requests).toFixed(1)} |` : '');
  const perHead = requests ? ' µs per request |' : '';
  const perAlign = requests ? ' ---: |' : '';
  const esc = (name: string) => name.replace(/\|/g, '\\|');
  const table = (head: string, rows: ProfileRow[]) =>
    [`| ${head} | self ms | share of busy |${perHead}`, `| --- | ---: | ---: |${perAlign}`, ...rows.map((r) => `| \`${esc(r.name)}\` | ${r.ms.toFixed(0)} | ${(r.share * 100).toFixed(1)}% |${per(r.ms)}`)].join(
      '\n',
    );
  const incl = s.inclusive.length
    ? `\n\nInclusive time (any frame on the stack matches):\n\n${[
        `| frames matching | ms | share of busy |${perHead}`,
        `| --- | ---: | ---: |${perAlign}`,
        ...s.inclusive.map((r) => `| \`${esc(r.name)}\` | ${r.ms.toFixed(0)} | ${(r.share * 100).toFixed(1)}% |${per(r.ms)}`),
      ].join('\n')}`
    : '';
  const count = requests ? ` ${requests} requests answered: ${((s.busyMs * 1000) / requests).toFixed(0)} µs of busy time per request (start-up included).` : '';
  return `### ${title}\n\nProfiled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s.${count}\n\n${table('area', s.byArea)}\n\n${table('function (self time)', s.byFunction)}${incl}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const path of process.argv.slice(2)) {
    process.stdout.write(profileMarkdown(path, summarizeProfile(await readProfile(path))) + '\n');
  }
}
