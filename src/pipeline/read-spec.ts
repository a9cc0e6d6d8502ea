import { BuildError } from '../errors.js';
import type { GitHubClient } from '../github.js';
import { readDockerInfo, SpecError, type DockerInfo } from '../spec/docker-info.js';
import type { BuildRecord } from '../store/store.js';
import { short } from './pipeline-deps.js';
import { assertRepoReadable, readRepoFile } from './source.js';

/** dockerInfo.json at the build's commit, validated whole; a BuildError that says what to fix otherwise. */
export async function readSpec(deps: { octokit: GitHubClient }, build: Pick<BuildRecord, 'owner' | 'repo' | 'sha'>): Promise<DockerInfo> {
  const where = { owner: build.owner, repo: build.repo };
  const text = await readRepoFile(deps.octokit, where, 'dockerInfo.json', build.sha);
  if (text === undefined) {
    await assertRepoReadable(deps.octokit, where);
    throw new BuildError(`dockerInfo.json not found at the root of ${build.owner}/${build.repo}@${short(build.sha)}; add {"service_name": "...", "version": "..."}`);
  }
  try {
    return readDockerInfo(text);
  } catch (err) {
    if (err instanceof SpecError) throw new BuildError(err.message);
    throw err;
  }
}

