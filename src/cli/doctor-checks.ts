import { Octokit } from '@octokit/rest';
import Docker from 'dockerode';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { fail, ok, warn, type CheckResult } from './check-result.js';
import { checkGitHubApp } from './doctor-app.js';
import { BINFMT_DIR, describePlatforms, runnablePlatforms } from '../engine/platforms.js';
import { NgrokDiscoveryError, discoverPublicUrl } from '../ngrok.js';
import { decideBuilder, type BuilderSetting } from '../pipeline/builder-choice.js';
import { identifyEngine } from '../pipeline/engine-identity.js';
import { RegistryError, createRegistryClient } from '../registry/client.js';

/**
 * The checks of `dockhook doctor`, one function per thing dockhook depends
 * on. Each answers with lines to print and never throws; messages name the
 * setting to change and never contain a secret's value.
 */

export type { CheckResult, Level } from './check-result.js';

/** What went wrong reaching a server: the socket error's code (ECONNREFUSED…), found down the chain of causes that fetch and the registry client wrap it in. */
function reason(err: unknown): string {
  let deepest = String(err);
  for (let e = err as { code?: unknown; cause?: unknown; message?: string; name?: string } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time';
    if (typeof e.code === 'string' && /^E[A-Z0-9_]+$/.test(e.code)) return e.code;
    if (e.message) deepest = e.message;
  }
  return deepest;
}

/** Every problem loadConfig finds, one FAIL each, or the config. */
export function checkConfig(env: Record<string, string | undefined>): { config?: Config; results: CheckResult[] } {
  try {
    const config = loadConfig(env);
    return { config, results: [ok('config', 'every setting is valid')] };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // ConfigError lists one problem per indented line, between a heading and the hint.
    const problems = err.message.split('\n').filter((line) => line.startsWith('  ')).map((line) => line.trim());
    const fix = 'set it in .env or the environment (see .env.example)';
    return { results: (problems.length ? problems : [err.message]).map((p) => fail('config', p, fix)) };
  }
}

/** The engine answers; which one it is (Docker or Podman), and the builder BUILDER gives there. */
export async function checkEngine(docker = new Docker({ timeout: 10_000 }), setting: BuilderSetting = 'auto'): Promise<CheckResult> {
  const modem = docker.modem as { socketPath?: string | (() => Promise<string>); host?: string; port?: number | string; protocol?: string };
  let where = 'the Docker engine';
  try {
    const socket = typeof modem.socketPath === 'function' ? await modem.socketPath() : modem.socketPath;
    where = socket ?? `${modem.protocol ?? 'http'}://${modem.host}:${modem.port ?? 2375}`;
    await docker.ping();
    const engine = await identifyEngine(docker);
    const d = decideBuilder(engine, setting);
    const builds = `${engine.name} ${engine.version} at ${where}`;
    if (d.problem) return fail('engine', `${builds}: ${d.problem.replace(/; set BUILDER=classic$/, '')}`, 'set BUILDER=classic, or leave BUILDER unset (auto picks the builder the engine has)');
    return ok('engine', `${builds}; builds with ${d.builder === 'buildkit' ? 'BuildKit' : 'the classic builder'} (${d.reason})`);
  } catch (err) {
    const code = reason(err);
    const fix =
      code === 'EACCES'
        ? `this user may not use ${where}: add it to the group that owns the socket (\`stat -c %g /var/run/docker.sock\`); dockhook's image does that itself unless started with --user, which then needs --group-add with that id`
        : 'start Docker (sudo systemctl start docker), or mount /var/run/docker.sock into the container, or set DOCKER_HOST';
    return fail('engine', `cannot reach the engine at ${where} (${code})`, fix);
  }
}

/**
 * The platforms the engine can run: its own, and those QEMU runs through this
 * host's binfmt_misc. ok when some emulation is there (or cannot be known for
 * a remote engine), warn when there is none; undefined when the engine does
 * not answer (the engine line says so).
 */
