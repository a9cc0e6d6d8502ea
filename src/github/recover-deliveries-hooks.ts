import type { GitHubClient } from '../github.js';
import { isOldTunnelHook } from '../webhook-setup.js';
import { appCredentialsFix, type GitHubAccess } from './access.js';
import type { DeliveryAttempt } from './recover-deliveries-decide.js';

/**
 * The webhooks whose deliveries dockhook recovers: the App's own webhook
 * (App mode), or dockhook's hook on each WEBHOOK_REPOS repository (token
 * mode). Each lists its deliveries a page at a time, newest first, and asks
 * for a redelivery; the calls are GitHub's documented ones
 * (apps.listWebhookDeliveries / repos.listWebhookDeliveries, paged with
 * `cursor`; …redeliverWebhookDelivery).
 */
export interface DeliveryHook {
  /** The store's name for it: app:<app id> or repo:<owner>/<name>:<hook id>. */
  key: string;
  /** For logs and messages: "the GitHub App's webhook", "acme/app's webhook 12". */
  label: string;
  page(cursor: string | undefined, signal: AbortSignal): Promise<DeliveryPage>;
  redeliver(attemptId: number, signal: AbortSignal): Promise<void>;
}

export interface DeliveryPage {
  attempts: DeliveryAttempt[];
  /** The cursor of the next (older) page; undefined on the last. */
  next?: string;
}

/** A hook that could not be found or read, with what to fix. */
export class RecoveryProblem extends Error {
  constructor(
    readonly step: 'hooks' | 'list' | 'redeliver',
    message: string,
  ) {
    super(message);
    this.name = 'RecoveryProblem';
  }
}

export const PER_PAGE = 100;

export interface HookSourceDeps {
  github: GitHubAccess;
  webhookRepos: string[];
  webhookUrl?: () => string | undefined;
}

/** The hooks to recover now; a repository whose hook cannot be found is a problem, not a failure of the others. */
export async function findDeliveryHooks(deps: HookSourceDeps, signal: AbortSignal): Promise<{ hooks: DeliveryHook[]; problems: RecoveryProblem[] }> {
  if (deps.github.mode === 'app') return { hooks: [appHook(deps.github.appClient!, deps.github.appId!)], problems: [] };
  const hooks: DeliveryHook[] = [];
  const problems: RecoveryProblem[] = [];
  for (const fullName of deps.webhookRepos) {
    const [owner, repo, ...rest] = fullName.split('/');
    if (!owner || !repo || rest.length > 0) continue; // webhook-setup.ts already says WEBHOOK_REPOS entries must be owner/name
    try {
      const found = await repoHook(await deps.github.forRepo(owner, repo), owner, repo, deps.webhookUrl?.(), signal);
      if (typeof found === 'string') problems.push(new RecoveryProblem('hooks', found));
      else hooks.push(found);
    } catch (err) {
      if (signal.aborted) throw err;
      problems.push(new RecoveryProblem('hooks', explain(err, `listing the webhooks of ${owner}/${repo}`, 'repo', `${owner}/${repo}`)));
    }
  }
  return { hooks, problems };
}

/** The App's ID names its checkpoint, so a different App (a changed APP_ID) starts afresh. */
function appHook(client: GitHubClient, appId: number): DeliveryHook {
  const label = "the GitHub App's webhook";
  return {
    key: `app:${appId}`,
    label,
    async page(cursor, s) {
      try {
        const res = await client.rest.apps.listWebhookDeliveries({ per_page: PER_PAGE, ...(cursor ? { cursor } : {}), request: { signal: s } });
        return { attempts: res.data.map(toAttempt), next: nextCursor(res.headers.link) };
      } catch (err) {
        throw s.aborted ? err : new RecoveryProblem('list', explain(err, `listing the deliveries of ${label}`, 'app'));
      }
    },
    async redeliver(attemptId, s) {
      await client.rest.apps.redeliverWebhookDelivery({ delivery_id: attemptId, request: { signal: s } });
    },
  };
}

interface HookView {
  id: number;
  active: boolean;
  events: string[];
  config: { url?: string };
}

/**
 * dockhook's hook among the repository's: the one pointing at dockhook's
 * webhook URL. Without a known URL (no PUBLIC_URL, no ngrok), the only active
 * hook on a /webhook path that sends pull requests. A message (string) says
 * why none was picked.
 */
