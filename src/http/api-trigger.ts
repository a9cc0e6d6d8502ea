import { randomUUID } from 'node:crypto';
import express, { Router } from 'express';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { GitHubClient } from '../github.js';
import type { GitHubAccess } from '../github/access.js';
import type { BuildRequest } from '../intake.js';
import type { Logger } from '../log.js';
import type { BuildRecord, Store } from '../store/store.js';
import { isStoreUnavailable } from '../store/store-errors.js';
import { requireApiToken } from './api-auth.js';
import { isValidRepositoryName } from '../docker-reference.js';

export interface TriggerApiDeps {
  config: Pick<Config, 'apiToken' | 'apiTokenReads'>;
  store: Store;
  github: GitHubAccess;
  log: Logger;
  /** Wakes the worker after a build is queued. */
  onQueued: () => void;
  announceQueued?: (build: BuildRecord) => void;
  isStopping: () => boolean;
}

interface TriggerBody {
  owner: string;
  repo: string;
  ref: string;
  force: boolean;
  images?: string[];
}



// GitHub's own rules: owners are letters, digits and '-'; repository names add '.' and '_'.
const REPO = /^([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})$/;
// A usable subset of git's ref rules: no spaces, control characters, '..', '~^:?*[\' or a leading '-' or '/'.
const REF = /^(?![-/])(?!.*\.\.)[A-Za-z0-9._\/-]{1,255}$/;
const FULL_SHA = /^[0-9a-f]{40}$/;

/** The body, checked field by field so the 400 names the one that is wrong. */
function parseBody(body: unknown): TriggerBody {
  const usage = { hint: 'send JSON {"repo": "owner/name", "ref": "<branch, tag or commit sha>", "force": false, "images": ["api"]} with Content-Type: application/json' };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError(400, 'body must be a JSON object', usage);
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['repo', 'ref', 'force', 'images'].includes(k));
  if (unknown.length) throw new AppError(400, `unknown field ${unknown.join(', ')}`, usage);
  if (b.repo === undefined) throw new AppError(400, 'repo is required', usage);
  const repo = typeof b.repo === 'string' ? REPO.exec(b.repo) : null;
  if (!repo || repo[2] === '.' || repo[2] === '..') throw new AppError(400, 'repo must be "owner/name" (a GitHub repository)', usage);
  if (b.ref === undefined) throw new AppError(400, 'ref is required', usage);
  if (typeof b.ref !== 'string' || !REF.test(b.ref)) throw new AppError(400, 'ref must be a branch, tag or commit sha', usage);
  if (b.force !== undefined && typeof b.force !== 'boolean') throw new AppError(400, 'force must be true or false', usage);
  let images: string[] | undefined;
  if (b.images !== undefined) {
    if (!Array.isArray(b.images) || b.images.length === 0 || b.images.length > 50) throw new AppError(400, 'images must be a non-empty array of service names from dockerInfo.json', usage);
    const badName = b.images.find((n) => typeof n !== 'string' || !isValidRepositoryName(n));
    if (badName !== undefined) throw new AppError(400, `images: ${JSON.stringify(badName)} is not a service name`, usage);
    images = [...new Set(b.images as string[])];
  }
  return { owner: repo[1]!, repo: repo[2]!, ref: b.ref, force: b.force === true, images };
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown })?.status;
  return typeof status === 'number' ? status : undefined;
}

/** GitHub failures other than "not found": dockhook's GITHUB_TOKEN or GitHub itself, never the caller's request. */
function githubTrouble(err: unknown, what: string): AppError {
  const status = statusOf(err);
  if (status === 401) return new AppError(502, `GitHub refused GITHUB_TOKEN while ${what}`, { hint: 'check that GITHUB_TOKEN is valid', cause: err });
  const detail = err instanceof Error ? err.message : String(err);
  return new AppError(502, `GitHub error while ${what}: ${detail}`, { cause: err });
}

/** html_url and default_branch; 404 when the repository does not exist or the token cannot see it (GitHub does not tell which). */
async function readRepository(octokit: GitHubClient, owner: string, repo: string): Promise<{ htmlUrl: string; defaultBranch: string }> {
  try {
    const { data } = await octokit.rest.repos.get({ owner, repo });
    return { htmlUrl: data.html_url, defaultBranch: data.default_branch };
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new AppError(404, 'repository not found or GITHUB_TOKEN cannot read it', { hint: `check ${owner}/${repo} and that the token has access to it` });
    }
    throw githubTrouble(err, `reading ${owner}/${repo}`);
  }
}