export async function checkPlatforms(docker = new Docker({ timeout: 10_000 })): Promise<CheckResult | undefined> {
  let r;
  try {
    r = await runnablePlatforms(docker);
  } catch {
    return undefined;
  }
  const line = `can run ${describePlatforms(r)}`;
  if (r.emulated === 'unknown') return ok('platforms', `${line} (${r.problems})`);
  if (r.emulated.length) return ok('platforms', r.problems ? `${line}; ${r.problems}` : line);
  return warn('platforms', `${line}: ${r.problems}`, `for foreign platforms (linux/arm64, linux/arm/v7): install qemu-user-static and binfmt-support, then \`mount -t binfmt_misc binfmt_misc ${BINFMT_DIR}\` and \`update-binfmts --enable qemu-aarch64\` (and qemu-arm), as scripts/ensure-docker.sh does`);
}

export async function checkRegistry(config: Config): Promise<CheckResult> {
  const url = config.registryUrl;
  const client = createRegistryClient({ url, auth: config.registryAuth, timeoutMs: 10_000 });
  try {
    const ping = await client.ping();
    if (!ping.ok) {
      return fail('registry', `${url}/v2/ answered ${ping.status}, not as a Docker registry does`, 'check REGISTRY (and REGISTRY_URL, where dockhook itself reaches the registry)');
    }
  } catch (err) {
    return fail('registry', `cannot reach ${url} (${reason(err)})`, 'start the registry (docker-compose up -d registry), or set REGISTRY_URL to the address dockhook reaches it at');
  }
  const user = config.registryAuth?.username;
  try {
    const repositories = await client.listRepositories();
    const who = user ? `accepts the credentials of REGISTRY_USERNAME=${user}` : 'allows anonymous access';
    return ok('registry', `${url} ${who} (${repositories.length} ${repositories.length === 1 ? 'repository' : 'repositories'})`);
  } catch (err) {
    if (err instanceof RegistryError && err.status === 401) {
      return user
        ? fail('registry', `${url} refused the credentials of REGISTRY_USERNAME=${user}`, `check REGISTRY_PASSWORD (or the file REGISTRY_PASSWORD_FILE names): it must be the password of ${user} in the registry's htpasswd file. In compose, both come from the registry-auth volume: run \`docker compose up -d --force-recreate\` so registry-auth rewrites the htpasswd; elsewhere scripts/make-htpasswd.sh ${user} writes one`)
        : fail('registry', `${url} requires credentials`, 'set REGISTRY_USERNAME and REGISTRY_PASSWORD');
    }
    if (err instanceof RegistryError && [403, 404, 405].includes(err.status)) {
      // Hosted registries often switch the catalog off; reachability is known, the login is not.
      return warn('registry', `${url} answers, but its catalog is not available (${err.status}), so the credentials could not be checked`);
    }
    return fail('registry', `${url}: ${(err as Error).message}`, 'check REGISTRY, REGISTRY_URL and the registry\'s logs');
  }
}

const GITHUB_TIMEOUT_MS = 15_000;

/** Octokit turns a failed fetch (refused, timeout) into a status-500 error of its own, with the fetch error as `cause`; GitHub's real answers have none. */
const unreachable = (err: unknown) => {
  const e = err as { status?: number; cause?: unknown };
  return e.status === undefined || (e.status === 500 && e.cause !== undefined);
};

const GITHUB_TOKEN_FIX = 'create a token (classic: "repo" scope; fine-grained: "Commit statuses" read and write, plus "Webhooks" for WEBHOOK_REPOS) and set GITHUB_TOKEN';

