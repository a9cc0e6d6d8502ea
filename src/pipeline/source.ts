import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BuildError } from '../errors.js';
import type { GitHubClient } from '../github.js';

interface Repo {
  owner: string;
  repo: string;
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/** GitHub failures that survived Octokit's own retries: say which are worth retrying later. */
export function classifyGitHubError(err: unknown, what: string): BuildError {
  const status = statusOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (status === 401) return new BuildError(`GitHub refused GITHUB_TOKEN while ${what}: check the token is valid`, { cause: err });
  if (status === 403 || status === 404) {
    return new BuildError(`GitHub answered ${status} while ${what}: check GITHUB_TOKEN can read this repository (${detail})`, { cause: err });
  }
  const transient = status === undefined || status >= 500 || status === 429;
  return new BuildError(`GitHub error while ${what}: ${detail}`, { transient, cause: err });
}

/** One file at a commit, raw; undefined when the commit has no such file. */
export async function readRepoFile(octokit: GitHubClient, where: Repo, path: string, sha: string): Promise<string | undefined> {
  try {
    const res = await octokit.rest.repos.getContent({ ...where, path, ref: sha, mediaType: { format: 'raw' } });
    return typeof res.data === 'string' ? res.data : Buffer.from(res.data as unknown as ArrayBuffer).toString('utf8');
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw classifyGitHubError(err, `reading ${path}`);
  }
}

/**
 * GitHub answers 404 both for a missing file and for a repository the token
 * cannot see; this tells the two apart so the failure says which.
 */
export async function assertRepoReadable(octokit: GitHubClient, where: Repo): Promise<void> {
  try {
    await octokit.rest.repos.get({ owner: where.owner, repo: where.repo });
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new BuildError(`repository ${where.owner}/${where.repo} not found, or GITHUB_TOKEN cannot read it: give the token access to this repository`, { cause: err });
    }
    throw classifyGitHubError(err, 'reading the repository');
  }
}

/**
 * The whole source tree at `sha` as GitHub's gzip tarball, as a stream. The API
 * answers with a redirect to codeload (carrying its own short-lived token for
 * private repositories); that URL is read with node:http(s), whose response
 * applies backpressure, and never buffered. (Node 20's fetch does not: when the
 * consumer is slower than the network its body re-copies an ever larger backlog,
 * so memory and time grow with the square of the tarball's size.)
 */
export async function openTarball(octokit: GitHubClient, where: Repo, sha: string, signal?: AbortSignal): Promise<Readable> {
  let res;
  try {
    res = await octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', {
      ...where,
      ref: sha,
      request: { redirect: 'manual', parseSuccessResponseBody: false, signal },
    });
  } catch (err) {
    throw classifyGitHubError(err, 'downloading the source tarball');
  }
  const body = res.data as unknown as WebReadableStream<Uint8Array> | null;
  const location = res.headers.location;
  if (!location) {
    // No redirect (a server that answers the tarball itself): read it as before.
    if ((res.status as number) === 200 && body) return Readable.fromWeb(body);
    throw classifyGitHubError(Object.assign(new Error(`expected a redirect to the tarball, got ${res.status}`), { status: res.status }), 'downloading the source tarball');
  }
  await body?.cancel().catch(() => undefined);
  return download(new URL(location, res.url), signal, 5);
}

function download(url: URL, signal: AbortSignal | undefined, redirects: number): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const req = get(url, { signal, headers: { 'user-agent': 'dockhook' } }, (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location && redirects > 0) {
        res.resume();
        resolve(download(new URL(res.headers.location, url), signal, redirects - 1));
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(classifyGitHubError(Object.assign(new Error(`codeload answered ${status}`), { status }), 'downloading the source tarball'));
        return;
      }
      resolve(res);
    });
    req.on('error', (err) => reject(classifyGitHubError(err, 'downloading the source tarball')));
  });
}
