import picomatch from 'picomatch';

/** What a delivery asks for, once it has been verified and understood. Plain data: it is what the queue stores. */
export interface BuildRequest {
  deliveryId: string;
  /** merge: a merged pull request; push: a push to a build branch (TRIGGER_PUSH); manual: POST /api/builds; rerun: GitHub's "Re-run" of a check run or suite. */
  trigger: 'merge' | 'push' | 'manual' | 'rerun';
  owner: string;
  repo: string;
  /** https://github.com/owner/repo — the image's org.opencontainers.image.source */
  repoUrl: string;
  defaultBranch: string;
  /** The branch the code landed on. */
  branch: string;
  /** The commit that landed (merge_commit_sha), never the PR head. */
  sha: string;
  /** When the merge landed; orders builds of one image and decides who may move `latest`. */
  mergedAt: string;
  pullRequest?: { number: number; title: string; url: string };
  /** Manual builds: rebuild even when the commit, or an image's fingerprint, already has a successful build. */
  force?: boolean;
  /** Manual builds: only these images of a multi-image dockerInfo.json (service names); undefined = all. */
  images?: string[];
}

export type IntakeDecision = { kind: 'build'; request: BuildRequest; installationId?: number } | { kind: 'ignored'; reason: string };

export interface IntakeOptions {
  deliveryId: string;
  /** Globs of branches to build; empty = the repository's default branch. */
  buildBranches: string[];
  /** TRIGGER_PUSH: push events to build branches are built too. */
  triggerPush?: boolean;
  /** App mode: check_run / check_suite "Re-run" requests are built (check runs exist only there). */
  checkRuns?: boolean;
}

const SHA = /^[0-9a-f]{40}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function matchesBuildBranch(branch: string, globs: string[], defaultBranch: string): boolean {
  if (globs.length === 0) return branch === defaultBranch;
  return picomatch.isMatch(branch, globs);
}

/** Why a merge or push into `branch` is not built, naming the setting; undefined when it is a build branch. */
function notABuildBranch(branch: string, options: IntakeOptions, defaultBranch: string): IntakeDecision | undefined {
  if (matchesBuildBranch(branch, options.buildBranches, defaultBranch)) return undefined;
  const wanted = options.buildBranches.length ? `BUILD_BRANCHES (${options.buildBranches.join(', ')})` : `the default branch (${defaultBranch})`;
  return { kind: 'ignored', reason: `branch ${branch} is not a build branch: builds run for ${wanted}` };
}

/**
 * Turns a verified GitHub event into a build, or says why not. Pure: no I/O,
 * so every rule here is a unit test.
 */
export function decideBuild(event: string, payload: unknown, options: IntakeOptions): IntakeDecision {
  if (event === 'ping') return { kind: 'ignored', reason: 'ping: webhook is set up' };
  if (!isObject(payload)) return { kind: 'ignored', reason: 'payload is not an object' };
  const decision = decideEvent(event, payload, options);
  // App deliveries name the installation: the worker then needs no lookup to act on the repository.
  const installationId = isObject(payload.installation) && typeof payload.installation.id === 'number' ? payload.installation.id : undefined;
  return decision.kind === 'build' && installationId !== undefined ? { ...decision, installationId } : decision;
}

function decideEvent(event: string, payload: Json, options: IntakeOptions): IntakeDecision {
  if (event === 'push') return decidePush(payload, options);
  if (event === 'check_run' || event === 'check_suite') return decideRerun(event, payload, options);
  if (event !== 'pull_request') {
    return { kind: 'ignored', reason: `event ${event} is not built; send pull_request events${options.triggerPush ? ' (and push)' : ''}` };
  }
  return decideMerge(payload, options);
}

/** A merged pull request into a build branch: its merge commit. */
function decideMerge(payload: Json, options: IntakeOptions): IntakeDecision {
  const action = str(payload.action);
  if (action !== 'closed') return { kind: 'ignored', reason: `pull_request action ${action ?? '(none)'} is not built; only merged (closed) pull requests are` };

  const pr = payload.pull_request;
  if (!isObject(pr) || !isObject(payload.repository)) return { kind: 'ignored', reason: 'payload has no pull_request or repository' };
  if (pr.merged !== true) return { kind: 'ignored', reason: `pull request #${String(pr.number)} was closed without merging` };

  const where = repositoryOf(payload);
  if (!where) return { kind: 'ignored', reason: 'payload repository has no owner.login or name' };
  const { owner, repo } = where;

  const base = isObject(pr.base) ? str(pr.base.ref) : undefined;
  if (!base) return { kind: 'ignored', reason: 'pull request has no base.ref' };
  const defaultBranch = where.defaultBranch ?? base;
  const notBuilt = notABuildBranch(base, options, defaultBranch);
  if (notBuilt) return notBuilt;

  const sha = str(pr.merge_commit_sha);
  if (!sha || !SHA.test(sha)) return { kind: 'ignored', reason: 'merged pull request has no usable merge_commit_sha' };

  const number = typeof pr.number === 'number' ? pr.number : Number(payload.number);
  return {
    kind: 'build',
    request: {
      deliveryId: options.deliveryId,
      trigger: 'merge',
      owner,
      repo,
      repoUrl: where.repoUrl,
      defaultBranch,
      branch: base,
      sha,
      mergedAt: str(pr.merged_at) ?? new Date().toISOString(),
      pullRequest: Number.isInteger(number)
        ? { number, title: str(pr.title) ?? '', url: str(pr.html_url) ?? `https://github.com/${owner}/${repo}/pull/${number}` }
        : undefined,
    },
  };
}