/** The commit a branch, tag or (short) sha names. Asks for the sha media type: the full commit JSON carries the whole diff. */
async function resolveRef(octokit: GitHubClient, owner: string, repo: string, ref: string): Promise<string> {
  let data: unknown;
  try {
    ({ data } = await octokit.request('GET /repos/{owner}/{repo}/commits/{ref}', { owner, repo, ref, headers: { accept: 'application/vnd.github.sha' } }));
  } catch (err) {
    // 422 "No commit found for SHA", 404 for refs GitHub cannot parse, 409 for an empty repository.
    const status = statusOf(err);
    if (status === 404 || status === 422 || status === 409) throw new AppError(422, `ref ${ref} not found in ${owner}/${repo}`, { hint: 'use a branch, a tag or a commit sha of that repository' });
    throw githubTrouble(err, `resolving ${ref} in ${owner}/${repo}`);
  }
  const text = typeof data === 'string' ? data : data instanceof ArrayBuffer ? Buffer.from(data).toString('utf8') : (data as { sha?: unknown })?.sha;
  const sha = typeof text === 'string' ? text.trim() : '';
  if (!FULL_SHA.test(sha)) throw new AppError(502, `GitHub answered the commit of ${ref} with something that is not a commit sha`);
  return sha;
}

/**
 * The branch the build is "on". It decides whether `latest` may move (only for
 * the default branch), so a tag or a sha gives '' and never moves it.
 */
async function branchOf(octokit: GitHubClient, owner: string, repo: string, ref: string, defaultBranch: string): Promise<string> {
  if (ref === defaultBranch) return ref;
  if (FULL_SHA.test(ref)) return '';
  try {
    await octokit.request('GET /repos/{owner}/{repo}/branches/{branch}', { owner, repo, branch: ref });
    return ref;
  } catch (err) {
    if (statusOf(err) === 404) return ''; // a tag or a short sha
    throw githubTrouble(err, `checking whether ${ref} is a branch of ${owner}/${repo}`);
  }
}

/**
 * POST /api/builds {"repo": "owner/name", "ref": "...", "force"?, "images"?}:
 * queues the same build a merge of that commit would, without a pull
 * request; `force` rebuilds what is unchanged or already built, `images`
 * limits a multi-image dockerInfo.json to those entries. Needs API_TOKEN.
 */
export function triggerApiRouter(deps: TriggerApiDeps): Router {
  const router = Router();
  const write = requireApiToken({ apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads }, 'write');

  // The token is checked before the body is even read.
  router.post('/api/builds', write, express.json({ limit: '16kb', type: () => true }), async (req, res) => {
    if (deps.isStopping()) throw new AppError(503, 'dockhook is shutting down', { hint: 'try again once it is back' });
    const { owner, repo, ref, force, images } = parseBody(req.body);
    const octokit = await deps.github.forRepo(owner, repo);
    const repository = await readRepository(octokit, owner, repo);
    const sha = await resolveRef(octokit, owner, repo, ref);
    const branch = await branchOf(octokit, owner, repo, ref, repository.defaultBranch);
    const request: BuildRequest = {
      deliveryId: `manual-${randomUUID()}`,
      trigger: 'manual',
      owner,
      repo,
      repoUrl: repository.htmlUrl,
      defaultBranch: repository.defaultBranch,
      branch,
      sha,
      // Orders this build among merges of the image, and lets it move `latest` only if nothing later did.
      mergedAt: new Date().toISOString(),
      ...(force ? { force } : {}),
      ...(images ? { images } : {}),
    };
    let result;
    try {
      result = await deps.store.enqueue(request);
    } catch (err) {
      if (isStoreUnavailable(err)) throw err;
      deps.log.error({ err }, 'could not record the manual build');
      throw new AppError(503, 'could not record the build', { hint: 'check DATA_DIR is writable and has space', cause: err });
    }
    const log = deps.log.child({ repo: `${owner}/${repo}`, sha, ref, build: result.build.id, trigger: 'manual' });
    if (result.outcome === 'duplicate') {
      log.info({ state: result.build.state }, 'manual build asked for a commit that already has a build');
      res.status(200).json({ duplicate: result.build.id, sha, hint: force ? 'a forced build of this commit is already queued or running' : 'send "force": true to build it again' });
      return;
    }
    log.info({ branch, force, images }, 'manual build queued');
    res.status(202).json({ build: result.build.id, sha, branch, force, images: images ?? null });
    deps.onQueued();
    deps.announceQueued?.(result.build);
  });
  return router;
}
