import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck/light.js';
import type { Logger } from './log.js';

const GitHub = Octokit.plugin(retry, throttling);

/**
 * Writes (statuses, comments) one at a time, at most 1 a second on average,
 * with a burst of 5: GitHub allows 80 content-creating requests a minute and
 * asks for serial writes, so a sustained 60 a minute stays under it. The
 * plugin's own limiter spaces every write 1 s apart, which made the statuses
 * of a multi-image merge (one per image, most of them instant "unchanged")
 * trail the builds by seconds. One per process, like the plugin's.
 */
const writes = new Bottleneck.Group({
  id: 'dockhook-write',
  maxConcurrent: 1,
  reservoir: 5,
  reservoirIncreaseAmount: 1,
  reservoirIncreaseInterval: 1000,
  reservoirIncreaseMaximum: 5,
  timeout: 120_000,
});
export type GitHubClient = InstanceType<typeof GitHub>;

export interface GitHubClientOptions {
  /** A token (GITHUB_TOKEN). */
  token?: string;
  /** Instead of a token: an Octokit auth strategy and its options (an App's, an installation's). */
  authStrategy?: unknown;
  auth?: unknown;
  baseUrl: string;
  log: Logger;
  /** How many times a rate-limited request waits and tries again before it fails the build. */
  rateLimitRetries?: number;
}

/**
 * Octokit with the retry plugin (5xx and network errors, backing off) and the
 * throttling plugin (waits out primary and secondary rate limits until reset).
 */
export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  const log = options.log.child({ component: 'github' });
  const maxRateLimitRetries = options.rateLimitRetries ?? 2;
  return new GitHub({
    auth: options.authStrategy ? options.auth : options.token,
    ...(options.authStrategy ? { authStrategy: options.authStrategy } : {}),
    baseUrl: options.baseUrl,
    userAgent: 'dockhook',
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => log.warn(message),
      // plugin-request-log reports every non-2xx here, expected 404s included (a repository without
      // .dockerignore); the pipeline classifies and logs the failures that matter.
      error: (message: string) => log.debug(message),
    },
    retry: { doNotRetry: [400, 401, 403, 404, 410, 422, 451] },
    throttle: {
      write: writes,
      onRateLimit: (retryAfter: number, request: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
        log.warn({ retryAfter, method: request.method, url: request.url, retryCount }, 'GitHub rate limit reached; waiting for the reset');
        return retryCount < maxRateLimitRetries;
      },
      onSecondaryRateLimit: (retryAfter: number, request: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
        log.warn({ retryAfter, method: request.method, url: request.url, retryCount }, 'GitHub secondary rate limit; waiting');
        return retryCount < maxRateLimitRetries;
      },
    },
  });
}
