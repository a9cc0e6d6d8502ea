import type { Octokit } from '@octokit/rest';
import type { Config } from './config.js';
import type { GitHubAccess } from './github/access.js';
import type { Logger } from './log.js';
import { discoverPublicUrl, type DiscoverOptions } from './ngrok.js';

/**
 * Points each repository's GitHub webhook at dockhook, so a new tunnel URL
 * needs no visit to Settings → Webhooks. Never logs or returns the secret,
 * and never logs an Octokit error object whole: its `request.body` holds it.
 */

export interface EnsureWebhookOptions {
  owner: string;
  repo: string;
  /** The full delivery URL, https://…/webhook. */
  url: string;
  secret: string;
  log: Logger;
  /** The events the hook must send; default pull_request (TRIGGER_PUSH adds push). */
  events?: string[];
}

export interface EnsureWebhookResult {
  action: 'created' | 'updated' | 'unchanged';
  hookId: number;
  /** The URL an updated hook pointed at before (an older tunnel, usually). */
  previousUrl?: string;
}

/** The fields of GitHub's hook representation this file reads. */
interface HookView {
  id: number;
  active: boolean;
  events: string[];
  config: { url?: string; content_type?: string; insecure_ssl?: string | number; secret?: string };
  last_response?: { code?: number | null };
}

/** Hosts ngrok hands out; a /webhook hook on one of them is an earlier dockhook tunnel. */
const NGROK_HOST = /\.(ngrok-free\.app|ngrok-free\.dev|ngrok\.app|ngrok\.io|ngrok\.dev)$/i;

export function isOldTunnelHook(hookUrl: string | undefined, url: string): boolean {
  if (!hookUrl || hookUrl === url) return false;
  try {
    const u = new URL(hookUrl);
    return NGROK_HOST.test(u.hostname) && u.pathname.replace(/\/+$/, '') === '/webhook';
  } catch {
    return false;
  }
}

/** Why the hook's config must be rewritten, or [] when it is already right. */
function configProblems(hook: HookView, url: string): string[] {
  const c = hook.config;
  const problems: string[] = [];
  if (c.url !== url) problems.push('url');
  if (c.content_type !== 'json') problems.push('content_type');
  if (String(c.insecure_ssl ?? '0') !== '0') problems.push('insecure_ssl');
  // GitHub masks a secret as "********" and leaves the field out when there is none.
  if (!c.secret) problems.push('secret missing');
  // A changed WEBHOOK_SECRET cannot be seen through the mask; dockhook answering 401 to the last delivery can.
  if (hook.last_response?.code === 401) problems.push('last delivery refused with 401 (secret differs)');
  return problems;
}

const wantsEvents = (hook: HookView, events: string[]) => hook.events.includes('*') || events.every((e) => hook.events.includes(e));

/** Rethrows an Octokit error as a plain message with what to do: the original carries the request body. */
function explain(err: unknown, what: string, owner: string, repo: string): Error {
  const status = (err as { status?: number }).status;
  const message = (err as Error).message?.split(' - ')[0] ?? String(err);
  let fix = '';
  if (status === 404 || status === 403) {
    fix = ` → fix: make sure ${owner}/${repo} exists and GITHUB_TOKEN has admin access to it (classic token: repo and admin:repo_hook scopes; fine-grained: "Webhooks" read and write), or add the webhook by hand`;
  } else if (status === 401) {
    fix = ' → fix: GITHUB_TOKEN was refused; create a new token';
  }
  return new Error(`${what} ${owner}/${repo} failed${status ? ` (${status})` : ''}: ${message}${fix}`);
}

