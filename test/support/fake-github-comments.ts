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
import { TOKEN_USER, userJson, type FakeApps, type FakeCore, type UserJson } from './fake-github-app.js';

/**
 * Issue (and pull request) comments for the fake GitHub: GET|POST
 * /repos/{o}/{r}/issues/{n}/comments, GET|PATCH /repos/{o}/{r}/issues/comments/{id}.
 * A comment's user is whoever wrote it: the personal token's dockhook-bot, or
 * an App's <slug>[bot] for its installation tokens. The fake keeps no issues:
 * every positive number is an issue or pull request that exists.
 */

export interface CommentAuthor {
  login: string;
  id: number;
  type: 'User' | 'Bot';
}

export interface RecordedComment {
  owner: string;
  repo: string;
  number: number;
  id: number;
  body: string;
  user: CommentAuthor;
  /** The App whose installation token wrote it, or null. */
  app_id: number | null;
  created_at: string;
  updated_at: string;
  /** Each edit through PATCH, in order: who made it and the body it set. */
  edits: { by: CommentAuthor; body: string; at: string }[];
}

export interface FakeGitHubComments {
  /** The comments on an issue or pull request (owner and repo case-insensitive), oldest first, with their current body. */
  commentsOn(owner: string, repo: string, number: number): RecordedComment[];
  /** A comment written by someone else (a person, type User), as if through GitHub's UI. */
  addComment(owner: string, repo: string, number: number, c: { login: string; body: string }): RecordedComment;
}

/** GitHub's limit on a comment body. */
const MAX_BODY = 65536;

