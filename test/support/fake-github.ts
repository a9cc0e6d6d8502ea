import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gitEnv, type GitRepo } from './git-repo.js';
import {
  DOCS,
  HttpError,
  apiHeaders,
  notFound,
  now,
  pageOf,
  readJsonBody,
  requestId,
  send,
  validationFailed,
  type Ctx,
  type RepoEntry,
} from './fake-github-http.js';
import { appRouteName, createApps, type FakeGitHubApps } from './fake-github-app.js';
import { checkRouteName, createChecks, type FakeGitHubChecks } from './fake-github-checks.js';
import { commentRouteName, createComments, type FakeGitHubComments } from './fake-github-comments.js';
import { createDeliveries, deliveryRouteName, type FakeGitHubDeliveries } from './fake-github-deliveries.js';

export type { CreateAppOptions, FakeApp, InstallAppOptions, IssuedToken, Permissions } from './fake-github-app.js';
export type { CheckRunOutput, RecordedCheckRun } from './fake-github-checks.js';
export type { CommentAuthor, RecordedComment } from './fake-github-comments.js';
export type { DeliverOptions, DeliveryTarget, RecordedDelivery, RedeliveryRequest } from './fake-github-deliveries.js';

/**
 * A fake of api.github.com and codeload.github.com that serves real git
 * repositories. It follows GitHub's documented REST behaviour (status codes,
 * error bodies, media types, rate-limit headers) closely enough that the real
 * @octokit/rest client, retry and throttling plugins behave as in production.
 */

export interface RecordedStatus {
  owner: string;
  repo: string;
  sha: string;
  state: string;
  context: string;
  description: string | null;
  target_url: string | null;
  id: number;
  created_at: string;
}

/**
 * A deployment as POST /repos/{owner}/{repo}/deployments created it. `auto_merge`
 * and `required_contexts` are kept as sent (undefined when left out), so a test
 * can check what the client asked for.
 */
export interface RecordedDeployment {
  owner: string;
  repo: string;
  id: number;
  sha: string;
  ref: string;
  task: string;
  /** Current environment: a status that names another one moves the deployment there. */
  environment: string;
  original_environment: string;
  description: string | null;
  payload: unknown;
  transient_environment: boolean;
  production_environment: boolean;
  auto_merge?: boolean;
  required_contexts?: string[];
  created_at: string;
  updated_at: string;
}