export async function ensureRepoWebhook(octokit: Octokit, o: EnsureWebhookOptions): Promise<EnsureWebhookResult> {
  const { owner, repo, url, secret } = o;
  const log = o.log.child({ repo: `${owner}/${repo}` });
  const wanted = { url, content_type: 'json', secret, insecure_ssl: '0' };
  const events = o.events ?? ['pull_request'];

  let hooks: HookView[];
  try {
    hooks = (await octokit.paginate(octokit.rest.repos.listWebhooks, { owner, repo, per_page: 100 })) as HookView[];
  } catch (err) {
    throw explain(err, 'listing the webhooks of', owner, repo);
  }

  const hook = hooks.find((h) => h.config.url === url) ?? hooks.find((h) => isOldTunnelHook(h.config.url, url));
  if (!hook) {
    try {
      // `config` is nested here, so Octokit does not take its `url` for the request URL.
      const { data } = await octokit.rest.repos.createWebhook({ owner, repo, name: 'web', active: true, events, config: wanted });
      log.info({ hookId: data.id, url }, 'webhook created');
      return { action: 'created', hookId: data.id };
    } catch (err) {
      throw explain(err, 'creating the webhook of', owner, repo);
    }
  }

  const previousUrl = hook.config.url !== url ? hook.config.url : undefined;
  const problems = configProblems(hook, url);
  const eventsWrong = !hook.active || !wantsEvents(hook, events);
  if (problems.length === 0 && !eventsWrong) {
    log.debug({ hookId: hook.id, url }, 'webhook already points at dockhook');
    return { action: 'unchanged', hookId: hook.id };
  }
  try {
    if (problems.length > 0) {
      // The /config route changes only the config; a top-level `url` would be taken by Octokit as the request URL, so the body goes in `data`.
      await octokit.request('PATCH /repos/{owner}/{repo}/hooks/{hook_id}/config', { owner, repo, hook_id: hook.id, data: wanted });
    }
    if (eventsWrong) {
      await octokit.rest.repos.updateWebhook({ owner, repo, hook_id: hook.id, active: true, add_events: events });
    }
  } catch (err) {
    throw explain(err, 'updating the webhook of', owner, repo);
  }
  log.info({ hookId: hook.id, url, previousUrl, changed: [...problems, ...(eventsWrong ? ['events/active'] : [])] }, 'webhook updated');
  return { action: 'updated', hookId: hook.id, previousUrl };
}

export interface StartupWebhookOptions {
  /** Overrides for the discovery (tests shorten the waits). */
  discover?: Partial<Pick<DiscoverOptions, 'attempts' | 'delayMs' | 'fetch'>>;
}

/**
 * Start-up step run in the background by `serve`: finds the public URL (from
 * the ngrok agent when NGROK_API_URL is set, else PUBLIC_URL), logs the
 * webhook URL, uses the tunnel for commit status links unless PUBLIC_URL is
 * set, and ensures the webhook of every WEBHOOK_REPOS repository. Never
 * throws: a failure here must not take down a server that can still build.
 * Returns the webhook URL, or undefined when there is none.
 */
export async function setUpWebhooks(config: Config, github: GitHubAccess, log: Logger, options: StartupWebhookOptions = {}): Promise<string | undefined> {
  let base = config.publicUrl;
  if (config.ngrokApiUrl) {
    try {
      base = await discoverPublicUrl({ apiUrl: config.ngrokApiUrl, upstream: String(config.port), log, ...options.discover });
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, 'could not read the public URL from ngrok; deliveries cannot reach dockhook until it is fixed');
      return undefined;
    }
    if (config.publicUrl) {
      log.info({ publicUrl: config.publicUrl }, 'PUBLIC_URL is set: commit status links keep using it');
    } else {
      // The worker reads config.publicUrl each time it reports a status, so this reaches every later status.
      config.publicUrl = base;
    }
  }
  if (!base) return undefined;

  const webhookUrl = `${base}/webhook`;
  log.info({ url: webhookUrl }, `webhook URL: ${webhookUrl}`);
  if (github.mode === 'app') {
    log.info(`GitHub App mode: dockhook creates no repository webhooks; set the App's webhook URL (App settings → Webhook) to ${webhookUrl}`);
    return webhookUrl;
  }
  if (config.webhookRepos.length === 0) {
    log.info('WEBHOOK_REPOS is empty: add the webhook URL above to each repository (Settings → Webhooks, content type application/json, the WEBHOOK_SECRET, "Pull requests" events) or set WEBHOOK_REPOS=owner/name,…');
    return webhookUrl;
  }
  for (const fullName of config.webhookRepos) {
    const [owner, repo, ...rest] = fullName.split('/');
    if (!owner || !repo || rest.length > 0) {
      log.error({ repo: fullName }, 'WEBHOOK_REPOS entries must look like owner/name');
      continue;
    }
    try {
      await ensureRepoWebhook(await github.forRepo(owner, repo), { owner, repo, url: webhookUrl, secret: config.webhookSecret, log, events: config.triggerPush ? ['pull_request', 'push'] : ['pull_request'] });
    } catch (err) {
      log.error({ repo: fullName, err: { message: (err as Error).message } }, 'could not set up the webhook');
    }
  }
  return webhookUrl;
}
