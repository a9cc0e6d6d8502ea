import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isValidRepositoryName } from '../docker-reference.js';
import { loadEnv } from '../env.js';
import { createScrubber } from '../secrets.js';
import { postToDockhook, reportUnexpected } from './post-to-dockhook.js';
import { UsageError } from './usage-error.js';

export const usage = `Usage: dockhook build <owner/repo> <ref> [--force] [--image <name>]... [--url <url>]

Asks a running dockhook to build <ref> (a branch, a tag or a commit sha) of
the GitHub repository <owner/repo> now, as a merge of that commit would
(POST /api/builds), and prints the build's number and page.

  --force   build even when the commit, or an image's inputs, already has a
            successful build
  --image   build only this image (a service_name of dockerInfo.json);
            repeat for several (default: every image)
  --url     dockhook's address (default: DOCKHOOK_URL, else
            http://127.0.0.1:$PORT, PORT being 3000 unless set)

Needs API_TOKEN (or API_TOKEN_FILE), the value dockhook itself runs with, from
the environment or ./.env. Exits 0 once the build is queued or the commit
already has one, 1 when dockhook refuses or cannot be reached.`;

// GitHub's own rules, as POST /api/builds checks them: owners are letters, digits and '-'; names add '.' and '_'.
const REPO = /^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/;
const DEFAULT_PORT = 3000; // config.ts's PORT default
const TIMEOUT_MS = 60_000; // dockhook asks GitHub about the repository and the ref before it answers

interface Args {
  repo: string;
  ref: string;
  force: boolean;
  images?: string[];
  url?: string;
}

function parse(args: string[]): Args {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { force: { type: 'boolean' }, image: { type: 'string', multiple: true }, url: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length < 2) throw new UsageError(positionals.length === 0 ? 'give the repository (owner/repo) and the ref to build' : 'give the ref to build: a branch, a tag or a commit sha');
  if (positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[2])}: give one repository and one ref`);
  const [repo, ref] = positionals as [string, string];
  if (!REPO.test(repo)) throw new UsageError(`${JSON.stringify(repo)} is not a GitHub repository: use owner/repo`);
  if (ref.trim() === '') throw new UsageError('the ref is empty: give a branch, a tag or a commit sha');
  for (const image of values.image ?? []) {
    if (!isValidRepositoryName(image)) throw new UsageError(`--image ${JSON.stringify(image)} is not an image name: use a service_name of dockerInfo.json (for example api)`);
  }
  return { repo, ref, force: values.force === true, images: values.image?.length ? [...new Set(values.image)] : undefined, url: values.url };
}

/** --url, DOCKHOOK_URL, or this host's PORT; without a trailing slash. */
export function serviceUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  const raw = flag ?? (env.DOCKHOOK_URL || `http://127.0.0.1:${env.PORT || DEFAULT_PORT}`);
  const what = flag !== undefined ? '--url' : env.DOCKHOOK_URL ? 'DOCKHOOK_URL' : 'PORT';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${what} gives ${JSON.stringify(raw)}, which is not a URL (example: http://127.0.0.1:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${what} must start with http:// or https://`);
  if (url.username || url.password) throw new UsageError(`${what} must not contain credentials: the token comes from API_TOKEN`);
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '');
}

/** API_TOKEN, or the content of API_TOKEN_FILE without its final newline, as dockhook itself reads it. */
export function apiToken(env: Record<string, string | undefined>): string {
  const file = env.API_TOKEN_FILE || undefined;
  if (env.API_TOKEN && file) throw new UsageError('API_TOKEN and API_TOKEN_FILE are both set: keep one of them');
  if (env.API_TOKEN) return env.API_TOKEN;
  if (file) {
    let token: string;
    try {
      token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`API_TOKEN_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (token === '') throw new UsageError(`API_TOKEN_FILE: ${file} is empty`);
    return token;
  }
  throw new UsageError('API_TOKEN is required but missing or empty: set it (or API_TOKEN_FILE) in the environment or in .env, the same value dockhook runs with');
}

export async function run(args: string[]): Promise<number> {
  const a = parse(args);
  const env = loadEnv();
  const base = serviceUrl(a.url, env);
  const token = apiToken(env);
  // A last net: nothing here prints the token, but an answer from a server could echo it.
  const scrub = createScrubber([token]);
  const out = (text: string) => process.stdout.write(scrub(text));
  const err = (text: string) => process.stderr.write(scrub(text));

  const body: Record<string, unknown> = { repo: a.repo, ref: a.ref };
  if (a.force) body.force = true;
  if (a.images) body.images = a.images;
  const request = { command: 'build', base, path: '/api/builds', token, body, timeoutMs: TIMEOUT_MS, err };
  const answer = await postToDockhook(request);
  if (!answer) return 1;
  const { status, json } = answer;

  if (status === 202 && typeof json?.build === 'number' && typeof json.sha === 'string') {
    out(`queued build #${json.build} of ${a.repo}@${json.sha.slice(0, 7)}\n  ${base}/builds/${json.build}\n`);
    return 0;
  }
  if (status === 200 && typeof json?.duplicate === 'number') {
    const sha = typeof json.sha === 'string' ? `@${json.sha.slice(0, 7)}` : '';
    out(`${a.repo}${sha} already has build #${json.duplicate}: ${base}/builds/${json.duplicate}\n`);
    if (!a.force) out('  run again with --force to build it anyway\n');
    return 0;
  }

  reportUnexpected(request, answer);
  return 1;
}