async function repoHook(client: GitHubClient, owner: string, repo: string, url: string | undefined, signal: AbortSignal): Promise<DeliveryHook | string> {
  const hooks = (await client.paginate(client.rest.repos.listWebhooks, { owner, repo, per_page: 100, request: { signal } })) as HookView[];
  let hook: HookView | undefined;
  if (url) {
    hook = hooks.find((h) => sameUrl(h.config.url, url));
    if (!hook) {
      const old = hooks.find((h) => isOldTunnelHook(h.config.url, url));
      return old
        ? `${owner}/${repo}'s webhook ${old.id} still points at ${old.config.url}, not ${url}: deliveries are recovered once it points at dockhook (dockhook updates it at start; check the log for "webhook updated")`
        : `${owner}/${repo} has no webhook pointing at ${url}: nothing to recover there (dockhook creates it at start when the repository is in WEBHOOK_REPOS; check the log for "could not set up the webhook")`;
    }
  } else {
    const candidates = hooks.filter((h) => h.active && onWebhookPath(h.config.url) && (h.events.includes('pull_request') || h.events.includes('*')));
    if (candidates.length !== 1) {
      return `cannot tell which of ${owner}/${repo}'s webhooks is dockhook's (${candidates.length} candidates): set PUBLIC_URL so deliveries can be recovered`;
    }
    hook = candidates[0]!;
  }
  const hookId = hook.id;
  const label = `${owner}/${repo}'s webhook ${hookId}`;
  return {
    key: `repo:${owner}/${repo}:${hookId}`.toLowerCase(),
    label,
    async page(cursor, s) {
      try {
        const res = await client.rest.repos.listWebhookDeliveries({ owner, repo, hook_id: hookId, per_page: PER_PAGE, ...(cursor ? { cursor } : {}), request: { signal: s } });
        return { attempts: res.data.map(toAttempt), next: nextCursor(res.headers.link) };
      } catch (err) {
        throw s.aborted ? err : new RecoveryProblem('list', explain(err, `listing the deliveries of ${label}`, 'repo', `${owner}/${repo}`));
      }
    },
    async redeliver(attemptId, s) {
      await client.rest.repos.redeliverWebhookDelivery({ owner, repo, hook_id: hookId, delivery_id: attemptId, request: { signal: s } });
    },
  };
}

const sameUrl = (a: string | undefined, b: string) => a !== undefined && a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

function onWebhookPath(url: string | undefined): boolean {
  try {
    return url !== undefined && new URL(url).pathname.replace(/\/+$/, '') === '/webhook';
  } catch {
    return false;
  }
}

interface ListedDelivery {
  id: number | bigint;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status_code: number;
  event: string;
  action?: string | null;
}

function toAttempt(d: ListedDelivery): DeliveryAttempt {
  return {
    id: Number(d.id),
    guid: d.guid,
    deliveredAt: Date.parse(d.delivered_at),
    statusCode: Number(d.status_code ?? 0),
    redelivery: d.redelivery === true,
    event: d.event,
    action: d.action ?? null,
  };
}

/** The `cursor` of the Link header's rel="next" URL (GitHub pages deliveries by cursor, not by page number). */
export function nextCursor(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part);
    if (!m) continue;
    try {
      return new URL(m[1]!).searchParams.get('cursor') ?? undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * GitHub's answer as one line with what to fix. Only the status and the first
 * part of the message: an Octokit error object carries the request, whose
 * headers hold the credentials.
 */
export function explain(err: unknown, what: string, mode: 'app' | 'repo', repo?: string): string {
  if (err instanceof RecoveryProblem) return err.message;
  const status = (err as { status?: number }).status;
  const said = String((err as Error)?.message ?? err).split(' - ')[0];
  const head = `${what} failed${status ? ` (${status})` : ''}: ${said}`;
  let fix: string;
  if (status === 401) {
    fix = mode === 'app'
      ? `GitHub refused the App's credentials: ${appCredentialsFix()}`
      : 'GitHub refused GITHUB_TOKEN: create a new token';
  } else if (status === 403 || status === 404) {
    fix = mode === 'app'
      ? "check that the App has an active webhook (App settings → Webhook) and that APP_ID is this App's ID"
      : `GITHUB_TOKEN needs admin access to ${repo}'s webhooks to list and redeliver deliveries (classic token: the repo or admin:repo_hook scope; fine-grained: "Webhooks" read and write), or take ${repo} out of WEBHOOK_REPOS`;
  } else if (status === undefined || status >= 500 || status === 429) {
    fix = 'GitHub could not be reached or is failing; the next pass tries again';
  } else {
    fix = 'the next pass tries again';
  }
  return `${head} → ${fix}`;
}