/** The token works, and may write commit statuses (push access) to each repository given. */
export async function checkGitHub(config: Config, repos: string[], reposFromWebhookRepos: boolean): Promise<CheckResult[]> {
  if (config.github.mode === 'app') return checkGitHubApp(config, GITHUB_TIMEOUT_MS);
  const octokit = new Octokit({
    auth: config.github.token,
    baseUrl: config.githubApiUrl,
    userAgent: 'dockhook-doctor',
    // Octokit's default logger writes failed requests to stderr; the check's own line says it better.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    // A timeout per request (a signal given once would run from construction and cover them all).
    request: { fetch: (url: string | URL, init?: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(GITHUB_TIMEOUT_MS) }) },
  });
  let login: string;
  try {
    const { data, headers } = await octokit.rest.users.getAuthenticated();
    login = data.login;
    const scopes = headers['x-oauth-scopes'];
    const results = [ok('github', `GITHUB_TOKEN is valid: ${login} at ${config.githubApiUrl}${scopes ? ` (scopes: ${scopes})` : ''}`)];
    if (repos.length === 0) {
      results.push(warn('github', 'cannot check the permission to write commit statuses without a repository', 'set WEBHOOK_REPOS=owner/name, or run dockhook doctor --repo owner/name'));
      return results;
    }
    for (const full of repos) results.push(await checkRepo(octokit, login, full, reposFromWebhookRepos));
    return results;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 401) return [fail('github', `${config.githubApiUrl} refused GITHUB_TOKEN (401 Bad credentials)`, GITHUB_TOKEN_FIX)];
    if (unreachable(err)) return [fail('github', `cannot reach ${config.githubApiUrl} (${reason(err)})`, 'check the network, or GITHUB_API_URL for GitHub Enterprise Server')];
    return [fail('github', `GET /user answered ${status}: ${(err as Error).message.split(' - ')[0]}`, GITHUB_TOKEN_FIX)];
  }
}

async function checkRepo(octokit: Octokit, login: string, full: string, needsWebhooks: boolean): Promise<CheckResult> {
  const [owner, repo, ...rest] = full.split('/');
  if (!owner || !repo || rest.length) return fail('github', `${full} is not owner/name`, 'write repositories as owner/name');
  try {
    const { data } = await octokit.rest.repos.get({ owner, repo });
    if (!data.permissions?.push) {
      return fail('github', `${login} may not write commit statuses to ${full} (no push access)`, `give ${login} write access to ${full}, or use a token of someone who has it`);
    }
    if (needsWebhooks && !data.permissions.admin) {
      return warn('github', `${login} may write commit statuses to ${full}, but not manage its webhooks (no admin access)`, 'add the webhook by hand (Settings → Webhooks), or grant admin access');
    }
    return ok('github', `${login} may write commit statuses to ${full}`);
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 404) return fail('github', `${full} does not exist or the token cannot see it`, `check the name, and give the token access to ${full}`);
    if (unreachable(err)) return fail('github', `GET /repos/${full}: no answer (${reason(err)})`, 'check the network and run doctor again');
    return fail('github', `GET /repos/${full} answered ${status}`, GITHUB_TOKEN_FIX);
  }
}

export function checkWebhookSecret(config: Config): CheckResult {
  const length = [...config.webhookSecret].length;
  if (length < 16) {
    return warn('webhook secret', `WEBHOOK_SECRET is set but short (${length} characters): easy to guess`, 'use a long random value, e.g. `openssl rand -hex 32`, in dockhook and in GitHub\'s webhook settings');
  }
  return ok('webhook secret', `WEBHOOK_SECRET is set (${length} characters)`);
}

export async function checkNgrok(config: Config): Promise<CheckResult | undefined> {
  if (!config.ngrokApiUrl) return undefined;
  try {
    const url = await discoverPublicUrl({ apiUrl: config.ngrokApiUrl, upstream: String(config.port), attempts: 1 });
    return ok('ngrok', `public URL ${url} (webhook URL ${url}/webhook)`);
  } catch (err) {
    if (err instanceof NgrokDiscoveryError) return fail('ngrok', err.reason, err.hint);
    return fail('ngrok', (err as Error).message);
  }
}
