import picomatch from 'picomatch';

/** What a delivery asks for, once it has been verified and understood. Plain data: it is what the queue stores. */
export interface BuildRequest {
  deliveryId: string;
  trigger: 'merge' | 'manual';
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

export type IntakeDecision = { kind: 'build'; request: BuildRequest } | { kind: 'ignored'; reason: string };

export interface IntakeOptions {
  deliveryId: string;
  /** Globs of branches to build; empty = the repository's default branch. */
  buildBranches: string[];
}

const SHA = /^[0-9a-f]{40}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function matchesBuildBranch(branch: string, globs: string[], defaultBranch: string): boolean {
  if (globs.length === 0) return branch === defaultBranch;
  return picomatch.isMatch(branch, globs);
}

/**
 * Turns a verified GitHub event into a build, or says why not. Pure: no I/O,
 * so every rule here is a unit test.
 */
export function decideBuild(event: string, payload: unknown, options: IntakeOptions): IntakeDecision {
  if (event === 'ping') return { kind: 'ignored', reason: 'ping: webhook is set up' };
  if (event !== 'pull_request') return { kind: 'ignored', reason: `event ${event} is not built; send pull_request events` };
  if (!isObject(payload)) return { kind: 'ignored', reason: 'payload is not an object' };

  const action = str(payload.action);
  if (action !== 'closed') return { kind: 'ignored', reason: `pull_request action ${action ?? '(none)'} is not built; only merged (closed) pull requests are` };

  const pr = payload.pull_request;
  const repository = payload.repository;
  if (!isObject(pr) || !isObject(repository)) return { kind: 'ignored', reason: 'payload has no pull_request or repository' };
  if (pr.merged !== true) return { kind: 'ignored', reason: `pull request #${String(pr.number)} was closed without merging` };

  const owner = isObject(repository.owner) ? str(repository.owner.login) : undefined;
  const repo = str(repository.name);
  if (!owner || !repo) return { kind: 'ignored', reason: 'payload repository has no owner.login or name' };

  const base = isObject(pr.base) ? str(pr.base.ref) : undefined;
  if (!base) return { kind: 'ignored', reason: 'pull request has no base.ref' };
  const defaultBranch = str(repository.default_branch) ?? base;
  if (!matchesBuildBranch(base, options.buildBranches, defaultBranch)) {
    const wanted = options.buildBranches.length ? `BUILD_BRANCHES (${options.buildBranches.join(', ')})` : `the default branch (${defaultBranch})`;
    return { kind: 'ignored', reason: `branch ${base} is not a build branch: builds run for ${wanted}` };
  }

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
      repoUrl: str(repository.html_url) ?? `https://github.com/${owner}/${repo}`,
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
