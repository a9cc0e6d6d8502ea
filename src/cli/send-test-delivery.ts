import { loadEnv } from '../env.js';
import { mergedPullRequestPayload, signDelivery } from '../github-delivery.js';
import { UsageError, parseOptions } from './usage-error.js';

export const usage = `Usage: dockhook send-test-delivery --url <url> [--repo owner/name] [--sha <sha>] [--branch <name>] [--secret <secret>]

Sends what GitHub sends when a pull request is merged (GitHub's example
payload, re-pointed at --repo/--sha), signed with the webhook secret, and
prints dockhook's answer: 202 = queued a build, 200 = accepted but ignored
(the reason is printed), 401 = the secret does not match dockhook's.

  --url     dockhook's address; /webhook is added when the URL has no path
            (http://localhost:3000 or https://….ngrok-free.app)
  --repo    repository the merge happened in (default: the example's,
            Codertocat/Hello-World, whose build will fail to fetch)
  --sha     the merge commit to build (default: the example's)
  --branch  the branch merged into; also sent as the default branch
            (default: the example's, master)
  --secret  the webhook secret (default: WEBHOOK_SECRET from the environment
            or ./.env; prefer those: a command-line argument is visible to
            other users in the process list)`;

const SHA = /^[0-9a-f]{40}$/;

/** The delivery URL: /webhook unless the URL already names a path. */
export function deliveryUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(raw)} is not a URL (example: http://localhost:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must start with http:// or https://');
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/webhook';
  return url.toString();
}

export async function run(args: string[]): Promise<number> {
  const v = parseOptions(args, {
    url: { type: 'string' },
    repo: { type: 'string' },
    sha: { type: 'string' },
    branch: { type: 'string' },
    secret: { type: 'string' },
  });
  if (!v.url) throw new UsageError('--url is required');
  const url = deliveryUrl(v.url);
  if (v.repo !== undefined && !/^[\w.-]+\/[\w.-]+$/.test(v.repo)) throw new UsageError('--repo must look like owner/name');
  if (v.sha !== undefined && !SHA.test(v.sha)) throw new UsageError('--sha must be a full 40-character commit sha');
  const secret = v.secret ?? loadEnv().WEBHOOK_SECRET;
  if (!secret) {
    process.stderr.write('dockhook: WEBHOOK_SECRET is required but missing or empty: set it in the environment or in .env (the same value dockhook uses), or pass --secret\n');
    return 78; // EX_CONFIG, as `serve` exits for missing settings
  }

  const payload = mergedPullRequestPayload({ repo: v.repo, sha: v.sha, branch: v.branch });
  const repo = payload.repository.full_name as string;
  const sha = payload.pull_request.merge_commit_sha as string;
  const branch = payload.pull_request.base.ref as string;
  const { body, headers } = await signDelivery(secret, payload);
  const deliveryId = headers['x-github-delivery']!;
  process.stdout.write(`POST ${url}\n  pull_request closed (merged) ${repo}@${sha.slice(0, 7)} into ${branch}, delivery ${deliveryId}\n`);

  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      headers: { ...headers, 'user-agent': 'GitHub-Hookshot/dockhook-send-test-delivery' },
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    process.stdout.write(`FAIL cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message} → fix: is dockhook running there (dockhook serve / docker-compose up)?\n`);
    return 1;
  }
  const text = await res.text();
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text));
  } catch {
    // not JSON: print as is
  }
  process.stdout.write(`${res.status} ${res.statusText}\n${shown}\n`);
  if (res.status === 401) process.stdout.write('→ fix: the secret differs from the WEBHOOK_SECRET the server runs with\n');
  return res.ok ? 0 : 1;
}
