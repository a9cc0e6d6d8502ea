import type { GitHubAccess } from '../github/access.js';
import { createDeployment, setDeploymentStatus } from '../github/deployments.js';
import type { DeploymentRecord } from '../store/store.js';
import type { DeployReporter } from './run-deploy.js';

function describe(d: DeploymentRecord): string {
  if (d.state === 'success') return `${d.service} ${d.version} is running`;
  return d.reason ?? `${d.service} ${d.version}: deploy ${d.state}`;
}

/**
 * The Deployments API: one deployment per deploy, for the merge's SHA, in
 * DEPLOY_ENVIRONMENT; in_progress, then success or failure, log_url the
 * build page (github/deployments.ts turns off auto_merge and required
 * contexts: dockhook deploys the very commit it built).
 */
export function githubDeployReporter(github: GitHubAccess, publicUrl: string | undefined): DeployReporter {
  const logUrl = (d: DeploymentRecord) => (publicUrl ? `${publicUrl}/builds/${d.buildId}` : undefined);
  return {
    async start(d, where) {
      const octokit = await github.forRepo(where.owner, where.repo);
      const created = await createDeployment(octokit, { ...where, sha: d.sha, environment: d.environment, description: `dockhook: ${d.service} ${d.version}`, payload: { service: d.service, version: d.version, digest: d.digest }, authKind: github.mode === 'app' ? 'app' : 'token' });
      await setDeploymentStatus(octokit, { ...where, id: created.id, state: 'in_progress', description: `deploying ${d.service} ${d.version}`, logUrl: logUrl(d), authKind: github.mode === 'app' ? 'app' : 'token' });
      return created.id;
    },
    async finish(githubId, d, where) {
      const octokit = await github.forRepo(where.owner, where.repo);
      await setDeploymentStatus(octokit, { ...where, id: githubId, state: d.state === 'success' ? 'success' : 'failure', description: describe(d), logUrl: logUrl(d), authKind: github.mode === 'app' ? 'app' : 'token' });
    },
  };
}
