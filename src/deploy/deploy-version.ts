import { AppError, BuildError } from '../errors.js';
import type { GitHubAccess } from '../github/access.js';
import { readSpec } from '../pipeline/read-spec.js';
import type { DeploymentRecord } from '../store/store.js';
import { deployImage, type DeployDeps } from './run-deploy.js';

/**
 * A rollback (or any earlier version) by the same swap: the build that
 * pushed service:version gives the digest and the commit, and that commit's
 * dockerInfo.json the deploy settings, so an old version runs as it was
 * meant to. Asked for by the operator, so the branch rule does not apply;
 * DEPLOY_IMAGES and every other guardrail do.
 */
export async function deployVersion(deps: DeployDeps & { github: GitHubAccess }, service: string, version: string): Promise<DeploymentRecord> {
  const build = await deps.store.buildOfVersion(service, version);
  if (!build) throw new AppError(404, `no successful build pushed ${service}:${version}`, { hint: `GET /api/images/${service} lists the versions in the registry` });
  let settings: unknown;
  try {
    settings = (await readSpec({ octokit: await deps.github.forRepo(build.owner, build.repo) }, build)).images.find((i) => i.serviceName === service)?.deploy;
  } catch (err) {
    if (err instanceof BuildError) throw new AppError(409, `cannot read the deploy settings of ${service} ${version}: ${err.message}`);
    throw err;
  }
  if (settings === undefined) throw new AppError(409, `dockerInfo.json at ${build.sha.slice(0, 7)} has no "deploy" entry for ${service}: that version was never meant to run here`);
  const lines: string[] = [];
  const outcome = await deployImage(deps, { build, service, version, settings, trigger: 'manual', anyBranch: true }, { line: (l) => lines.push(l), close: async () => {} });
  if (!outcome?.deployment) throw new AppError(409, outcome?.note ?? lines.at(-1) ?? `${service} ${version} was not deployed`, { hint: 'try again once the running deploy has finished' });
  if (outcome.deployment.state === 'skipped') throw new AppError(409, outcome.deployment.reason ?? outcome.note);
  return outcome.deployment;
}
