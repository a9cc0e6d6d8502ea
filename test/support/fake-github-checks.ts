import {
  DOCS,
  HttpError,
  apiHeaders,
  invalidRequest,
  notFound,
  now,
  pageOf,
  readJsonBody,
  send,
  validationFailed,
  type Ctx,
  type RepoEntry,
} from './fake-github-http.js';
import type { FakeApps, FakeCore } from './fake-github-app.js';

/**
 * Check runs for the fake GitHub: POST /repos/{o}/{r}/check-runs, GET|PATCH
 * /repos/{o}/{r}/check-runs/{id}, GET /repos/{o}/{r}/commits/{ref}/check-runs.
 * Only an App's installation token may create or update one (the Checks API
 * is for Apps); anyone who can read the repository can read them.
 */

export interface CheckRunOutput {
  title: string | null;
  summary: string | null;
  text: string | null;
  /** Appended across updates, as GitHub does. */
  annotations: Record<string, unknown>[];
  images: Record<string, unknown>[];
}

export interface RecordedCheckRun {
  owner: string;
  repo: string;
  id: number;
  head_sha: string;
  name: string;
  status: string;
  conclusion: string | null;
  started_at: string | null;
  completed_at: string | null;
  details_url: string | null;
  external_id: string | null;
  output: CheckRunOutput;
  actions: Record<string, unknown>[];
  app_id: number;
  installation_id: number;
  check_suite_id: number;
  /** Every body sent for this run, the create first, then each update, as sent. */
  updates: Record<string, unknown>[];
}

export interface FakeGitHubChecks {
  /** The check runs on a commit (owner and repo case-insensitive), in creation order, with their current fields. */
  checkRunsFor(owner: string, repo: string, sha: string): RecordedCheckRun[];
}

const STATUSES = ['queued', 'in_progress', 'completed'];
/** GitHub Actions' own; an update may name them (documented), a create may not. */
const ACTIONS_STATUSES = ['waiting', 'requested', 'pending'];
const CONCLUSIONS = ['action_required', 'cancelled', 'failure', 'neutral', 'success', 'skipped', 'stale', 'timed_out'];
const MAX_TEXT = 65535;
const MAX_ANNOTATIONS = 50;

const oneOf = (field: string, value: unknown, allowed: string[]) =>
  invalidRequest(`For 'properties/${field}', ${JSON.stringify(value)} is not one of [${allowed.map((a) => JSON.stringify(a)).join(', ')}].`);
const notA = (field: string, value: unknown, type: string) =>
  invalidRequest(`For 'properties/${field}', ${value === null ? 'nil' : JSON.stringify(value)} is not ${type}.`);
const notSupplied = (fields: string[]) =>
  invalidRequest(`${fields.map((f) => `"${f}"`).join(', ')} ${fields.length === 1 ? "wasn't" : "weren't"} supplied.`);