interface RepositoryFields {
  owner: string;
  repo: string;
  repoUrl: string;
  defaultBranch?: string;
}

function repositoryOf(payload: Json): RepositoryFields | undefined {
  const r = payload.repository;
  if (!isObject(r)) return undefined;
  // Push payloads give the owner as { name, login }; every other event as a user with a login.
  const owner = isObject(r.owner) ? (str(r.owner.login) ?? str(r.owner.name)) : undefined;
  const repo = str(r.name);
  if (!owner || !repo) return undefined;
  return { owner, repo, repoUrl: str(r.html_url) ?? `https://github.com/${owner}/${repo}`, defaultBranch: str(r.default_branch) };
}

const ZERO_SHA = /^0{40}$/;

/**
 * A push to a build branch (TRIGGER_PUSH=true). `after` is the commit. The
 * merge of a pull request sends a push for the same commit too: the store
 * makes the two one build (one live or successful build per repository and
 * commit), whichever arrives first.
 */
function decidePush(payload: Json, options: IntakeOptions): IntakeDecision {
  if (!options.triggerPush) return { kind: 'ignored', reason: 'event push is not built: set TRIGGER_PUSH=true to build pushes to build branches' };
  const where = repositoryOf(payload);
  if (!where) return { kind: 'ignored', reason: 'payload repository has no owner or name' };
  const ref = str(payload.ref);
  if (!ref?.startsWith('refs/heads/')) return { kind: 'ignored', reason: `push to ${ref ?? '(no ref)'} is not a branch: tags are not built` };
  const branch = ref.slice('refs/heads/'.length);
  const sha = str(payload.after);
  if (payload.deleted === true || (sha && ZERO_SHA.test(sha))) return { kind: 'ignored', reason: `push deleted branch ${branch}: nothing to build` };
  if (!sha || !SHA.test(sha)) return { kind: 'ignored', reason: 'push has no usable after commit' };
  const defaultBranch = where.defaultBranch ?? branch;
  const notBuilt = notABuildBranch(branch, options, defaultBranch);
  if (notBuilt) return notBuilt;
  // When the commit landed, as merged_at is for a merge: pushed_at (seconds) is the push's own time, so a
  // forced push of an older commit still counts as the newest and `latest` follows what the branch now holds.
  const repository = payload.repository as Json;
  const pushedAt = typeof repository.pushed_at === 'number' ? new Date(repository.pushed_at * 1000).toISOString() : undefined;
  const headCommit = isObject(payload.head_commit) ? str(payload.head_commit.timestamp) : undefined;
  return {
    kind: 'build',
    request: {
      deliveryId: options.deliveryId,
      trigger: 'push',
      owner: where.owner,
      repo: where.repo,
      repoUrl: where.repoUrl,
      defaultBranch,
      branch,
      sha,
      mergedAt: pushedAt ?? headCommit ?? new Date().toISOString(),
    },
  };
}

/**
 * GitHub's "Re-run" (App mode): check_run.rerequested rebuilds that image,
 * check_suite.rerequested every image of the commit; both forced, since
 * re-running an unchanged image must build it again.
 */
function decideRerun(event: 'check_run' | 'check_suite', payload: Json, options: IntakeOptions): IntakeDecision {
  const action = str(payload.action);
  if (action !== 'rerequested') return { kind: 'ignored', reason: `${event} action ${action ?? '(none)'} is not built; only rerequested (Re-run) is` };
  if (!options.checkRuns) return { kind: 'ignored', reason: `${event}.rerequested: dockhook reports commit statuses in token mode, so it has no check runs to re-run` };
  const where = repositoryOf(payload);
  if (!where) return { kind: 'ignored', reason: 'payload repository has no owner or name' };
  const run = event === 'check_run' && isObject(payload.check_run) ? payload.check_run : undefined;
  const suite = event === 'check_suite' ? payload.check_suite : run?.check_suite;
  if (event === 'check_run' && !run) return { kind: 'ignored', reason: 'check_run.rerequested has no check_run' };
  if (!isObject(suite)) return { kind: 'ignored', reason: `${event}.rerequested has no check_suite` };
  let images: string[] | undefined;
  if (run) {
    const name = str(run.name) ?? '';
    if (name !== 'dockhook' && !name.startsWith('dockhook/')) return { kind: 'ignored', reason: `check run ${name} is not dockhook's` };
    if (name.startsWith('dockhook/')) images = [name.slice('dockhook/'.length)];
  }
  const sha = str(run?.head_sha) ?? str(suite.head_sha);
  if (!sha || !SHA.test(sha)) return { kind: 'ignored', reason: `${event} has no usable head_sha` };
  const branch = str(suite.head_branch);
  if (!branch) return { kind: 'ignored', reason: `${event} has no head_branch: only branch commits are re-run` };
  return {
    kind: 'build',
    request: {
      deliveryId: options.deliveryId,
      trigger: 'rerun',
      owner: where.owner,
      repo: where.repo,
      repoUrl: where.repoUrl,
      defaultBranch: where.defaultBranch ?? branch,
      branch,
      sha,
      // Like a manual build: ordered now among the image's builds; `latest` moves only if nothing later did.
      mergedAt: new Date().toISOString(),
      force: true,
      ...(images ? { images } : {}),
    },
  };
}
