import type { GitHubClient } from '../github.js';
import type { Logger } from '../log.js';

export const STATUS_CONTEXT = 'dockhook';

/** `dockhook` for a single-image build (existing branch protection rules keep matching), `dockhook/<service>` for each image of a multi-image merge. */
export function statusContext(service: string | undefined): string {
  return service ? `${STATUS_CONTEXT}/${service}` : STATUS_CONTEXT;
}
const MAX_DESCRIPTION = 140;

export type StatusState = 'pending' | 'success' | 'failure' | 'error';

/** GitHub refuses a description over 140 characters: one line, cut with an ellipsis. */
export function toStatusDescription(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_DESCRIPTION ? line : `${line.slice(0, MAX_DESCRIPTION - 1)}…`;
}

export interface StatusTarget {
  owner: string;
  repo: string;
  sha: string;
  buildId: number;
  /** The image of a multi-image merge; undefined for a single-image build. */
  service?: string;
}

/**
 * Reports to GitHub. A status that cannot be sent must not undo a build that
 * worked, so failures are logged and returned, not thrown.
 */
export async function reportStatus(
  octokit: GitHubClient,
  target: StatusTarget,
  state: StatusState,
  description: string,
  publicUrl: string | undefined,
  log: Logger,
): Promise<boolean> {
  try {
    await octokit.rest.repos.createCommitStatus({
      owner: target.owner,
      repo: target.repo,
      sha: target.sha,
      state,
      context: statusContext(target.service),
      description: toStatusDescription(description),
      target_url: publicUrl ? `${publicUrl}/builds/${target.buildId}` : undefined,
    });
    return true;
  } catch (err) {
    log.warn({ err: { message: (err as Error).message, status: (err as { status?: number }).status }, state }, 'could not set the commit status on GitHub');
    return false;
  }
}