export interface RecordedDeploymentStatus {
  deployment_id: number;
  id: number;
  state: string;
  description: string;
  environment: string;
  log_url: string;
  target_url: string;
  environment_url: string;
  created_at: string;
  /** True for the `inactive` statuses GitHub adds by itself (auto_inactive), false for those a client created. */
  added_by_github: boolean;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface HookConfig {
  url: string;
  content_type: string;
  insecure_ssl: string;
  /** Kept in clear here (tests need it to sign deliveries); answers mask it as GitHub does. */
  secret?: string;
}

export interface Hook {
  id: number;
  name: string;
  active: boolean;
  events: string[];
  config: HookConfig;
  created_at: string;
  updated_at: string;
}

export interface RecordedRequest {
  method: string;
  /** Percent-decoded path without the query string, e.g. /repos/o/r/contents/sub/Dockerfile. */
  path: string;
  /** Query string including '?', or '' (e.g. '?ref=abc123'). */
  query: string;
  server: 'api' | 'codeload';
  /**
   * The route as @octokit/rest names it, e.g. 'GET /repos/{owner}/{repo}/git/trees/{tree_sha}'
   * (codeload: 'GET /{owner}/{repo}/legacy.tar.gz/{ref}'); undefined for paths the fake does not serve.
   * Set for canned (failNext) answers too, so retries count.
   */
  route?: string;
  /** The route's path parameters, decoded, e.g. { owner: 'acme', repo: 'widget', tree_sha: 'main' }. */
  params: Record<string, string>;
}

export interface RequestFilter {
  /** Route as in RecordedRequest.route. */
  route: string;
  /** Only requests with these path parameters; owner and repo compare case-insensitively, as GitHub does. */
  params?: Record<string, string>;
  /** Only requests whose query string (including '?') contains this, e.g. 'recursive='. */
  queryIncludes?: string;
}

export interface AddRepoOptions {
  defaultBranch?: string;
  /**
   * Recursive GET …/git/trees answers list at most this many entries and say
   * `truncated: true` when there were more, as GitHub does past its limit
   * (100,000 entries or 7 MB), so a client's non-recursive fallback can be tested.
   */
  truncateTreesOver?: number;
}

export interface FakeGitHub extends FakeGitHubApps, FakeGitHubChecks, FakeGitHubComments, FakeGitHubDeliveries {
  apiUrl: string;
  codeloadUrl: string;
  /** Registers (or replaces) a repository; replacing keeps its id, webhooks and statuses. */
  addRepo(owner: string, name: string, repo: GitRepo, opts?: AddRepoOptions): void;
  /** Every status created, in arrival order. */
  statuses: RecordedStatus[];
  statusesFor(sha: string): RecordedStatus[];
  /** Every request to either server, in arrival order; empty it (`requests.length = 0`) to start counting afresh. */
  requests: RecordedRequest[];
  /** The recorded requests to one route, e.g. requestsTo({ route: 'GET /repos/{owner}/{repo}/git/trees/{tree_sha}' }). */
  requestsTo(filter: RequestFilter): RecordedRequest[];
  /** How many requests went to one route: requestsTo(filter).length. */
  requestCount(filter: RequestFilter): number;
  /** Webhooks per repository, keyed "owner/name" as given to addRepo. */
  hooks: Map<string, Hook[]>;
  /** Every deployment created, in arrival order (the API lists newest first). */
  deployments: RecordedDeployment[];
  /** The deployments of one repository (owner and name compare case-insensitively), in arrival order. */
  deploymentsFor(owner: string, repo: string): RecordedDeployment[];
  /** The statuses of one deployment, in arrival order (the API lists newest first). */
  deploymentStatuses(deploymentId: number): RecordedDeploymentStatus[];
  /** The next requests matching `match` get `responses`, one each, in order; then normal service resumes. */
  failNext(match: { method?: string; pathIncludes: string }, ...responses: FakeResponse[]): void;
  close(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const STATUS_STATES = ['pending', 'success', 'error', 'failure'];
const DEPLOYMENT_STATES = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'];
/** Above this GitHub stops inlining file content in the JSON representation. */
const INLINE_CONTENT_LIMIT = 1024 * 1024;

// ---------------------------------------------------------------- git access

/** Runs git read-only against a repo and returns stdout as a Buffer. */
async function gitBuf(dir: string, args: string[]): Promise<Buffer> {
  const { stdout } = await execFileAsync('git', ['-C', dir, ...args], {
    env: { ...gitEnv, GIT_LITERAL_PATHSPECS: '1' },
    encoding: 'buffer',
    maxBuffer: 512 * 1024 * 1024,
  });
  return stdout;
}

/** Full sha of the commit `ref` names (branch, tag, full or short sha), or null. */
async function resolveCommit(dir: string, ref: string): Promise<string | null> {
  // A leading '-' would be read as an option; NUL and newlines can't be in a ref.
  if (ref === '' || ref.startsWith('-') || /[\0\n]/.test(ref)) return null;
  try {
    return (await gitBuf(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])).toString().trim() || null;
  } catch {
    return null;
  }
}

/** Full sha of the tree `ref` names (tree sha, commit sha, branch or tag), or null. */
async function resolveTree(dir: string, ref: string): Promise<string | null> {
  if (ref === '' || ref.startsWith('-') || /[\0\n]/.test(ref)) return null;
  try {
    return (await gitBuf(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{tree}`])).toString().trim() || null;
  } catch {
    return null;
  }
}

interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  oid: string;
  size: number;
  path: string;
}

/**
 * `git ls-tree -l`, parsed. With `dirPath` ending in '/', lists that directory's children.
 * `recursive` lists everything below, each tree before its contents (`-r -t`), as GitHub's recursive trees do.
 */
async function lsTree(dir: string, sha: string, dirPath?: string, opts: { recursive?: boolean } = {}): Promise<TreeEntry[]> {
  const args = ['ls-tree', '-z', '-l', '--full-tree', ...(opts.recursive ? ['-r', '-t'] : []), sha];
  if (dirPath) args.push('--', dirPath);
  const out = (await gitBuf(dir, args)).toString('utf8');
  return out
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t');
      const [mode, type, oid, size] = line.slice(0, tab).split(/ +/);
      return { mode, type: type as TreeEntry['type'], oid, size: size === '-' ? 0 : Number(size), path: line.slice(tab + 1) };
    });
}

// ---------------------------------------------------------------- responses

/** Base64 the way GitHub (Ruby's Base64.encode64) does: a newline after every 60 characters. */
function githubBase64(data: Buffer): string {
  const b64 = data.toString('base64');
  return b64.replace(/.{1,60}/g, '$&\n');
}

// ---------------------------------------------------------------- server

export interface FakeGitHubOptions {
  token: string;
  /** Interface to listen on; default 127.0.0.1. 0.0.0.0 lets containers reach it (the compose rehearsal). */
  listenHost?: string;
  /** Host name in the URLs it hands out (API, tarball redirects); default listenHost, or 127.0.0.1 for 0.0.0.0. */
  urlHost?: string;
}

export async function startFakeGitHub(opts: FakeGitHubOptions): Promise<FakeGitHub> {
  const repos = new Map<string, RepoEntry>(); // key: lower-cased "owner/name" (GitHub names are case-insensitive)
  const statuses: RecordedStatus[] = [];
  const requests: RecordedRequest[] = [];
  const hooks = new Map<string, Hook[]>();
  const canned: { method?: string; pathIncludes: string; responses: FakeResponse[] }[] = [];
  const children = new Set<ChildProcess>();
  let nextRepoId = 1296269;
  let nextStatusId = 1;
  let nextHookId = 1;
  const deployments: RecordedDeployment[] = [];
  const deploymentStatusList: RecordedDeploymentStatus[] = [];
  // Apart from each other and from commit statuses, so a test that mixes the ids up fails.
  let nextDeploymentId = 1_000_001;
  let nextDeploymentStatusId = 5_000_001;

  const apiServer = createServer();
  const codeloadServer = createServer();
  const listenHost = opts.listenHost ?? '127.0.0.1';
  const urlHost = opts.urlHost ?? (listenHost === '0.0.0.0' ? '127.0.0.1' : listenHost);
  const apiUrl = await listen(apiServer, listenHost, urlHost);
  const codeloadUrl = await listen(codeloadServer, listenHost, urlHost);

  const repoApiUrl = (r: RepoEntry) => `${apiUrl}/repos/${r.owner}/${r.name}`;
  const repoHtmlUrl = (r: RepoEntry) => `https://github.com/${r.owner}/${r.name}`;

  /** Records the request and answers it with a queued canned response if one matches. */
  function intercept(ctx: Ctx, server: RecordedRequest['server']): boolean {
    const path = ctx.segments.length ? `/${ctx.segments.join('/')}` : ctx.url.pathname;
    const method = ctx.req.method ?? 'GET';
    const matched = server === 'api' ? apiRoute(method, ctx.segments) : codeloadRoute(method, ctx.segments);
    requests.push({ method, path, query: ctx.url.search, server, route: matched?.route, params: matched?.params ?? {} });
    const rule = canned.find(
      (c) =>
        (!c.method || c.method.toUpperCase() === ctx.req.method) &&
        (path.includes(c.pathIncludes) || (ctx.req.url ?? '').includes(c.pathIncludes)),
    );
    if (!rule) return false;
    const response = rule.responses.shift()!;
    if (rule.responses.length === 0) canned.splice(canned.indexOf(rule), 1);
    send(ctx.res, response.status, response.body, { 'x-github-request-id': requestId(), ...response.headers });
    return true;
  }

  function requestsTo(filter: RequestFilter): RecordedRequest[] {
    const same = (key: string, a: string | undefined, b: string) =>
      key === 'owner' || key === 'repo' ? a?.toLowerCase() === b.toLowerCase() : a === b;
    return requests.filter(
      (q) =>
        q.route === filter.route &&
        Object.entries(filter.params ?? {}).every(([k, v]) => same(k, q.params[k], v)) &&
        (filter.queryIncludes === undefined || q.query.includes(filter.queryIncludes)),
    );
  }

  function findRepo(owner: string, name: string): RepoEntry {
    const entry = repos.get(`${owner}/${name}`.toLowerCase());
    if (!entry) throw notFound();
    return entry;
  }

  const core = {
    apiUrl,
    repos: () => [...repos.values()],
    findRepo,
    repoJson: (r: RepoEntry) => repoJson(r),
    resolveCommit: (r: RepoEntry, ref: string) => resolveCommit(r.repo.dir, ref),
  };
  const apps = createApps(core);
  const checks = createChecks(core, apps);
  const comments = createComments(core, apps);
  const deliveries = createDeliveries(core, apps, (r) => hooksOf(r));

  // ------------------------------------------------------------ API routes

  function repoJson(r: RepoEntry) {
    return {
      id: r.id,
      node_id: Buffer.from(`010:Repository${r.id}`).toString('base64'),
      name: r.name,
      full_name: `${r.owner}/${r.name}`,
      private: false,
      owner: { login: r.owner, id: r.id + 1, type: 'User', html_url: `https://github.com/${r.owner}` },
      html_url: repoHtmlUrl(r),
      description: null,
      fork: false,
      url: repoApiUrl(r),
      clone_url: `${repoHtmlUrl(r)}.git`,
      default_branch: r.defaultBranch,
      visibility: 'public',
      archived: false,
      disabled: false,
      permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
    };
  }

  function contentLinks(r: RepoEntry, e: TreeEntry, ref: string) {
    const self = `${repoApiUrl(r)}/contents/${e.path}?ref=${encodeURIComponent(ref)}`;
    const kind = e.type === 'tree' ? 'trees' : 'blobs';
    const git = `${repoApiUrl(r)}/git/${kind}/${e.oid}`;
    const html = `${repoHtmlUrl(r)}/${e.type === 'tree' ? 'tree' : 'blob'}/${ref}/${e.path}`;
    return { url: self, html_url: html, git_url: git, _links: { self, git, html } };
  }

  function entryJson(r: RepoEntry, e: TreeEntry, ref: string) {
    const type = e.type === 'tree' ? 'dir' : e.type === 'commit' ? 'submodule' : e.mode === '120000' ? 'symlink' : 'file';
    const download_url =
      e.type === 'blob' ? `https://raw.githubusercontent.com/${r.owner}/${r.name}/${ref}/${e.path}` : null;
    return {
      type,
      size: e.size,
      name: e.path.split('/').pop()!,
      path: e.path,
      sha: e.oid,
      download_url,
      ...contentLinks(r, e, ref),
    };
  }

  async function getContents(ctx: Ctx, r: RepoEntry, rawPath: string): Promise<void> {
    const ref = ctx.url.searchParams.get('ref') || r.defaultBranch;
    const sha = await resolveCommit(r.repo.dir, ref);
    if (!sha) throw new HttpError(404, { message: `No commit found for the ref ${ref}`, documentation_url: DOCS, status: '404' });
    const path = rawPath.replace(/^\/+|\/+$/g, '');
    if (path.split('/').some((s) => s === '..' || s === '.')) throw notFound();

    const accept = ctx.req.headers.accept ?? '';
    const rawType = /application\/vnd\.github(?:\.v3)?\.raw(?:\+json)?/.exec(accept)?.[0];

    let entry: TreeEntry | undefined;
    if (path !== '') {
      entry = (await lsTree(r.repo.dir, sha, path)).find((e) => e.path === path);
      if (!entry) throw notFound();
    }
    if (!entry || entry.type === 'tree') {
      // Directories are always listed as JSON, whatever media type was asked for.
      const children = await lsTree(r.repo.dir, sha, path === '' ? undefined : `${path}/`);
      send(ctx.res, 200, children.map((e) => entryJson(r, e, ref)), { ...apiHeaders(), 'x-github-media-type': 'github.v3; format=json' });
      return;
    }
    if (entry.type === 'commit') {
      send(ctx.res, 200, { ...entryJson(r, entry, ref), submodule_git_url: null }, apiHeaders());
      return;
    }
    const data = await gitBuf(r.repo.dir, ['cat-file', 'blob', entry.oid]);
    if (rawType) {
      // GitHub echoes the requested media type with charset=utf-8 even for
      // binary files; @octokit/request therefore decodes raw bodies as text.
      send(ctx.res, 200, data, {
        ...apiHeaders(),
        'content-type': `${rawType}; charset=utf-8`,
        'x-github-media-type': 'github.v3; param=raw',
      });
      return;
    }
    const inline = data.length <= INLINE_CONTENT_LIMIT;
    const body: Record<string, unknown> = {
      ...entryJson(r, entry, ref),
      content: inline ? githubBase64(data) : '',
      encoding: inline ? 'base64' : 'none',
    };
    if (entry.mode === '120000') body.target = data.toString('utf8');
    send(ctx.res, 200, body, { ...apiHeaders(), 'x-github-media-type': 'github.v3; format=json' });
  }

  async function redirectToArchive(ctx: Ctx, r: RepoEntry, kind: 'tar.gz' | 'zip', ref: string): Promise<void> {
    const sha = await resolveCommit(r.repo.dir, ref || r.defaultBranch);
    if (!sha) throw notFound();
    // GitHub's Location carries a short-lived token for private repos; this fake's codeload needs none.
    send(ctx.res, 302, '', {
      ...apiHeaders(),
      'content-type': 'text/html;charset=utf-8',
      location: `${codeloadUrl}/${r.owner}/${r.name}/legacy.${kind}/${sha}`,
    });
  }

  async function getCommit(ctx: Ctx, r: RepoEntry, ref: string): Promise<void> {
    const sha = await resolveCommit(r.repo.dir, ref);
    if (!sha) throw new HttpError(422, { message: `No commit found for SHA: ${ref}`, documentation_url: DOCS, status: '422' });
    if ((ctx.req.headers.accept ?? '').includes('application/vnd.github.sha')) {
      send(ctx.res, 200, sha, { ...apiHeaders(), 'content-type': 'application/vnd.github.sha; charset=utf-8' });
      return;
    }
    const fields = (await gitBuf(r.repo.dir, ['show', '-s', '--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B', sha]))
      .toString('utf8')
      .split('\0');
    const [, tree, parents, an, ae, ad, cn, ce, cd, message] = fields;
    send(
      ctx.res,
      200,
      {
        sha,
        node_id: Buffer.from(`04:Commit${sha}`).toString('base64'),
        url: `${repoApiUrl(r)}/commits/${sha}`,
        html_url: `${repoHtmlUrl(r)}/commit/${sha}`,
        commit: {
          author: { name: an, email: ae, date: ad },
          committer: { name: cn, email: ce, date: cd },
          message: message.replace(/\n+$/, ''),
          tree: { sha: tree, url: `${repoApiUrl(r)}/git/trees/${tree}` },
          comment_count: 0,
        },
        author: null,
        committer: null,
        parents: parents
          .split(' ')
          .filter(Boolean)
          .map((p) => ({ sha: p, url: `${repoApiUrl(r)}/commits/${p}`, html_url: `${repoHtmlUrl(r)}/commit/${p}` })),
      },
      apiHeaders(),
    );
  }

  async function getTree(ctx: Ctx, r: RepoEntry, ref: string): Promise<void> {
    const sha = await resolveTree(r.repo.dir, ref);
    if (!sha) throw notFound();
    // Documented: any value of `recursive`, even "false" or "0", asks for everything below.
    const recursive = ctx.url.searchParams.has('recursive');
    let entries = await lsTree(r.repo.dir, sha, undefined, { recursive });
    const truncated = recursive && r.truncateTreesOver !== undefined && entries.length > r.truncateTreesOver;
    if (truncated) entries = entries.slice(0, r.truncateTreesOver);
    const tree = entries.map((e) => ({
      path: e.path,
      mode: e.mode,
      type: e.type,
      sha: e.oid,
      ...(e.type === 'blob' ? { size: e.size } : {}),
      // GitHub gives submodule entries no url: the commit lives in another repository.
      ...(e.type === 'commit' ? {} : { url: `${repoApiUrl(r)}/git/${e.type === 'tree' ? 'trees' : 'blobs'}/${e.oid}` }),
    }));
    send(ctx.res, 200, { sha, url: `${repoApiUrl(r)}/git/trees/${sha}`, tree, truncated }, apiHeaders());
  }

  function statusJson(r: RepoEntry, s: RecordedStatus) {
    return {
      url: `${repoApiUrl(r)}/statuses/${s.sha}`,
      avatar_url: 'https://avatars.githubusercontent.com/oa/4808451?v=4',
      id: s.id,
      node_id: Buffer.from(`012:StatusContext${s.id}`).toString('base64'),
      state: s.state,
      description: s.description,
      target_url: s.target_url,
      context: s.context,
      created_at: s.created_at,
      updated_at: s.created_at,
      creator: { login: 'dockhook-bot', id: 1, type: 'User' },
    };
  }

  async function createStatus(ctx: Ctx, r: RepoEntry, shaParam: string): Promise<void> {
    const body = await readJsonBody(ctx.req);
    if (body.state === undefined) {
      throw new HttpError(422, { message: 'Invalid request.\n\n"state" wasn\'t supplied.', documentation_url: DOCS, status: '422' });
    }
    if (typeof body.state !== 'string' || !STATUS_STATES.includes(body.state)) {
      throw validationFailed([{ resource: 'Status', code: 'custom', field: 'state', message: 'state is not included in the list' }]);
    }
    const description = body.description === undefined || body.description === null ? null : String(body.description);
    // GitHub counts characters, not UTF-16 units or bytes.
    if (description !== null && Array.from(description).length > 140) {
      throw validationFailed([
        { resource: 'Status', code: 'custom', field: 'description', message: 'description is too long (maximum is 140 characters)' },
      ]);
    }
    const sha = await resolveCommit(r.repo.dir, shaParam);
    if (!sha) throw new HttpError(422, { message: `No commit found for SHA: ${shaParam}`, documentation_url: DOCS, status: '422' });
    const status: RecordedStatus = {
      owner: r.owner,
      repo: r.name,
      sha,
      state: body.state,
      context: typeof body.context === 'string' && body.context !== '' ? body.context : 'default',
      description,
      target_url: typeof body.target_url === 'string' ? body.target_url : null,
      id: nextStatusId++,
      created_at: now(),
    };
    statuses.push(status);
    send(ctx.res, 201, statusJson(r, status), { ...apiHeaders(), location: `${repoApiUrl(r)}/statuses/${sha}` });
  }

  async function statusesForRef(r: RepoEntry, ref: string): Promise<{ sha: string | null; list: RecordedStatus[] }> {
    const sha = await resolveCommit(r.repo.dir, ref);
    const list = statuses.filter((s) => s.sha === sha && s.owner === r.owner && s.repo === r.name).reverse(); // newest first
    return { sha, list };
  }

  async function listStatuses(ctx: Ctx, r: RepoEntry, ref: string): Promise<void> {
    const { list } = await statusesForRef(r, ref);
    send(ctx.res, 200, list.map((s) => statusJson(r, s)), apiHeaders());
  }

  async function combinedStatus(ctx: Ctx, r: RepoEntry, ref: string): Promise<void> {
    const { sha, list } = await statusesForRef(r, ref);
    if (!sha) throw new HttpError(422, { message: `No commit found for SHA: ${ref}`, documentation_url: DOCS, status: '422' });
    // `list` is newest first, so the first status seen per context is its current one.
    const seen = new Set<string>();
    const perContext = list.filter((s) => (seen.has(s.context) ? false : (seen.add(s.context), true)));
    const states = perContext.map((s) => s.state);
    const state = states.some((s) => s === 'error' || s === 'failure')
      ? 'failure'
      : states.length > 0 && states.every((s) => s === 'success')
        ? 'success'
        : 'pending';
    send(
      ctx.res,
      200,
      { state, statuses: perContext.map((s) => statusJson(r, s)), sha, total_count: perContext.length, repository: repoJson(r) },
      apiHeaders(),
    );
  }

  // ------------------------------------------------------------ webhooks

  function hooksOf(r: RepoEntry): Hook[] {
    let list = hooks.get(r.key);
    if (!list) hooks.set(r.key, (list = []));
    return list;
  }

  function maskedConfig(c: HookConfig) {
    const { secret, ...rest } = c;
    return secret ? { ...rest, secret: '********' } : rest;
  }

  function hookJson(r: RepoEntry, h: Hook) {
    const url = `${repoApiUrl(r)}/hooks/${h.id}`;
    return {
      type: 'Repository',
      id: h.id,
      name: h.name,
      active: h.active,
      events: h.events,
      config: maskedConfig(h.config),
      updated_at: h.updated_at,
      created_at: h.created_at,
      url,
      test_url: `${url}/test`,
      ping_url: `${url}/pings`,
      deliveries_url: `${url}/deliveries`,
      last_response: { code: null, status: 'unused', message: null },
    };
  }

  /** Merges the documented config fields of `input` over `base`. */
  function mergeConfig(base: HookConfig, input: unknown): HookConfig {
    const c = (input ?? {}) as Record<string, unknown>;
    const out: HookConfig = { ...base };
    if (typeof c.url === 'string') out.url = c.url;
    if (c.content_type === 'json' || c.content_type === 'form') out.content_type = c.content_type;
    if (c.insecure_ssl !== undefined) out.insecure_ssl = String(c.insecure_ssl);
    if (typeof c.secret === 'string') out.secret = c.secret;
    return out;
  }

  function checkHookUrl(r: RepoEntry, config: HookConfig, self?: Hook): void {
    if (!config.url) throw validationFailed([{ resource: 'Hook', code: 'custom', message: 'Config must contain URL.' }]);
    if (hooksOf(r).some((h) => h !== self && h.config.url === config.url)) {
      throw validationFailed([{ resource: 'Hook', code: 'custom', message: 'Hook already exists on this repository' }]);
    }
  }

  async function createHook(ctx: Ctx, r: RepoEntry): Promise<void> {
    const body = await readJsonBody(ctx.req);
    if (body.name !== undefined && body.name !== 'web') {
      throw validationFailed([{ resource: 'Hook', code: 'custom', field: 'name', message: 'name is not a valid hook name' }]);
    }
    const config = mergeConfig({ url: '', content_type: 'form', insecure_ssl: '0' }, body.config);
    checkHookUrl(r, config);
    const stamp = now();
    const hook: Hook = {
      id: nextHookId++,
      name: 'web',
      active: body.active === undefined ? true : Boolean(body.active),
      events: Array.isArray(body.events) ? body.events.map(String) : ['push'],
      config,
      created_at: stamp,
      updated_at: stamp,
    };
    hooksOf(r).push(hook);
    send(ctx.res, 201, hookJson(r, hook), { ...apiHeaders(), location: `${repoApiUrl(r)}/hooks/${hook.id}` });
  }

  function findHook(r: RepoEntry, id: string): Hook {
    const hook = hooksOf(r).find((h) => String(h.id) === id);
    if (!hook) throw notFound();
    return hook;
  }

  async function updateHook(ctx: Ctx, r: RepoEntry, hook: Hook): Promise<void> {
    const body = await readJsonBody(ctx.req);
    if (body.config !== undefined) {
      // Documented: PATCH /hooks/:id replaces config, so a secret not sent again is dropped.
      const config = mergeConfig({ url: '', content_type: 'form', insecure_ssl: '0' }, body.config);
      checkHookUrl(r, config, hook);
      hook.config = config;
    }
    if (Array.isArray(body.events)) hook.events = body.events.map(String);
    if (Array.isArray(body.add_events)) hook.events = [...new Set([...hook.events, ...body.add_events.map(String)])];
    if (Array.isArray(body.remove_events)) hook.events = hook.events.filter((e) => !(body.remove_events as unknown[]).includes(e));
    if (body.active !== undefined) hook.active = Boolean(body.active);
    hook.updated_at = now();
    send(ctx.res, 200, hookJson(r, hook), apiHeaders());
  }

  async function updateHookConfig(ctx: Ctx, r: RepoEntry, hook: Hook): Promise<void> {
    const body = await readJsonBody(ctx.req);
    // PATCH /hooks/:id/config changes only the fields sent.
    const config = mergeConfig(hook.config, body);
    checkHookUrl(r, config, hook);
    hook.config = config;
    hook.updated_at = now();
    send(ctx.res, 200, maskedConfig(hook.config), apiHeaders());
  }

  async function hookRoutes(ctx: Ctx, r: RepoEntry, rest: string[]): Promise<void> {
    const method = ctx.req.method;
    if (rest.length === 0) {
      if (method === 'GET') return send(ctx.res, 200, hooksOf(r).map((h) => hookJson(r, h)), apiHeaders());
      if (method === 'POST') return createHook(ctx, r);
      throw notFound();
    }
    const hook = findHook(r, rest[0]);
    if (rest[1] === 'deliveries') return deliveries.repoRoutes(ctx, r, hook, rest.slice(2));
    const sub = rest.slice(1).join('/');
    if (sub === '' && method === 'GET') return send(ctx.res, 200, hookJson(r, hook), apiHeaders());
    if (sub === '' && method === 'PATCH') return updateHook(ctx, r, hook);
    if (sub === '' && method === 'DELETE') {
      hooksOf(r).splice(hooksOf(r).indexOf(hook), 1);
      return send(ctx.res, 204, undefined, apiHeaders());
    }
    if (sub === 'config' && method === 'GET') return send(ctx.res, 200, maskedConfig(hook.config), apiHeaders());
    if (sub === 'config' && method === 'PATCH') return updateHookConfig(ctx, r, hook);
    // Pings and tests are accepted but not delivered: tests post deliveries themselves.
    if ((sub === 'pings' || sub === 'tests') && method === 'POST') return send(ctx.res, 204, undefined, apiHeaders());
    throw notFound();
  }

  // ------------------------------------------------------------ deployments

  /**
   * GitHub pages lists (per_page default 30, at most 100) and says where the
   * next page is in a Link header, which octokit.paginate follows.
   */
  function sendPage(ctx: Ctx, list: unknown[]): void {
    const page = pageOf(ctx, apiUrl, list);
    send(ctx.res, 200, page.items, page.headers);
  }

  function deploymentJson(r: RepoEntry, d: RecordedDeployment) {
    const url = `${repoApiUrl(r)}/deployments/${d.id}`;
    return {
      url,
      id: d.id,
      node_id: Buffer.from(`010:Deployment${d.id}`).toString('base64'),
      sha: d.sha,
      ref: d.ref,
      task: d.task,
      payload: d.payload,
      original_environment: d.original_environment,
      environment: d.environment,
      description: d.description,
      creator: { login: 'dockhook-bot', id: 1, type: 'User' },
      created_at: d.created_at,
      updated_at: d.updated_at,
      statuses_url: `${url}/statuses`,
      repository_url: repoApiUrl(r),
      transient_environment: d.transient_environment,
      production_environment: d.production_environment,
      performed_via_github_app: null,
    };
  }

  function deploymentStatusJson(r: RepoEntry, s: RecordedDeploymentStatus) {
    const deploymentUrl = `${repoApiUrl(r)}/deployments/${s.deployment_id}`;
    return {
      url: `${deploymentUrl}/statuses/${s.id}`,
      id: s.id,
      node_id: Buffer.from(`016:DeploymentStatus${s.id}`).toString('base64'),
      state: s.state,
      creator: { login: 'dockhook-bot', id: 1, type: 'User' },
      description: s.description,
      environment: s.environment,
      target_url: s.target_url,
      created_at: s.created_at,
      updated_at: s.created_at,
      deployment_url: deploymentUrl,
      repository_url: repoApiUrl(r),
      environment_url: s.environment_url,
      log_url: s.log_url,
      performed_via_github_app: null,
    };
  }

  const invalidField = (field: string, message: string) =>
    validationFailed([{ resource: 'Deployment', code: 'custom', field, message }]);

  function optionalString(body: Record<string, unknown>, field: string): string | undefined {
    const v = body[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw invalidField(field, `${field} is not a string`);
    return v;
  }

  function optionalBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
    const v = body[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw invalidField(field, `${field} is not a boolean`);
    return v;
  }

  async function gitSucceeds(dir: string, args: string[]): Promise<boolean> {
    try {
      await gitBuf(dir, args);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * auto_merge (GitHub's default: true) asks GitHub to merge the default branch
   * into `ref` when `ref` is behind it; GitHub then creates no deployment but
   * answers 202 (merged) or 409 (conflict). This fake never merges. When `ref`
   * does not contain the default branch's head it answers 202 if `ref` is a
   * branch that `git merge-tree` merges cleanly (the branch is left as it was),
   * and 409 "Conflict merging …" otherwise, a SHA or tag included: there is
   * no branch to merge into. Either way no deployment is recorded.
   */
  async function autoMergeRefusal(r: RepoEntry, ref: string, sha: string): Promise<HttpError | null> {
    const base = await resolveCommit(r.repo.dir, r.defaultBranch);
    if (!base || base === sha || (await gitSucceeds(r.repo.dir, ['merge-base', '--is-ancestor', base, sha]))) return null;
    const isBranch = await gitSucceeds(r.repo.dir, ['show-ref', '--verify', '--quiet', `refs/heads/${ref}`]);
    if (isBranch && (await gitSucceeds(r.repo.dir, ['merge-tree', '--write-tree', '--no-messages', base, sha]))) {
      return new HttpError(202, { message: `Auto-merged ${r.defaultBranch} into ${ref} on deployment.` });
    }
    return new HttpError(409, { message: `Conflict merging ${r.defaultBranch} into ${ref}.`, documentation_url: DOCS, status: '409' });
  }

  /**
   * Commit status checks before a deployment, kept to commit statuses (the fake
   * has no check runs). The current status of each context counts (the newest).
   * required_contexts left out: every context the commit has must be success
   * (none at all passes). A list: each named context must be success; one never
   * reported fails and is listed with state "missing". An empty list skips the
   * check. Failing: 409 "Conflict: Commit status checks failed for <ref>.", the
   * body's errors listing the checked contexts and their states, as GitHub does.
   */
  function statusCheckRefusal(r: RepoEntry, ref: string, sha: string, required: string[] | undefined): HttpError | null {
    if (required !== undefined && required.length === 0) return null;
    const current = new Map<string, string>();
    for (const s of statuses) if (s.sha === sha && s.owner === r.owner && s.repo === r.name) current.set(s.context, s.state);
    const checked =
      required === undefined
        ? [...current].map(([context, state]) => ({ context, state }))
        : required.map((context) => ({ context, state: current.get(context) ?? 'missing' }));
    if (checked.every((c) => c.state === 'success')) return null;
    return new HttpError(409, {
      message: `Conflict: Commit status checks failed for ${ref}.`,
      errors: [{ contexts: checked, resource: 'Deployment', field: 'required_contexts', code: 'invalid' }],
      documentation_url: DOCS,
      status: '409',
    });
  }

  async function createDeployment(ctx: Ctx, r: RepoEntry): Promise<void> {
    const body = await readJsonBody(ctx.req);
    if (body.ref === undefined || body.ref === null) {
      throw new HttpError(422, { message: 'Invalid request.\n\n"ref" wasn\'t supplied.', documentation_url: DOCS, status: '422' });
    }
    if (typeof body.ref !== 'string') throw invalidField('ref', 'ref is not a string');
    const ref = body.ref;
    const environment = optionalString(body, 'environment') ?? 'production';
    const task = optionalString(body, 'task') ?? 'deploy';
    const description = optionalString(body, 'description') ?? '';
    const autoMerge = optionalBoolean(body, 'auto_merge');
    const transient = optionalBoolean(body, 'transient_environment');
    const production = optionalBoolean(body, 'production_environment');
    let required: string[] | undefined;
    if (body.required_contexts !== undefined && body.required_contexts !== null) {
      if (!Array.isArray(body.required_contexts) || !body.required_contexts.every((c) => typeof c === 'string')) {
        throw invalidField('required_contexts', 'required_contexts is not an array of strings');
      }
      required = body.required_contexts as string[];
    }
    const payload = body.payload === undefined || body.payload === null ? {} : body.payload;
    if (typeof payload !== 'string' && (typeof payload !== 'object' || Array.isArray(payload))) {
      throw invalidField('payload', 'payload is not an object or a JSON string');
    }

    const sha = await resolveCommit(r.repo.dir, ref);
    if (!sha) throw new HttpError(422, { message: `No ref found for: ${ref}`, documentation_url: DOCS, status: '422' });
    // A 202 (auto-merged) is an answer, not an error, but it creates no deployment either.
    const refusal = (autoMerge === false ? null : await autoMergeRefusal(r, ref, sha)) ?? statusCheckRefusal(r, ref, sha, required);
    if (refusal) return send(ctx.res, refusal.status, refusal.body, apiHeaders());

    const stamp = now();
    const deployment: RecordedDeployment = {
      owner: r.owner,
      repo: r.name,
      id: nextDeploymentId++,
      sha,
      ref,
      task,
      environment,
      original_environment: environment,
      description,
      payload,
      transient_environment: transient ?? false,
      // Documented default: true for "production", false for any other environment.
      production_environment: production ?? environment === 'production',
      auto_merge: autoMerge,
      required_contexts: required,
      created_at: stamp,
      updated_at: stamp,
    };
    deployments.push(deployment);
    send(ctx.res, 201, deploymentJson(r, deployment), { ...apiHeaders(), location: `${repoApiUrl(r)}/deployments/${deployment.id}` });
  }

  function listDeployments(ctx: Ctx, r: RepoEntry): void {
    const q = ctx.url.searchParams;
    const list = deployments
      .filter(
        (d) =>
          d.owner === r.owner &&
          d.repo === r.name &&
          (!q.has('sha') || d.sha === q.get('sha')) &&
          (!q.has('ref') || d.ref === q.get('ref')) &&
          (!q.has('task') || d.task === q.get('task')) &&
          (!q.has('environment') || d.environment === q.get('environment')),
      )
      .reverse(); // newest first
    sendPage(ctx, list.map((d) => deploymentJson(r, d)));
  }

  function findDeployment(r: RepoEntry, id: string): RecordedDeployment {
    const d = /^\d+$/.test(id) ? deployments.find((x) => x.id === Number(id) && x.owner === r.owner && x.repo === r.name) : undefined;
    if (!d) throw notFound();
    return d;
  }

  const statusesOf = (d: RecordedDeployment) => deploymentStatusList.filter((s) => s.deployment_id === d.id);

  async function createDeploymentStatus(ctx: Ctx, r: RepoEntry, d: RecordedDeployment): Promise<void> {
    const body = await readJsonBody(ctx.req);
    if (body.state === undefined || body.state === null) {
      throw new HttpError(422, { message: 'Invalid request.\n\n"state" wasn\'t supplied.', documentation_url: DOCS, status: '422' });
    }
    const fail = (field: string, message: string) =>
      validationFailed([{ resource: 'DeploymentStatus', code: 'custom', field, message }]);
    if (typeof body.state !== 'string' || !DEPLOYMENT_STATES.includes(body.state)) {
      throw fail('state', 'state is not included in the list');
    }
    const str = (field: string): string | undefined => {
      const v = body[field];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw fail(field, `${field} is not a string`);
      return v;
    };
    const description = str('description') ?? '';
    // GitHub counts characters, not UTF-16 units or bytes.
    if (Array.from(description).length > 140) {
      throw fail('description', 'description is too long (maximum is 140 characters)');
    }
    if (body.auto_inactive !== undefined && body.auto_inactive !== null && typeof body.auto_inactive !== 'boolean') {
      throw fail('auto_inactive', 'auto_inactive is not a boolean');
    }
    // Setting log_url sets target_url to the same value.
    const logUrl = str('log_url') ?? str('target_url') ?? '';
    const environmentUrl = str('environment_url') ?? '';
    // Not given: the environment of the deployment's previous status, else the deployment's.
    const environment = str('environment') ?? statusesOf(d).at(-1)?.environment ?? d.environment;

    const stamp = now();
    const status: RecordedDeploymentStatus = {
      deployment_id: d.id,
      id: nextDeploymentStatusId++,
      state: body.state,
      description,
      environment,
      log_url: logUrl,
      target_url: logUrl,
      environment_url: environmentUrl,
      created_at: stamp,
      added_by_github: false,
    };
    deploymentStatusList.push(status);
    d.environment = environment;
    d.updated_at = stamp;

    // auto_inactive (default true): a success marks the prior non-transient,
    // non-production deployments of the same repository and environment whose
    // current state is success inactive, with a status GitHub adds itself.
    if (status.state === 'success' && body.auto_inactive !== false) {
      for (const prior of deployments) {
        if (prior.id >= d.id || prior.owner !== d.owner || prior.repo !== d.repo) continue;
        if (prior.environment !== environment || prior.transient_environment || prior.production_environment) continue;
        const latest = statusesOf(prior).at(-1);
        if (latest?.state !== 'success') continue;
        deploymentStatusList.push({
          ...latest,
          id: nextDeploymentStatusId++,
          state: 'inactive',
          description: '',
          created_at: stamp,
          added_by_github: true,
        });
        prior.updated_at = stamp;
      }
    }
    send(ctx.res, 201, deploymentStatusJson(r, status), {
      ...apiHeaders(),
      location: `${repoApiUrl(r)}/deployments/${d.id}/statuses/${status.id}`,
    });
  }

  async function deploymentRoutes(ctx: Ctx, r: RepoEntry, rest: string[]): Promise<void> {
    const method = ctx.req.method;
    if (rest.length === 0) {
      if (method === 'GET') return listDeployments(ctx, r);
      if (method === 'POST') return createDeployment(ctx, r);
      throw notFound();
    }
    const d = findDeployment(r, rest[0]);
    if (rest.length === 1 && method === 'GET') return send(ctx.res, 200, deploymentJson(r, d), apiHeaders());
    if (rest[1] === 'statuses' && rest.length === 2) {
      if (method === 'GET') return sendPage(ctx, statusesOf(d).reverse().map((s) => deploymentStatusJson(r, s))); // newest first
      if (method === 'POST') return createDeploymentStatus(ctx, r, d);
    }
    if (rest[1] === 'statuses' && rest.length === 3 && method === 'GET') {
      const status = statusesOf(d).find((s) => String(s.id) === rest[2]);
      if (!status) throw notFound();
      return send(ctx.res, 200, deploymentStatusJson(r, status), apiHeaders());
    }
    throw notFound();
  }

  // ------------------------------------------------------------ dispatch

  async function repoRoutes(ctx: Ctx, r: RepoEntry, rest: string[]): Promise<void> {
    const method = ctx.req.method;
    const [head, ...tail] = rest;
    const joined = tail.join('/');
    if (head === undefined && method === 'GET') return send(ctx.res, 200, repoJson(r), apiHeaders());
    if (head === 'contents' && method === 'GET') return getContents(ctx, r, joined);
    if (head === 'tarball' && method === 'GET') return redirectToArchive(ctx, r, 'tar.gz', joined);
    if (head === 'zipball' && method === 'GET') return redirectToArchive(ctx, r, 'zip', joined);
    if (head === 'commits' && method === 'GET' && tail.length > 0) {
      const last = tail[tail.length - 1];
      const ref = tail.slice(0, -1).join('/');
      if (last === 'statuses' && ref) return listStatuses(ctx, r, ref);
      if (last === 'status' && ref) return combinedStatus(ctx, r, ref);
      if (last === 'check-runs' && ref) return checks.listForRef(ctx, r, ref);
      return getCommit(ctx, r, joined);
    }
    if (head === 'statuses' && tail.length > 0) {
      if (method === 'POST') return createStatus(ctx, r, joined);
      if (method === 'GET') return listStatuses(ctx, r, joined);
    }
    if (head === 'hooks') return hookRoutes(ctx, r, tail);
    if (head === 'check-runs') return checks.routes(ctx, r, tail);
    if (head === 'issues') return comments.routes(ctx, r, tail);
    if (head === 'deployments') return deploymentRoutes(ctx, r, tail);
    if (head === 'git' && tail[0] === 'trees' && tail.length > 1 && method === 'GET') return getTree(ctx, r, tail.slice(1).join('/'));
    throw notFound();
  }

  async function handleApi(ctx: Ctx): Promise<void> {
    if (intercept(ctx, 'api')) return;
    const [first, ...rest] = ctx.segments;
    const method = ctx.req.method ?? 'GET';
    // The App's own endpoints take a JWT (fake-github-app.ts); everything else the token or an installation token.
    if (first === 'app' && rest[0] === 'hook' && rest[1] === 'deliveries') return deliveries.appRoutes(ctx, apps.authenticateJwt(ctx), rest.slice(2));
    if (first === 'app') return apps.appRoutes(ctx, rest);
    if (method === 'GET' && rest.length === 3 && first === 'repos' && rest[2] === 'installation') return apps.accountInstallation(ctx, rest[0], rest[1]);
    if (method === 'GET' && rest.length === 2 && (first === 'orgs' || first === 'users') && rest[1] === 'installation') {
      return apps.accountInstallation(ctx, rest[0]);
    }
    apps.authenticate(ctx, opts.token);
    if (first === 'user' && rest.length === 0 && method === 'GET') return apps.getUser(ctx);
    if (first === 'installation' && rest[0] === 'repositories' && rest.length === 1 && method === 'GET') return apps.installationRepositories(ctx);
    if (first === 'rate_limit' && rest.length === 0 && ctx.req.method === 'GET') {
      const reset = Math.floor(Date.now() / 1000) + 3600;
      const core = { limit: 5000, remaining: 4999, reset, used: 1, resource: 'core' };
      const search = { limit: 30, remaining: 30, reset, used: 0, resource: 'search' };
      const graphql = { limit: 5000, remaining: 5000, reset, used: 0, resource: 'graphql' };
      return send(ctx.res, 200, { resources: { core, search, graphql }, rate: core }, apiHeaders());
    }
    if (first === 'repos' && rest.length >= 2) {
      const r = findRepo(rest[0], rest[1]);
      apps.authorizeRepo(ctx, r, apiRoute(method, ctx.segments)?.route);
      return repoRoutes(ctx, r, rest.slice(2));
    }
    throw notFound();
  }

  async function handleCodeload(ctx: Ctx): Promise<void> {
    if (intercept(ctx, 'codeload')) return;
    const [owner, name, kind, ...refParts] = ctx.segments;
    const entry = owner && name ? repos.get(`${owner}/${name}`.toLowerCase()) : undefined;
    const format = kind === 'legacy.tar.gz' ? 'tar.gz' : kind === 'legacy.zip' ? 'zip' : undefined;
    const sha = entry && format ? await resolveCommit(entry.repo.dir, refParts.join('/')) : null;
    if (!entry || !format || !sha) return send(ctx.res, 404, '404: Not Found', { 'content-type': 'text/plain; charset=utf-8' });

    const prefix = `${entry.owner}-${entry.name}-${sha.slice(0, 7)}`;
    ctx.res.writeHead(200, {
      'content-type': format === 'tar.gz' ? 'application/x-gzip' : 'application/zip',
      'content-disposition': `attachment; filename=${prefix}.${format}`,
      'x-github-request-id': requestId(),
    });
    if (ctx.req.method === 'HEAD') return void ctx.res.end();
    // git archive writes a pax global header holding the commit id, as GitHub's tarballs do.
    const child = spawn('git', ['-C', entry.repo.dir, 'archive', `--format=${format}`, `--prefix=${prefix}/`, sha], {
      env: gitEnv,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.add(child);
    child.stdout!.pipe(ctx.res);
    child.on('close', (code) => {
      children.delete(child);
      if (code !== 0) ctx.res.destroy(); // truncated body, not a silently short archive
    });
    ctx.res.on('close', () => {
      if (child.exitCode === null) child.kill();
    });
  }

  function mount(server: Server, handler: (ctx: Ctx) => Promise<void>): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://fake.invalid');
      let segments: string[];
      try {
        segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      } catch {
        send(res, 400, { message: 'Bad Request' });
        return;
      }
      handler({ req, res, url, segments }).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        if (err instanceof HttpError) return send(res, err.status, err.body, { ...apiHeaders(), ...err.headers });
        send(res, 500, { message: `fake-github: ${err instanceof Error ? err.message : String(err)}` });
      });
    });
  }

  mount(apiServer, handleApi);
  mount(codeloadServer, handleCodeload);

  return {
    apiUrl,
    codeloadUrl,
    statuses,
    requests,
    requestsTo,
    requestCount: (filter) => requestsTo(filter).length,
    hooks,
    deployments,
    deploymentsFor: (owner, repo) =>
      deployments.filter((d) => d.owner.toLowerCase() === owner.toLowerCase() && d.repo.toLowerCase() === repo.toLowerCase()),
    deploymentStatuses: (deploymentId) => deploymentStatusList.filter((s) => s.deployment_id === deploymentId),
    addRepo(owner, name, repo, addOpts = {}) {
      const key = `${owner}/${name}`;
      const previous = repos.get(key.toLowerCase());
      repos.set(key.toLowerCase(), {
        owner,
        name,
        key,
        id: previous?.id ?? nextRepoId++,
        repo,
        defaultBranch: addOpts.defaultBranch ?? repo.branch,
        truncateTreesOver: addOpts.truncateTreesOver,
      });
      if (!hooks.has(key)) hooks.set(key, []);
    },
    statusesFor: (sha) => statuses.filter((s) => s.sha === sha),
    createApp: apps.createApp,
    installApp: apps.installApp,
    setAppWebhook: apps.setAppWebhook,
    expireInstallationTokens: apps.expireInstallationTokens,
    issuedTokens: apps.issuedTokens,
    ...checks.accessors,
    ...comments.accessors,
    ...deliveries.accessors,
    failNext(match, ...responses) {
      if (responses.length > 0) canned.push({ ...match, responses: [...responses] });
    },
    async close() {
      await deliveries.accessors.deliveriesSettled();
      for (const child of children) child.kill();
      await Promise.all([closeServer(apiServer), closeServer(codeloadServer)]);
    },
  };
}

// ---------------------------------------------------------------- routes for the request log

interface RouteMatch {
  route: string;
  params: Record<string, string>;
}

/**
 * Names an API request by its @octokit/rest route, so tests can count calls
 * per endpoint without matching paths. Mirrors handleApi/repoRoutes/hookRoutes:
 * a route added there belongs here too.
 */
function apiRoute(method: string, segments: string[]): RouteMatch | undefined {
  const m = (route: string, params: Record<string, string> = {}): RouteMatch => ({ route: `${method} ${route}`, params });
  const app = appRouteName(method, segments);
  if (app) return app;
  const [first, ...rest] = segments;
  if (first === 'user' && rest.length === 0) return m('/user');
  if (first === 'rate_limit' && rest.length === 0) return m('/rate_limit');
  if (first !== 'repos' || rest.length < 2) return undefined;
  const [owner, repo, head, ...tail] = rest;
  const base = '/repos/{owner}/{repo}';
  const joined = tail.join('/');
  const p = (extra: Record<string, string> = {}) => ({ owner, repo, ...extra });
  if (head === undefined) return m(base, p());
  const named = checkRouteName(head, tail) ?? commentRouteName(head, tail);
  if (named) return m(named.route, p(named.params));
  if (head === 'contents') return m(`${base}/contents/{path}`, p({ path: joined }));
  if (head === 'tarball' || head === 'zipball') return m(`${base}/${head}/{ref}`, p({ ref: joined }));
  if (head === 'commits' && tail.length > 0) {
    const last = tail[tail.length - 1];
    const ref = tail.slice(0, -1).join('/');
    if ((last === 'statuses' || last === 'status') && ref) return m(`${base}/commits/{ref}/${last}`, p({ ref }));
    return m(`${base}/commits/{ref}`, p({ ref: joined }));
  }
  if (head === 'statuses' && tail.length > 0) return m(`${base}/statuses/{sha}`, p({ sha: joined }));
  if (head === 'git' && tail[0] === 'trees' && tail.length > 1) return m(`${base}/git/trees/{tree_sha}`, p({ tree_sha: tail.slice(1).join('/') }));
  if (head === 'hooks') {
    if (tail.length === 0) return m(`${base}/hooks`, p());
    const hook = p({ hook_id: tail[0] });
    const sub = tail.slice(1).join('/');
    if (sub === '') return m(`${base}/hooks/{hook_id}`, hook);
    if (sub === 'config' || sub === 'pings' || sub === 'tests') return m(`${base}/hooks/{hook_id}/${sub}`, hook);
    const delivery = deliveryRouteName(tail.slice(1));
    if (delivery) return m(delivery.route, { ...hook, ...delivery.params });
  }
  if (head === 'deployments') {
    if (tail.length === 0) return m(`${base}/deployments`, p());
    const deployment = p({ deployment_id: tail[0] });
    if (tail.length === 1) return m(`${base}/deployments/{deployment_id}`, deployment);
    if (tail[1] === 'statuses' && tail.length === 2) return m(`${base}/deployments/{deployment_id}/statuses`, deployment);
    if (tail[1] === 'statuses' && tail.length === 3) {
      return m(`${base}/deployments/{deployment_id}/statuses/{status_id}`, { ...deployment, status_id: tail[2] });
    }
  }
  return undefined;
}

function codeloadRoute(method: string, segments: string[]): RouteMatch | undefined {
  const [owner, repo, kind, ...refParts] = segments;
  if (!owner || !repo || (kind !== 'legacy.tar.gz' && kind !== 'legacy.zip')) return undefined;
  return { route: `${method} /{owner}/{repo}/${kind}/{ref}`, params: { owner, repo, ref: refParts.join('/') } };
}

function listen(server: Server, host: string, urlHost: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://${urlHost}:${port}`);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive sockets from fetch/undici would otherwise hold close() open.
    server.closeAllConnections();
  });
}
