import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { Config } from '../config.js';
import { appCredentialsFix } from '../github/access.js';
import * as result from './check-result.js';

const NAME = 'github app';
const ok = (message: string) => result.ok(NAME, message);
const warn = (message: string, fix?: string) => result.warn(NAME, message, fix);
const fail = (message: string, fix?: string) => result.fail(NAME, message, fix);
type CheckResult = result.CheckResult;

/** What dockhook does with each permission (README: "GitHub App"). */
export const APP_PERMISSIONS: { name: string; level: 'read' | 'write'; why: string }[] = [
  { name: 'contents', level: 'read', why: 'read dockerInfo.json and download the commit' },
  { name: 'metadata', level: 'read', why: 'every App has it' },
  { name: 'statuses', level: 'write', why: 'commit statuses (kept for branch protection rules that name them)' },
  { name: 'checks', level: 'write', why: 'one check run per image, and the Re-run button' },
  { name: 'pull_requests', level: 'write', why: 'the sticky PR comment (PR_COMMENT=true)' },
  { name: 'deployments', level: 'write', why: 'GitHub deployments of DEPLOY_IMAGES' },
  { name: 'repository_hooks', level: 'read', why: 'not needed: the App webhook is listed with the App JWT' },
];
const REQUIRED = ['contents', 'metadata', 'checks'];

const rank = (level: string | undefined) => (level === 'write' || level === 'admin' ? 2 : level === 'read' ? 1 : 0);

/** The key signs a JWT GitHub accepts, the App is the one named, and each installation has the permissions dockhook uses. */
export async function checkGitHubApp(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  if (config.github.mode !== 'app') return [];
  const { appId, privateKey } = config.github;
  const octokit = new Octokit({
    authStrategy: createAppAuth,
    auth: { appId, privateKey },
    baseUrl: config.githubApiUrl,
    userAgent: 'dockhook-doctor',
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    request: { fetch: (url: string | URL, init?: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }) },
  });
  const results: CheckResult[] = [];
  let slug: string;
  try {
    const { data } = await octokit.rest.apps.getAuthenticated();
    slug = data?.slug ?? String(appId);
    results.push(ok(`APP_ID ${appId} and PRIVATE_KEY are accepted: the App ${data?.name ?? slug} (${slug}) at ${config.githubApiUrl}`));
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 401) return [fail(`GitHub refused the App's JWT (${(err as Error).message.split(' - ')[0]})`, appCredentialsFix(appId))];
    if (status === 404) return [fail(`GitHub knows no App ${appId}`, 'APP_ID is the App ID on the App’s settings page')];
    return [fail(`GET /app failed: ${(err as Error).message.split(' - ')[0]}`, 'check the network, or GITHUB_API_URL for GitHub Enterprise Server')];
  }
  let installations;
  try {
    installations = await octokit.paginate(octokit.rest.apps.listInstallations, { per_page: 100 });
  } catch (err) {
    return [...results, fail(`cannot list the App's installations: ${(err as Error).message.split(' - ')[0]}`)];
  }
  if (installations.length === 0) return [...results, fail(`the App ${slug} is installed nowhere`, 'install it on the repositories to build (App settings → Install App)')];
  for (const inst of installations) {
    const account = (inst.account as { login?: string } | null)?.login ?? `installation ${inst.id}`;
    const perms = inst.permissions as Record<string, string | undefined>;
    const missing = APP_PERMISSIONS.filter((p) => REQUIRED.includes(p.name) && rank(perms[p.name]) < rank(p.level));
    const optional = APP_PERMISSIONS.filter((p) => !REQUIRED.includes(p.name) && p.name !== 'repository_hooks' && rank(perms[p.name]) < rank(p.level));
    if (missing.length) {
      results.push(fail(`installation on ${account} lacks ${missing.map((p) => `${p.name}: ${p.level}`).join(', ')}`, `grant them (App settings → Permissions), then accept the new permissions on ${account}`));
    } else if (optional.length) {
      results.push(warn(`installation on ${account} works, without ${optional.map((p) => `${p.name}: ${p.level} (${p.why})`).join('; ')}`, 'grant them in the App settings if you use those features'));
    } else {
      results.push(ok(`installation on ${account} (${inst.repository_selection === 'all' ? 'all repositories' : 'selected repositories'}) has every permission dockhook uses`));
    }
  }
  return results;
}
