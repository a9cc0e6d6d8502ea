import { AppError } from '../errors.js';
import type { BuildRecord, BuildState, Store, ListQuery } from '../store/store.js';

export const BUILD_STATES: readonly BuildState[] = ['queued', 'running', 'succeeded', 'failed'];
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

const WHOLE = /^[1-9][0-9]{0,15}$/;
// GitHub's rules: owner is letters, digits and dashes; a repository name may also hold '.' and '_'.
const REPO = /^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/;
const LIST_PARAMS = ['repo', 'state', 'limit', 'before'];

type Query = Record<string, unknown>;

/** A positive whole number, or undefined when the text is anything else (so callers choose 400 or 404). */
export function parseId(text: string): number | undefined {
  if (!WHOLE.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function requireBuildId(text: string): number {
  const id = parseId(text);
  if (id === undefined) throw new AppError(400, `build id must be a positive whole number, not "${text.slice(0, 40)}"`);
  return id;
}

// `?state=a&state=b` arrives as an array: refuse it rather than pick one silently.
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AppError(400, `${name} may be given once`);
  return value;
}

/**
 * The filters of GET /api/builds (and of the index page). Unknown parameters
 * are refused: a misspelt filter (`status=failed`) would otherwise quietly
 * answer every build.
 */
export function parseListQuery(query: Query): ListQuery {
  const unknown = Object.keys(query).filter((k) => !LIST_PARAMS.includes(k));
  if (unknown.length) throw new AppError(400, `unknown query parameter ${unknown.join(', ')}`, { hint: `use ${LIST_PARAMS.join(', ')}` });

  const repo = single(query, 'repo');
  if (repo !== undefined && !REPO.test(repo)) throw new AppError(400, 'repo must be owner/name, for example octo-org/hello');

  const state = single(query, 'state');
  if (state !== undefined && !BUILD_STATES.includes(state as BuildState)) {
    throw new AppError(400, `state must be one of ${BUILD_STATES.join(', ')}`);
  }

  const limitText = single(query, 'limit');
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    const n = parseId(limitText);
    if (n === undefined || n > MAX_LIMIT) throw new AppError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}`);
    limit = n;
  }

  const beforeText = single(query, 'before');
  let before: number | undefined;
  if (beforeText !== undefined) {
    before = parseId(beforeText);
    if (before === undefined) throw new AppError(400, 'before must be a build id (a positive whole number)');
  }

  return { repo, state: state as BuildState | undefined, limit, before };
}

/** The query string of the page after `lastId`, keeping the caller's filters. */
export function nextQuery(query: ListQuery, lastId: number, limitGiven: boolean): string {
  const params = new URLSearchParams();
  if (query.repo) params.set('repo', query.repo);
  if (query.state) params.set('state', query.state);
  if (limitGiven) params.set('limit', String(query.limit));
  params.set('before', String(lastId));
  return params.toString();
}

/** One page of builds, newest first, and the query of the next page (null on the last one). */
export async function pageOfBuilds(store: Store, query: ListQuery, limitGiven: boolean): Promise<{ builds: BuildRecord[]; next: string | null }> {
  // One extra row says whether another page exists, so the last page never links to an empty one.
  const rows = await store.list({ ...query, limit: query.limit + 1 });
  const builds = rows.slice(0, query.limit);
  const last = builds.at(-1);
  return { builds, next: rows.length > query.limit && last ? nextQuery(query, last.id, limitGiven) : null };
}
