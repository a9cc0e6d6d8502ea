import { createRequire } from 'node:module';

/**
 * A merged pull request delivery built from GitHub's own example payload
 * (@octokit/webhooks-examples), so a test delivery has every field a real one
 * has, not a hand-written subset.
 */

interface WebhookDefinition {
  name: string;
  examples: Record<string, unknown>[];
}

type Obj = Record<string, any>;

export interface ExampleOptions {
  /** owner/name; default the example's own repository. */
  repo?: string;
  /** merge_commit_sha; default the example's. */
  sha?: string;
  /** Base branch, also used as the repository's default branch so dockhook treats it as a build branch. */
  branch?: string;
}

function closedPullRequestExample(): Obj {
  // The package's main is a multi-megabyte JSON document: require() rather than an import tsc would type.
  const definitions = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];
  const example = definitions.find((d) => d.name === 'pull_request')?.examples.find((e) => e.action === 'closed');
  if (!example) throw new Error('@octokit/webhooks-examples has no pull_request.closed example');
  return structuredClone(example) as Obj;
}

export function mergedPullRequestExample(o: ExampleOptions = {}): { payload: Obj; repo: string; sha: string; branch: string } {
  let payload = closedPullRequestExample();
  const from = payload.repository.full_name as string;
  const repo = o.repo ?? from;
  const [owner, name] = repo.split('/');
  if (repo !== from) {
    // Re-point every URL and name of the example repository, so no field still names it.
    const esc = (s: string) => JSON.stringify(s).slice(1, -1);
    const fromOwner = from.split('/')[0];
    payload = JSON.parse(JSON.stringify(payload).replaceAll(esc(from), esc(repo)).replaceAll(`/users/${esc(fromOwner)}`, `/users/${esc(owner)}`)) as Obj;
    for (const r of [payload.repository, payload.pull_request.base.repo, payload.pull_request.head.repo] as Obj[]) {
      r.name = name;
      r.full_name = repo;
      r.owner.login = owner;
    }
  }
  const branch = o.branch ?? (payload.repository.default_branch as string);
  const sha = o.sha ?? (payload.pull_request.merge_commit_sha as string);
  const mergedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const pr = payload.pull_request as Obj;
  payload.action = 'closed';
  payload.repository.default_branch = branch;
  Object.assign(pr, { state: 'closed', merged: true, merged_at: mergedAt, closed_at: mergedAt, merge_commit_sha: sha, merged_by: structuredClone(payload.sender) });
  pr.base.ref = branch;
  pr.base.label = `${owner}:${branch}`;
  return { payload, repo, sha, branch };
}
