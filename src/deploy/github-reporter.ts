import type { GitHubClient } from '../github.js';
import type { DeploymentRecord } from '../store/store.js';
import type { DeployReporter } from './run-deploy.js';

/** GitHub caps a deployment status's description at 140 characters. */
const clip = (s: string) => (s.length > 140 ? `${s.slice(0, 139)}…` : s);

function describe(d: DeploymentRecord): string {
  if (d.state === 'success') return `${d.service} ${d.version} is running`;
  return d.reason ?? `${d.service} ${d.version}: deploy ${d.state}`;
}

/**
 * The Deployments API: one deployment per deploy, for the merge's SHA, in
 * DEPLOY_ENVIRONMENT; in_progress, then success or failure, log_url the
 * build page. auto_merge off and no required contexts: dockhook deploys the
 * very commit it built, and GitHub must not merge or gate anything for it.
 */
export function githubDeployReporter(octokit: GitHubClient, publicUrl: string | undefined): DeployReporter {
  const logUrl = (d: DeploymentRecord) => (publicUrl ? { log_url: `${publicUrl}/builds/${d.buildId}` } : {});
  return {
    async start(d, where) {
      const res = await octokit.rest.repos.createDeployment({
        ...where,
        ref: d.sha,
        environment: d.environment,
        description: clip(`dockhook: ${d.service} ${d.version}`),
        auto_merge: false,
        required_contexts: [],
        payload: { service: d.service, version: d.version, digest: d.digest },
      });
      const id = (res.data as { id?: number }).id;
      if (id === undefined) throw new Error(`GitHub did not create the deployment (${res.status})`);
      await octokit.rest.repos.createDeploymentStatus({ ...where, deployment_id: id, state: 'in_progress', description: clip(`deploying ${d.service} ${d.version}`), ...logUrl(d) });
      return id;
    },
    async finish(githubId, d, where) {
      await octokit.rest.repos.createDeploymentStatus({
        ...where,
        deployment_id: githubId,
        state: d.state === 'success' ? 'success' : 'failure',
        description: clip(describe(d)),
        ...logUrl(d),
      });
    },
  };
}