export function createChecks(core: FakeCore, apps: FakeApps) {
  const runs: RecordedCheckRun[] = [];
  let nextId = 20_000_000_001;
  let nextSuiteId = 9_000_000_001;
  /** One check suite per App and commit, as GitHub makes one. */
  const suites = new Map<string, number>();

  const runUrl = (r: RepoEntry, id: number) => `${core.apiUrl}/repos/${r.owner}/${r.name}/check-runs/${id}`;

  function checkRunJson(r: RepoEntry, run: RecordedCheckRun) {
    const app = apps.app(run.app_id);
    return {
      id: run.id,
      head_sha: run.head_sha,
      node_id: Buffer.from(`08:CheckRun${run.id}`).toString('base64'),
      external_id: run.external_id ?? '',
      url: runUrl(r, run.id),
      html_url: `https://github.com/${r.owner}/${r.name}/runs/${run.id}`,
      // Documented: without details_url, the App's homepage.
      details_url: run.details_url ?? (app ? apps.appJson(app).external_url : null),
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.started_at,
      completed_at: run.completed_at,
      output: {
        title: run.output.title,
        summary: run.output.summary,
        text: run.output.text,
        annotations_count: run.output.annotations.length,
        annotations_url: `${runUrl(r, run.id)}/annotations`,
      },
      name: run.name,
      check_suite: { id: run.check_suite_id },
      app: app ? apps.appJson(app) : null,
      pull_requests: [],
    };
  }

  function requireApp(ctx: Ctx, operation: 'create' | 'update') {
    const caller = ctx.caller;
    if (caller?.kind !== 'installation') {
      // The Checks API writes are for GitHub Apps: a personal token is refused with this message.
      throw new HttpError(403, {
        message: 'You must authenticate via a GitHub App.',
        documentation_url: `https://docs.github.com/rest/checks/runs#${operation}-a-check-run`,
        status: '403',
      });
    }
    return caller.installation;
  }

  const str = (body: Record<string, unknown>, field: string, path = field): string | undefined => {
    const v = body[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw notA(path, v, 'a string');
    return v;
  };

  const chars = (s: string) => Array.from(s).length;

  /** Validates `output` as GitHub does and applies it to `run` (create: title and summary required; update: summary). */
  function applyOutput(run: RecordedCheckRun, raw: unknown, creating: boolean): void {
    if (raw === undefined) return;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw notA('output', raw, 'an object');
    const output = raw as Record<string, unknown>;
    const missing = (creating ? ['title', 'summary'] : ['summary']).filter((f) => output[f] === undefined);
    if (missing.length) throw notSupplied(missing);
    const title = str(output, 'title', 'output/title');
    const summary = str(output, 'summary', 'output/summary')!;
    const text = str(output, 'text', 'output/text');
    // The schema counts characters; the model then counts bytes (both are GitHub's answers).
    for (const [field, value] of [['summary', summary], ['text', text]] as const) {
      if (value === undefined) continue;
      if (chars(value) > MAX_TEXT) throw invalidRequest(`Only ${MAX_TEXT} characters are allowed; ${chars(value)} were supplied.`);
      if (Buffer.byteLength(value) > MAX_TEXT) {
        throw validationFailed([{ resource: 'CheckRun', code: 'custom', field, message: `${field} exceeds a maximum bytesize of ${MAX_TEXT}` }]);
      }
    }
    const annotations = output.annotations === undefined ? [] : output.annotations;
    if (!Array.isArray(annotations)) throw notA('output/annotations', annotations, 'an array');
    if (annotations.length > MAX_ANNOTATIONS) {
      throw invalidRequest(`For 'properties/output/properties/annotations', only ${MAX_ANNOTATIONS} annotations are allowed per request.`);
    }
    for (const a of annotations as Record<string, unknown>[]) {
      const gone = ['path', 'start_line', 'end_line', 'annotation_level', 'message'].filter((f) => a?.[f] === undefined);
      if (gone.length) throw notSupplied(gone);
      if (!['notice', 'warning', 'failure'].includes(String(a.annotation_level))) {
        throw oneOf('output/annotations/items/annotation_level', a.annotation_level, ['notice', 'warning', 'failure']);
      }
    }
    if (title !== undefined) run.output.title = title;
    run.output.summary = summary;
    if (text !== undefined) run.output.text = text;
    run.output.annotations.push(...(annotations as Record<string, unknown>[]));
    if (Array.isArray(output.images)) run.output.images = output.images as Record<string, unknown>[];
  }

  /** status, conclusion, started_at, completed_at, as documented: a conclusion implies completed and completed needs one. */
  function applyLifecycle(run: RecordedCheckRun, body: Record<string, unknown>, creating: boolean): void {
    const allowed = creating ? STATUSES : [...STATUSES, ...ACTIONS_STATUSES];
    const status = str(body, 'status');
    if (status !== undefined && !allowed.includes(status)) throw oneOf('status', status, allowed);
    const conclusion = body.conclusion === null ? undefined : str(body, 'conclusion');
    if (conclusion !== undefined && !CONCLUSIONS.includes(conclusion)) throw oneOf('conclusion', conclusion, CONCLUSIONS);
    if (conclusion === 'stale') {
      throw validationFailed([{ resource: 'CheckRun', code: 'custom', field: 'conclusion', message: 'conclusion cannot be set to stale' }]);
    }
    const startedAt = str(body, 'started_at');
    const completedAt = str(body, 'completed_at');
    for (const [field, value] of [['started_at', startedAt], ['completed_at', completedAt]] as const) {
      if (value !== undefined && Number.isNaN(Date.parse(value))) throw invalidRequest(`For 'properties/${field}', ${JSON.stringify(value)} is not a timestamp.`);
    }
    if ((status === 'completed' || completedAt !== undefined) && conclusion === undefined) {
      throw invalidRequest('No subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.');
    }
    if (startedAt !== undefined) run.started_at = startedAt;
    if (conclusion !== undefined) {
      run.status = 'completed';
      run.conclusion = conclusion;
      run.completed_at = completedAt ?? now();
    } else if (status !== undefined) {
      run.status = status;
      run.conclusion = null;
      run.completed_at = null;
    }
  }

  async function create(ctx: Ctx, r: RepoEntry): Promise<void> {
    const installation = requireApp(ctx, 'create');
    const body = await readJsonBody(ctx.req);
    const missing = ['name', 'head_sha'].filter((f) => body[f] === undefined || body[f] === null);
    if (missing.length) throw notSupplied(missing);
    const name = str(body, 'name')!;
    const headSha = str(body, 'head_sha')!;
    if (name.trim() === '') throw validationFailed([{ resource: 'CheckRun', code: 'custom', field: 'name', message: "name can't be blank" }]);
    const sha = await core.resolveCommit(r, headSha);
    // GitHub wants the commit's full SHA here, not a branch or an abbreviation.
    if (!sha || sha !== headSha.toLowerCase()) {
      throw validationFailed([{ resource: 'CheckRun', code: 'invalid', field: 'head_sha', message: `No commit found for SHA: ${headSha}` }]);
    }
    const stamp = now();
    const suiteKey = `${installation.app.id}:${r.id}:${sha}`;
    if (!suites.has(suiteKey)) suites.set(suiteKey, nextSuiteId++);
    const run: RecordedCheckRun = {
      owner: r.owner,
      repo: r.name,
      id: nextId++,
      head_sha: sha,
      name,
      status: 'queued',
      conclusion: null,
      started_at: stamp,
      completed_at: null,
      details_url: str(body, 'details_url') ?? null,
      external_id: str(body, 'external_id') ?? null,
      output: { title: null, summary: null, text: null, annotations: [], images: [] },
      actions: Array.isArray(body.actions) ? (body.actions as Record<string, unknown>[]) : [],
      app_id: installation.app.id,
      installation_id: installation.id,
      check_suite_id: suites.get(suiteKey)!,
      updates: [],
    };
    applyLifecycle(run, body, true);
    applyOutput(run, body.output, true);
    run.updates.push(structuredClone(body));
    runs.push(run);
    send(ctx.res, 201, checkRunJson(r, run), { ...apiHeaders(), location: runUrl(r, run.id) });
  }

  function find(r: RepoEntry, id: string | undefined): RecordedCheckRun {
    const run = id && /^\d+$/.test(id) ? runs.find((x) => x.id === Number(id) && x.owner === r.owner && x.repo === r.name) : undefined;
    if (!run) throw notFound();
    return run;
  }

  async function update(ctx: Ctx, r: RepoEntry, run: RecordedCheckRun): Promise<void> {
    const installation = requireApp(ctx, 'update');
    // Another App's check run is not this App's to change.
    if (installation.app.id !== run.app_id) {
      throw new HttpError(403, { message: 'Resource not accessible by integration', documentation_url: DOCS, status: '403' });
    }
    const body = await readJsonBody(ctx.req);
    const draft = structuredClone(run);
    const name = str(body, 'name');
    if (name !== undefined) draft.name = name;
    if (body.details_url !== undefined) draft.details_url = str(body, 'details_url') ?? null;
    if (body.external_id !== undefined) draft.external_id = str(body, 'external_id') ?? null;
    if (Array.isArray(body.actions)) draft.actions = body.actions as Record<string, unknown>[];
    applyLifecycle(draft, body, false);
    applyOutput(draft, body.output, false);
    draft.updates.push(structuredClone(body));
    Object.assign(run, draft);
    send(ctx.res, 200, checkRunJson(r, run), apiHeaders());
  }

  async function listForRef(ctx: Ctx, r: RepoEntry, ref: string): Promise<void> {
    const sha = await core.resolveCommit(r, ref);
    if (!sha) throw new HttpError(422, { message: `No commit found for SHA: ${ref}`, documentation_url: DOCS, status: '422' });
    const q = ctx.url.searchParams;
    const filter = q.get('filter') ?? 'latest';
    if (filter !== 'latest' && filter !== 'all') throw oneOf('filter', filter, ['latest', 'all']);
    const status = q.get('status');
    if (status !== null && !STATUSES.includes(status)) throw oneOf('status', status, STATUSES);
    let list = runs.filter((x) => x.owner === r.owner && x.repo === r.name && x.head_sha === sha);
    if (filter === 'latest') {
      // The most recent run of each name (per App).
      const latest = new Map<string, RecordedCheckRun>();
      for (const x of list) latest.set(`${x.app_id}\0${x.name}`, x);
      list = [...latest.values()];
    }
    list = list
      .filter((x) => (q.get('check_name') === null || x.name === q.get('check_name')) && (status === null || x.status === status))
      .filter((x) => q.get('app_id') === null || String(x.app_id) === q.get('app_id'))
      .sort((a, b) => b.id - a.id); // newest first
    const page = pageOf(ctx, core.apiUrl, list.map((x) => checkRunJson(r, x)));
    send(ctx.res, 200, { total_count: list.length, check_runs: page.items }, page.headers);
  }

  /** /repos/{o}/{r}/check-runs[/{id}] */
  async function routes(ctx: Ctx, r: RepoEntry, rest: string[]): Promise<void> {
    const method = ctx.req.method;
    if (rest.length === 0 && method === 'POST') return create(ctx, r);
    if (rest.length === 1) {
      const run = find(r, rest[0]);
      if (method === 'GET') return send(ctx.res, 200, checkRunJson(r, run), apiHeaders());
      if (method === 'PATCH') return update(ctx, r, run);
    }
    throw notFound();
  }

  const accessors: FakeGitHubChecks = {
    checkRunsFor: (owner, repo, sha) =>
      runs.filter((x) => x.owner.toLowerCase() === owner.toLowerCase() && x.repo.toLowerCase() === repo.toLowerCase() && x.head_sha === sha),
  };
  return { routes, listForRef, accessors };
}

/** Request-log names (see apiRoute in fake-github.ts), for the part after /repos/{owner}/{repo}. */
export function checkRouteName(head: string | undefined, tail: string[]): { route: string; params: Record<string, string> } | undefined {
  const base = '/repos/{owner}/{repo}';
  if (head === 'check-runs' && tail.length === 0) return { route: `${base}/check-runs`, params: {} };
  if (head === 'check-runs' && tail.length === 1) return { route: `${base}/check-runs/{check_run_id}`, params: { check_run_id: tail[0]! } };
  if (head === 'commits' && tail.length > 1 && tail[tail.length - 1] === 'check-runs') {
    return { route: `${base}/commits/{ref}/check-runs`, params: { ref: tail.slice(0, -1).join('/') } };
  }
  return undefined;
}
