import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GitRepo } from './git-repo.js';
import type { Caller } from './fake-github-app.js';

/**
 * What the fake GitHub's parts share: GitHub's error bodies and headers, JSON
 * bodies, paging, and the request context and repository entry the dispatcher
 * (fake-github.ts) hands to each endpoint set (fake-github-app.ts, -checks,
 * -comments, -deliveries).
 */

export const DOCS = 'https://docs.github.com/rest';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

export const notFound = () => new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
export const validationFailed = (errors: Record<string, unknown>[]) =>
  new HttpError(422, { message: 'Validation Failed', errors, documentation_url: DOCS, status: '422' });
/** GitHub's JSON-schema refusals: `Invalid request.\n\n<detail>`. */
export const invalidRequest = (detail: string) =>
  new HttpError(422, { message: `Invalid request.\n\n${detail}`, documentation_url: DOCS, status: '422' });

/** The request being served; `caller` is set once the credentials are known. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Decoded path segments. */
  segments: string[];
  caller?: Caller;
}

/** A repository as addRepo registered it. */
export interface RepoEntry {
  owner: string;
  name: string;
  /** "owner/name" as given to addRepo. */
  key: string;
  id: number;
  repo: GitRepo;
  defaultBranch: string;
  truncateTreesOver?: number;
}

export function requestId(): string {
  const hex = (n: number) => randomBytes(n).toString('hex').toUpperCase();
  return `${hex(2)}:${hex(2)}:${hex(3)}:${hex(3)}:${hex(4)}`;
}

/** Headers GitHub puts on every API answer; clients read them for rate limiting. */
export function apiHeaders(): Record<string, string> {
  return {
    'x-github-request-id': requestId(),
    'x-github-api-version-selected': '2022-11-28',
    'x-ratelimit-limit': '5000',
    'x-ratelimit-remaining': '4999',
    'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
    'x-ratelimit-used': '1',
    'x-ratelimit-resource': 'core',
  };
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  let payload: Buffer | undefined;
  const out: Record<string, string> = { ...headers };
  if (body === undefined || body === null) {
    payload = undefined;
  } else if (Buffer.isBuffer(body)) {
    payload = body;
  } else if (typeof body === 'string') {
    payload = Buffer.from(body);
  } else {
    payload = Buffer.from(JSON.stringify(body));
    out['content-type'] ??= 'application/json; charset=utf-8';
  }
  out['content-length'] = String(payload?.length ?? 0);
  res.writeHead(status, out);
  res.end(payload);
}

export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to GitHub's answer for unparsable bodies
  }
  throw new HttpError(400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' });
}

/** ISO 8601 without milliseconds, as GitHub writes times. */
export const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
export const now = () => isoSeconds(new Date());

/**
 * One page of `list` as GitHub pages lists (per_page default 30, at most 100;
 * page from 1), with the Link header octokit.paginate follows.
 */
export function pageOf<T>(ctx: Ctx, apiUrl: string, list: T[]): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(ctx.url.searchParams.get('per_page')) || 30));
  const page = Math.max(1, Number(ctx.url.searchParams.get('page')) || 1);
  const last = Math.max(1, Math.ceil(list.length / perPage));
  const headers = apiHeaders();
  if (last > 1) {
    const at = (n: number) => {
      const q = new URLSearchParams(ctx.url.searchParams);
      q.set('per_page', String(perPage));
      q.set('page', String(n));
      return `<${apiUrl}${ctx.url.pathname}?${q}>`;
    };
    const links: string[] = [];
    if (page < last) links.push(`${at(page + 1)}; rel="next"`, `${at(last)}; rel="last"`);
    if (page > 1) links.push(`${at(1)}; rel="first"`, `${at(page - 1)}; rel="prev"`);
    if (links.length) headers.link = links.join(', ');
  }
  return { items: list.slice((page - 1) * perPage, page * perPage), headers };
}

/** Owner and repository names compare case-insensitively on GitHub. */
export const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** A stable positive id for a login (accounts the fake does not otherwise number). */
export function loginId(login: string): number {
  let h = 0;
  for (const ch of login.toLowerCase()) h = (h * 31 + ch.codePointAt(0)!) % 90_000_000;
  return 10_000_000 + h;
}
