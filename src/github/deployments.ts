import type { Octokit } from '@octokit/rest';

/**
 * GitHub's Deployments API, as dockhook reports a deploy (issue 14): one
 * deployment for the SHA that was built, then its statuses (in_progress,
 * success or failure) with log_url pointing at the build page.
 *
 * Takes any @octokit/rest client; dockhook passes the one from createGitHubClient.
 */
type DeploymentsClient = Pick<Octokit, 'rest'>;

export type DeploymentState = 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success';

/** How dockhook authenticates to GitHub: it decides which permission an error message names. */
export type GitHubAuthKind = 'app' | 'token';

export interface CreateDeploymentInput {
  owner: string;
  repo: string;
  /** The commit dockhook built and pushed; the deployment is for exactly this SHA. */
  sha: string;
  /** DEPLOY_ENVIRONMENT; GitHub's own default is "production". */
  environment?: string;
  description?: string;
  /** Passed on in the deployment event (e.g. service, build id, image digest). */
  payload?: Record<string, unknown>;
  /** Unknown (undefined): error messages name both the App permission and the token scopes. */
  authKind?: GitHubAuthKind;
}

export interface CreatedDeployment {
  id: number;
  sha: string;
  environment: string;
  url: string;
}

export interface DeploymentStatusInput {
  owner: string;
  repo: string;
  /** The deployment's id, as createDeployment returned it. */
  id: number;
  state: DeploymentState;
  /** The build page; GitHub also sets target_url to it. */
  logUrl?: string;
  /** Where the deployed service answers. */
  environmentUrl?: string;
  /** Cut to GitHub's 140 characters; longer would be refused with 422. */
  description?: string;
  authKind?: GitHubAuthKind;
}

/** GitHub refused or failed a Deployments API call; the message says what to change. */
export class DeploymentApiError extends Error {
  /** GitHub's HTTP status, or undefined when no answer came (network). */
  readonly status?: number;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DeploymentApiError';
    this.status = options.status;
  }
}

export const MAX_DEPLOYMENT_STATUS_DESCRIPTION = 140;

/**
 * One line of at most 140 characters, as GitHub counts them (code points), cut
 * with an ellipsis. Cuts between grapheme clusters, so neither a surrogate pair
 * nor an emoji sequence or combining accent is split.
 */
export function toDeploymentDescription(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (Array.from(line).length <= MAX_DEPLOYMENT_STATUS_DESCRIPTION) return line;
  let out = '';
  let used = 0;
  const budget = MAX_DEPLOYMENT_STATUS_DESCRIPTION - 1; // room for '…'
  for (const { segment } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(line)) {
    const size = Array.from(segment).length;
    if (used + size > budget) break;
    out += segment;
    used += size;
  }
  return `${out.trimEnd()}…`;
}

/**
 * Creates the deployment for `sha`. Returns its id for the statuses.
 *
 * `auto_merge: false` and `required_contexts: []`: dockhook deploys the commit
 * it built, whatever else GitHub would check. With GitHub's defaults, a SHA
 * behind the default branch (every rollback) makes GitHub try to merge the
 * default branch into it and answer 409 or 202 with no deployment; and any
 * commit status that is not success (dockhook's own pending one for another
 * image, an unrelated failing check) makes GitHub answer 409 "Commit status
 * checks failed". What gets deployed was already decided by the build and
 * DEPLOY_IMAGES; the deployment only reports it.
 */
export async function createDeployment(octokit: DeploymentsClient, input: CreateDeploymentInput): Promise<CreatedDeployment> {
  const what = `create a deployment of ${input.sha.slice(0, 12)} in ${input.owner}/${input.repo}`;
  let response;
  try {
    response = await octokit.rest.repos.createDeployment({
      owner: input.owner,
      repo: input.repo,
      ref: input.sha,
      environment: input.environment ?? 'production',
      description: input.description,
      payload: input.payload ?? {},
      auto_merge: false,
      required_contexts: [],
    });
  } catch (err) {
    throw explain(err, what, input);
  }
  const data = response.data as Partial<{ id: number; sha: string; environment: string; url: string; message: string }>;
  // 202 (GitHub merged the default branch instead) cannot happen with auto_merge: false; never read it as a deployment.
  if (response.status !== 201 || typeof data.id !== 'number') {
    throw new DeploymentApiError(`Could not ${what}: GitHub answered ${response.status}${data.message ? ` (${data.message})` : ''} without a deployment`, {
      status: response.status,
    });
  }
  return { id: data.id, sha: data.sha ?? input.sha, environment: data.environment ?? input.environment ?? 'production', url: data.url ?? '' };
}

/** Adds a status to deployment `id`. Returns the status id. */
export async function setDeploymentStatus(octokit: DeploymentsClient, input: DeploymentStatusInput): Promise<number> {
  const what = `set deployment ${input.id} of ${input.owner}/${input.repo} to ${input.state}`;
  try {
    const { data } = await octokit.rest.repos.createDeploymentStatus({
      owner: input.owner,
      repo: input.repo,
      deployment_id: input.id,
      state: input.state,
      log_url: input.logUrl,
      environment_url: input.environmentUrl,
      description: input.description === undefined ? undefined : toDeploymentDescription(input.description),
    });
    return Number(data.id);
  } catch (err) {
    throw explain(err, what, input);
  }
}

function permissionNeeded(authKind: GitHubAuthKind | undefined): string {
  const app = 'the GitHub App needs the repository permission "Deployments: Read and write"';
  const token =
    'the token needs the "repo" or "repo_deployment" scope (classic) or "Deployments: Read and write" on this repository (fine-grained)';
  if (authKind === 'app') return app;
  if (authKind === 'token') return token;
  return `with a GitHub App, ${app}; with a token, ${token}`;
}

/** GitHub's error, with what to change. */
function explain(err: unknown, what: string, input: { owner: string; repo: string; authKind?: GitHubAuthKind }): DeploymentApiError {
  const e = err as { status?: number; message?: string; response?: { data?: { message?: string; errors?: unknown } } };
  const status = typeof e.status === 'number' ? e.status : undefined;
  const said = e.response?.data?.message ?? e.message ?? String(err);
  const answer = status === undefined ? said : `${status} ${said}`;
  let advice: string;
  if (status === 403 || status === 404) {
    // GitHub answers 404, not 403, to a token that may not see the repository, and 403 "Resource not
    // accessible by integration" to an App without the permission. A 403 can also be a rate limit
    // the client gave up waiting for.
    advice = `${permissionNeeded(input.authKind)}${status === 404 ? ` (or ${input.owner}/${input.repo} or the deployment does not exist)` : ''}`;
  } else if (status === 401) {
    advice = 'GitHub does not accept the credentials (expired or revoked?)';
  } else if (status === 409) {
    advice = 'GitHub refused the deployment (merge or commit status checks)';
  } else if (status === 422) {
    const errors = e.response?.data?.errors;
    advice = `GitHub refused the request${errors ? `: ${JSON.stringify(errors)}` : ''}`;
  } else {
    advice = status === undefined ? 'GitHub could not be reached' : 'GitHub failed';
  }
  return new DeploymentApiError(`Could not ${what} (GitHub: ${answer}): ${advice}`, { status, cause: err });
}