export function createComments(core: FakeCore, apps: FakeApps) {
  const comments: RecordedComment[] = [];
  // Comment ids and issue numbers must not be mixed up by a client: far apart.
  let nextId = 1_500_000_001;
  const repoUrl = (r: RepoEntry) => `${core.apiUrl}/repos/${r.owner}/${r.name}`;

  function author(ctx: Ctx): { user: CommentAuthor; appId: number | null } {
    const caller = ctx.caller;
    if (caller?.kind === 'installation') {
      const bot = apps.botUser(caller.installation.app);
      return { user: { login: bot.login, id: bot.id, type: 'Bot' }, appId: caller.installation.app.id };
    }
    return { user: { ...TOKEN_USER }, appId: null };
  }

  function commentJson(r: RepoEntry, c: RecordedComment) {
    const app = c.app_id === null ? undefined : apps.app(c.app_id);
    const user: UserJson = userJson(c.user.login, c.user.type, c.user.id);
    return {
      url: `${repoUrl(r)}/issues/comments/${c.id}`,
      html_url: `https://github.com/${r.owner}/${r.name}/issues/${c.number}#issuecomment-${c.id}`,
      issue_url: `${repoUrl(r)}/issues/${c.number}`,
      id: c.id,
      node_id: Buffer.from(`012:IssueComment${c.id}`).toString('base64'),
      user,
      created_at: c.created_at,
      updated_at: c.updated_at,
      author_association: c.user.type === 'Bot' ? 'NONE' : 'MEMBER',
      body: c.body,
      reactions: {
        url: `${repoUrl(r)}/issues/comments/${c.id}/reactions`,
        total_count: 0, '+1': 0, '-1': 0, laugh: 0, hooray: 0, confused: 0, heart: 0, rocket: 0, eyes: 0,
      },
      performed_via_github_app: app ? apps.appJson(app) : null,
    };
  }

  function issueNumber(raw: string | undefined): number {
    if (!raw || !/^[1-9]\d{0,9}$/.test(raw)) throw notFound();
    return Number(raw);
  }

  async function readBody(ctx: Ctx): Promise<string> {
    const body = await readJsonBody(ctx.req);
    if (body.body === undefined || body.body === null) throw invalidRequest('"body" wasn\'t supplied.');
    if (typeof body.body !== 'string') throw invalidRequest(`For 'properties/body', ${JSON.stringify(body.body)} is not a string.`);
    if (Array.from(body.body).length > MAX_BODY) {
      throw validationFailed([
        { resource: 'IssueComment', code: 'unprocessable', field: 'data', message: `Body is too long (maximum is ${MAX_BODY} characters)` },
      ]);
    }
    return body.body;
  }

  const on = (r: RepoEntry) => comments.filter((c) => c.owner === r.owner && c.repo === r.name);

  async function create(ctx: Ctx, r: RepoEntry, number: number): Promise<void> {
    const body = await readBody(ctx);
    const { user, appId } = author(ctx);
    const stamp = now();
    const c: RecordedComment = { owner: r.owner, repo: r.name, number, id: nextId++, body, user, app_id: appId, created_at: stamp, updated_at: stamp, edits: [] };
    comments.push(c);
    send(ctx.res, 201, commentJson(r, c), { ...apiHeaders(), location: `${repoUrl(r)}/issues/comments/${c.id}` });
  }

  function list(ctx: Ctx, r: RepoEntry, number: number): void {
    const since = ctx.url.searchParams.get('since');
    let sinceMs: number | undefined;
    if (since !== null) {
      sinceMs = Date.parse(since);
      if (Number.isNaN(sinceMs)) {
        throw new HttpError(422, { message: `Invalid value for "since": ${since} is not a valid ISO 8601 timestamp`, documentation_url: DOCS, status: '422' });
      }
    }
    // Oldest first; `since` keeps those updated at or after it.
    const found = on(r).filter((c) => c.number === number && (sinceMs === undefined || Date.parse(c.updated_at) >= sinceMs));
    const page = pageOf(ctx, core.apiUrl, found.map((c) => commentJson(r, c)));
    send(ctx.res, 200, page.items, page.headers);
  }

  function find(r: RepoEntry, id: string | undefined): RecordedComment {
    const c = id && /^\d+$/.test(id) ? on(r).find((x) => x.id === Number(id)) : undefined;
    if (!c) throw notFound();
    return c;
  }

  async function update(ctx: Ctx, r: RepoEntry, c: RecordedComment): Promise<void> {
    const body = await readBody(ctx);
    const stamp = now();
    // Anyone who may write to the repository may edit any comment, as on GitHub; the edit says who.
    c.edits.push({ by: author(ctx).user, body, at: stamp });
    c.body = body;
    c.updated_at = stamp;
    send(ctx.res, 200, commentJson(r, c), apiHeaders());
  }

  /** /repos/{o}/{r}/issues/… */
  async function routes(ctx: Ctx, r: RepoEntry, rest: string[]): Promise<void> {
    const method = ctx.req.method;
    if (rest[0] === 'comments' && rest.length === 2) {
      const c = find(r, rest[1]);
      if (method === 'GET') return send(ctx.res, 200, commentJson(r, c), apiHeaders());
      if (method === 'PATCH') return update(ctx, r, c);
    }
    if (rest.length === 2 && rest[1] === 'comments') {
      const number = issueNumber(rest[0]);
      if (method === 'GET') return list(ctx, r, number);
      if (method === 'POST') return create(ctx, r, number);
    }
    throw notFound();
  }

  const accessors: FakeGitHubComments = {
    commentsOn: (owner, repo, number) =>
      comments.filter((c) => c.owner.toLowerCase() === owner.toLowerCase() && c.repo.toLowerCase() === repo.toLowerCase() && c.number === number),
    addComment(owner, repo, number, { login, body }) {
      const r = core.findRepo(owner, repo);
      const stamp = now();
      const user = userJson(login, 'User');
      const c: RecordedComment = {
        owner: r.owner, repo: r.name, number, id: nextId++, body,
        user: { login, id: user.id, type: 'User' }, app_id: null, created_at: stamp, updated_at: stamp, edits: [],
      };
      comments.push(c);
      return c;
    },
  };
  return { routes, accessors };
}

/** Request-log names (see apiRoute in fake-github.ts), for the part after /repos/{owner}/{repo}. */
export function commentRouteName(head: string | undefined, tail: string[]): { route: string; params: Record<string, string> } | undefined {
  if (head !== 'issues' || tail.length !== 2) return undefined;
  const base = '/repos/{owner}/{repo}/issues';
  if (tail[0] === 'comments') return { route: `${base}/comments/{comment_id}`, params: { comment_id: tail[1]! } };
  if (tail[1] === 'comments') return { route: `${base}/{issue_number}/comments`, params: { issue_number: tail[0]! } };
  return undefined;
}
