import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { sign } from '@octokit/webhooks-methods';

/**
 * Deliveries as GitHub sends them, built from GitHub's own example payloads
 * (@octokit/webhooks-examples) and signed with @octokit/webhooks-methods: what
 * `dockhook send-test-delivery`, the demo, the tests and the benchmarks send.
 */

interface WebhookDefinition {
  name: string;
  examples: Record<string, unknown>[];
}

type Obj = Record<string, any>;

let definitions: WebhookDefinition[] | undefined;

/** A deep clone of the first example of `event` (with `action`, if given). */
export function examplePayload(event: string, action?: string): Obj {
  // The package's main is a multi-megabyte JSON document: required on first use, not typed by tsc.
  definitions ??= createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];
  const example = definitions.find((d) => d.name === event)?.examples.find((e) => action === undefined || e.action === action);
  if (!example) throw new Error(`no @octokit/webhooks-examples payload for ${event}${action ? `.${action}` : ''}`);
  return structuredClone(example) as Obj;
}

export interface MergedPullRequestOptions {
  /** owner/name; default the example's own repository (Codertocat/Hello-World). */
  repo?: string;
  /** merge_commit_sha; default the example's. */
  sha?: string;
  /** Branch merged into; default the example repository's default branch. */
  branch?: string;
  /** repository.default_branch; default `branch`, so that the merge is into a build branch. */
  defaultBranch?: string;
  number?: number;
  /** merged_at; default now. */
  mergedAt?: string;
}

/** A `pull_request` `closed` delivery of a merged pull request, every field of the example re-pointed at `repo`. */
export function mergedPullRequestPayload(o: MergedPullRequestOptions = {}): Obj {
  let payload = examplePayload('pull_request', 'closed');
  const from = payload.repository.full_name as string;
  const repo = o.repo ?? from;
  const [owner, name] = repo.split('/') as [string, string];
  if (repo !== from) {
    // Re-point every URL and name of the example repository, so no field (clone_url, statuses_url…) still names it.
    const esc = (s: string) => JSON.stringify(s).slice(1, -1);
    const fromOwner = from.split('/')[0]!;
    payload = JSON.parse(JSON.stringify(payload).replaceAll(esc(from), esc(repo)).replaceAll(`/users/${esc(fromOwner)}`, `/users/${esc(owner)}`)) as Obj;
  }
  const branch = o.branch ?? (payload.repository.default_branch as string);
  const number = o.number ?? (payload.number as number);
  const mergedAt = o.mergedAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  for (const r of [payload.repository, payload.pull_request.base.repo, payload.pull_request.head.repo] as Obj[]) {
    Object.assign(r, { name, full_name: repo, html_url: `https://github.com/${repo}`, default_branch: o.defaultBranch ?? branch });
    Object.assign(r.owner, { login: owner, html_url: `https://github.com/${owner}` });
  }
  const pr = payload.pull_request as Obj;
  payload.action = 'closed';
  payload.number = number;
  Object.assign(pr, {
    number,
    state: 'closed',
    merged: true,
    merged_at: mergedAt,
    closed_at: mergedAt,
    merge_commit_sha: o.sha ?? pr.merge_commit_sha,
    merged_by: structuredClone(payload.sender),
    html_url: `https://github.com/${repo}/pull/${number}`,
  });
  pr.base.ref = branch;
  pr.base.label = `${owner}:${branch}`;
  return payload;
}

export interface DeliveryOptions {
  /** X-GitHub-Event; default pull_request. */
  event?: string;
  /** X-GitHub-Delivery; default a random UUID. */
  id?: string;
  /** application/x-www-form-urlencoded `payload=<json>`, GitHub's default content type. */
  form?: boolean;
}

/** The exact body and headers GitHub sends for `payload`, signed (X-Hub-Signature-256) over those bytes. */
export async function signDelivery(secret: string, payload: unknown, o: DeliveryOptions = {}): Promise<{ body: string; headers: Record<string, string> }> {
  const json = JSON.stringify(payload);
  // GitHub form-encodes as URLSearchParams does (spaces as '+').
  const body = o.form ? new URLSearchParams({ payload: json }).toString() : json;
  return {
    body,
    headers: {
      'content-type': o.form ? 'application/x-www-form-urlencoded' : 'application/json',
      'user-agent': 'GitHub-Hookshot/dockhook',
      'x-github-event': o.event ?? 'pull_request',
      'x-github-delivery': o.id ?? randomUUID(),
      'x-github-hook-id': String((payload as Obj | null)?.hook_id ?? 1),
      'x-hub-signature-256': await sign(secret, body),
    },
  };
}
