import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * Webhook deliveries as GitHub sends them, built from the real example
 * payloads in @octokit/webhooks-examples so tests exercise the full shape of
 * an event, not a hand-written subset.
 */

interface WebhookDefinition {
  name: string;
  examples: Record<string, unknown>[];
}

// The package's main is a JSON file; require() keeps tsc from type-inferring
// the whole multi-megabyte document.
const definitions = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];

/** A deep clone of the first example of `event` (with `action`, if given). */
export function examplePayload(event: string, action?: string): Record<string, unknown> {
  const definition = definitions.find((d) => d.name === event);
  const example = definition?.examples.find((e) => action === undefined || e.action === action);
  if (!example) throw new Error(`no @octokit/webhooks-examples payload for ${event}${action ? `.${action}` : ''}`);
  return structuredClone(example);
}

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
  htmlUrl?: string;
}

type Obj = Record<string, any>;

/** A `pull_request` `closed` delivery for a merged pull request in owner/repo. */
export function mergedPullRequestPayload(opts: MergedPullRequestOptions): Record<string, unknown> {
  const example = examplePayload('pull_request', 'closed');
  const from = (example.repository as Obj).full_name as string; // "Codertocat/Hello-World"
  const fromOwner = from.split('/')[0];
  // Re-point every URL and name of the example's repository at owner/repo, so
  // no field (clone_url, statuses_url, base.repo...) still names the example repo.
  const escaped = (s: string) => JSON.stringify(s).slice(1, -1);
  const payload = JSON.parse(
    JSON.stringify(example)
      .replaceAll(escaped(from), escaped(`${opts.owner}/${opts.repo}`))
      .replaceAll(`/users/${escaped(fromOwner)}`, `/users/${escaped(opts.owner)}`),
  ) as Obj;

  const branch = opts.branch ?? 'main';
  const number = opts.number ?? (payload.number as number);
  const mergedAt = opts.mergedAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const htmlUrl = opts.htmlUrl ?? `https://github.com/${opts.owner}/${opts.repo}/pull/${number}`;

  for (const repository of [payload.repository, payload.pull_request.base.repo, payload.pull_request.head.repo] as Obj[]) {
    repository.name = opts.repo;
    repository.full_name = `${opts.owner}/${opts.repo}`;
    repository.owner.login = opts.owner;
    repository.owner.html_url = `https://github.com/${opts.owner}`;
    repository.html_url = `https://github.com/${opts.owner}/${opts.repo}`;
    repository.default_branch = opts.defaultBranch ?? branch;
  }

  const pr = payload.pull_request as Obj;
  payload.action = 'closed';
  payload.number = number;
  pr.number = number;
  pr.state = 'closed';
  pr.merged = true;
  pr.merged_at = mergedAt;
  pr.closed_at = mergedAt;
  pr.merge_commit_sha = opts.sha;
  pr.merged_by = structuredClone(payload.sender);
  pr.html_url = htmlUrl;
  pr.base.ref = branch;
  pr.base.label = `${opts.owner}:${branch}`;
  return payload;
}

export interface SignOptions {
  /** X-GitHub-Event; default 'pull_request'. */
  event?: string;
  /** X-GitHub-Delivery; default a random UUID. */
  id?: string;
  /** Send as application/x-www-form-urlencoded `payload=<json>` (a hook with content_type "form"). */
  form?: boolean;
}

/**
 * The exact body and headers GitHub would send. Synchronous on purpose (tests
 * build many deliveries inline); the HMAC is the same computation as `sign`
 * from @octokit/webhooks-methods, which the unit test checks.
 */
export function signDelivery(
  secret: string,
  payload: unknown,
  opts: SignOptions = {},
): { body: string; headers: Record<string, string> } {
  const json = JSON.stringify(payload);
  // GitHub form-encodes like URLSearchParams does (spaces as '+').
  const body = opts.form ? new URLSearchParams({ payload: json }).toString() : json;
  const hmac = (algorithm: 'sha1' | 'sha256') => createHmac(algorithm, secret).update(body, 'utf8').digest('hex');
  const hook = (payload as Obj | null)?.hook_id;
  return {
    body,
    headers: {
      'content-type': opts.form ? 'application/x-www-form-urlencoded' : 'application/json',
      'user-agent': 'GitHub-Hookshot/abc123',
      'x-github-event': opts.event ?? 'pull_request',
      'x-github-delivery': opts.id ?? randomUUID(),
      'x-github-hook-id': String(hook ?? 1),
      'x-github-hook-installation-target-type': 'repository',
      'x-github-hook-installation-target-id': String((payload as Obj | null)?.repository?.id ?? 1),
      'x-hub-signature': `sha1=${hmac('sha1')}`,
      'x-hub-signature-256': `sha256=${hmac('sha256')}`,
    },
  };
}

/** Signs and POSTs a delivery; `headers` are added last (to tamper with a signature, drop an event...). */
export async function postDelivery(
  url: string,
  secret: string,
  payload: unknown,
  opts: SignOptions & { headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; deliveryId: string }> {
  const { body, headers } = signDelivery(secret, payload, opts);
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
