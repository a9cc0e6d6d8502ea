import * as delivery from '../../src/github-delivery.js';

/**
 * Test-side names for src/github-delivery.ts (GitHub's example payloads,
 * signed with @octokit/webhooks-methods): owner and repo given apart, merges
 * into `main` unless told otherwise, and a POST helper.
 */

export const examplePayload = delivery.examplePayload;
export const signDelivery = delivery.signDelivery;
export type SignOptions = delivery.DeliveryOptions;

export interface MergedPullRequestOptions {
  owner: string;
  repo: string;
  /** merge_commit_sha: the commit the merge produced on the base branch. */
  sha: string;
  /** Base branch the pull request was merged into; default 'main'. */
  branch?: string;
  /** repository.default_branch; default = branch. */
  defaultBranch?: string;
  number?: number;
  mergedAt?: string;
}

/** A `pull_request` `closed` delivery for a merged pull request in owner/repo. */
export function mergedPullRequestPayload(o: MergedPullRequestOptions): Record<string, any> {
  return delivery.mergedPullRequestPayload({
    repo: `${o.owner}/${o.repo}`,
    sha: o.sha,
    branch: o.branch ?? 'main',
    defaultBranch: o.defaultBranch,
    number: o.number,
    mergedAt: o.mergedAt,
  });
}

/** Signs and POSTs a delivery; `headers` are added last (to tamper with a signature, drop an event...). */
export async function postDelivery(
  url: string,
  secret: string,
  payload: unknown,
  opts: SignOptions & { headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; deliveryId: string }> {
  const { body, headers } = await signDelivery(secret, payload, opts);
  const res = await fetch(url, { method: 'POST', body, headers: { ...headers, ...opts.headers } });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // non-JSON answers stay text
  }
  return { status: res.status, body: parsed, deliveryId: headers['x-github-delivery'] };
}
