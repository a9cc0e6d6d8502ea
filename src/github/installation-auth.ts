import type { Logger } from '../log.js';

interface InstallationToken {
  token: string;
  expiresAt: string;
}

export interface InstallationAuthOptions {
  /** Asks GitHub for an installation token (POST /app/installations/{id}/access_tokens); refresh skips any cache. */
  createToken: (refresh: boolean) => Promise<InstallationToken>;
  log: Logger;
  now?: () => number;
}

/** A token is renewed this long before GitHub says it expires (they live an hour). */
const RENEW_BEFORE_MS = 5 * 60_000;

type RequestFn = ((options: Record<string, unknown>) => Promise<unknown>) & { endpoint: { merge: (route: unknown, parameters?: unknown) => Record<string, any> } };

/**
 * An Octokit auth strategy for one installation. @octokit/auth-app keeps a
 * token 59 minutes whatever its expires_at says, and passes on GitHub's 401
 * once the token is a few seconds old. Here a token is kept until shortly
 * before its own expires_at, and a 401 ("Bad credentials": expired or revoked
 * early) gets one fresh token and one more try.
 */
export function installationAuthStrategy(options: InstallationAuthOptions) {
  const now = options.now ?? Date.now;
  let current: InstallationToken | undefined;
  let pending: Promise<InstallationToken> | undefined;

  function fetchToken(refresh: boolean): Promise<InstallationToken> {
    // Concurrent requests share one token request.
    pending ??= options.createToken(refresh).then(
      (t) => {
        current = { token: t.token, expiresAt: t.expiresAt };
        pending = undefined;
        return current;
      },
      (err: unknown) => {
        pending = undefined;
        throw err;
      },
    );
    return pending;
  }

  async function token(): Promise<string> {
    if (current && Date.parse(current.expiresAt) - now() > RENEW_BEFORE_MS) return current.token;
    return (await fetchToken(true)).token;
  }

  const auth = async () => ({ type: 'token', tokenType: 'installation', token: await token() });
  auth.hook = async (request: RequestFn, route: unknown, parameters?: unknown) => {
    const endpoint = request.endpoint.merge(route, parameters);
    const used = await token();
    endpoint.headers.authorization = `token ${used}`;
    try {
      return await request(endpoint);
    } catch (err) {
      if ((err as { status?: number }).status !== 401) throw err;
      // Another request may already have replaced the token that was refused.
      const fresh = current && current.token !== used ? current.token : (await fetchToken(true)).token;
      options.log.info({ component: 'github' }, 'GitHub refused the installation token (expired or revoked); asked for a new one and tried again');
      endpoint.headers.authorization = `token ${fresh}`;
      return request(endpoint);
    }
  };
  return auth;
}
