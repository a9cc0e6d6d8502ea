import { createAppAuth } from '@octokit/auth-app';
import type { GitHubAuthConfig } from '../config.js';
import { AppError } from '../errors.js';
import { createGitHubClient, type GitHubClient } from '../github.js';
import type { Logger } from '../log.js';
import { installationAuthStrategy } from './installation-auth.js';

/**
 * How dockhook reaches GitHub for one repository: with the token
 * (GITHUB_TOKEN), or as a GitHub App with that repository's installation
 * token. One interface, two credentials: everything that calls GitHub asks
 * for a client here and does not care which mode it runs in.
 */
export interface GitHubAccess {
  readonly mode: 'token' | 'app';
  /** The client for calls about owner/repo. App mode: the repository's installation (looked up once, then remembered). */
  forRepo(owner: string, repo: string): Promise<GitHubClient>;
  /** A delivery named the installation of owner/repo (payload.installation.id): no lookup needed for it. */
  rememberInstallation(owner: string, repo: string, installationId: number): void;
  /** App mode: the client authenticated as the App itself (its JWT), for /app endpoints. Token mode: undefined. */
  readonly appClient: GitHubClient | undefined;
  /** App mode: APP_ID. Token mode: undefined. */
  readonly appId: number | undefined;
  /** The login dockhook writes as: the token's user, or `<app-slug>[bot]`. Asked once. */
  login(): Promise<string>;
}

export interface GitHubAccessOptions {
  auth: GitHubAuthConfig;
  baseUrl: string;
  log: Logger;
  rateLimitRetries?: number;
}

export function createGitHubAccess(o: GitHubAccessOptions): GitHubAccess {
  return o.auth.mode === 'token' ? tokenAccess(o, o.auth.token) : appAccess(o, o.auth);
}

function tokenAccess(o: GitHubAccessOptions, token: string): GitHubAccess {
  const client = createGitHubClient({ token, baseUrl: o.baseUrl, log: o.log, rateLimitRetries: o.rateLimitRetries });
  let login: Promise<string> | undefined;
  return {
    mode: 'token',
    forRepo: async () => client,
    rememberInstallation: () => {},
    appClient: undefined,
    appId: undefined,
    login: () => (login ??= client.rest.users.getAuthenticated().then((r) => r.data.login, (err: unknown) => {
      login = undefined;
      throw err;
    })),
  };
}

/** The error a user sees when the App cannot act for a repository: what GitHub said, and what to change. */
export class GitHubAppError extends AppError {}

function appAccess(o: GitHubAccessOptions, auth: Extract<GitHubAuthConfig, { mode: 'app' }>): GitHubAccess {
  const appClient = createGitHubClient({ authStrategy: createAppAuth, auth: { appId: auth.appId, privateKey: auth.privateKey }, baseUrl: o.baseUrl, log: o.log, rateLimitRetries: o.rateLimitRetries });
  const installationOf = new Map<string, number>(); // lower-cased owner/repo → installation id
  const clients = new Map<number, GitHubClient>(); // installation id → its client (which keeps its token)
  const key = (owner: string, repo: string) => `${owner}/${repo}`.toLowerCase();
  let login: Promise<string> | undefined;

  async function lookUpInstallation(owner: string, repo: string): Promise<number> {
    try {
      const { data } = await appClient.rest.apps.getRepoInstallation({ owner, repo });
      return data.id;
    } catch (err) {
      // GitHub answers 404 here for an App it does not know as well: ask about the App itself before saying "not installed".
      if ((err as { status?: number }).status === 404) {
        await appClient.rest.apps.getAuthenticated().catch((appErr: unknown) => {
          throw appFailure(appErr, auth.appId);
        });
      }
      throw appFailure(err, auth.appId, `${owner}/${repo}`);
    }
  }

  function clientFor(installationId: number): GitHubClient {
    let client = clients.get(installationId);
    if (!client) {
      client = createGitHubClient({
        authStrategy: installationAuthStrategy,
        auth: { createToken: (refresh: boolean) => appClient.auth({ type: 'installation', installationId, refresh }), log: o.log },
        baseUrl: o.baseUrl,
        log: o.log,
        rateLimitRetries: o.rateLimitRetries,
      });
      clients.set(installationId, client);
    }
    return client;
  }

  return {
    mode: 'app',
    appClient,
    appId: auth.appId,
    async forRepo(owner, repo) {
      let id = installationOf.get(key(owner, repo));
      if (id === undefined) {
        id = await lookUpInstallation(owner, repo);
        installationOf.set(key(owner, repo), id);
      }
      return clientFor(id);
    },
    rememberInstallation(owner, repo, installationId) {
      installationOf.set(key(owner, repo), installationId);
    },
    login: () =>
      (login ??= appClient.rest.apps.getAuthenticated().then(
        (r) => `${r.data?.slug ?? ''}[bot]`,
        (err: unknown) => {
          login = undefined;
          throw appFailure(err, auth.appId);
        },
      )),
  };
}

/** What to check when GitHub refuses the App's JWT (401): said the same way by builds, doctor and recovery. */
export const appCredentialsFix = (appId?: number) =>
  `check APP_ID and PRIVATE_KEY: APP_ID${appId === undefined ? '' : ` (${appId})`} must be the App's ID and PRIVATE_KEY one of its current private keys (App settings → Private keys); check this host's clock too`;

/** GitHub's answer to the App's JWT or an installation lookup, as a message that says what to fix. */
export function appFailure(err: unknown, appId: number, repo?: string): Error {
  const status = (err as { status?: number }).status;
  const said = (err as Error).message;
  if (status === 401) {
    return new GitHubAppError(502, `GitHub refused the App's credentials (${said})`, {
      hint: appCredentialsFix(appId),
      cause: err,
    });
  }
  if (status === 404 && repo) {
    return new GitHubAppError(404, `the GitHub App ${appId} is not installed on ${repo}`, {
      hint: `install the App on ${repo.split('/')[0]} and give it access to ${repo} (App settings → Install App), then redeliver or trigger the build again`,
      cause: err,
    });
  }
  if (status === 404) {
    return new GitHubAppError(502, `GitHub knows no App with APP_ID ${appId} (${said})`, { hint: 'APP_ID must be the App ID shown on the App’s settings page', cause: err });
  }
  return err instanceof Error ? err : new Error(said);
}
