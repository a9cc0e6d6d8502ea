import type Docker from 'dockerode';
import type { PullCredentials } from '../engine/pull-credentials.js';
import { BuildError } from '../errors.js';
import type { GitHubClient } from '../github.js';
import { RegistryError, type RegistryClient } from '../registry/client.js';
import type { Store } from '../store/store.js';
import type { Builder } from './builder-choice.js';
import type { DeployConfig, DeployReporter } from '../deploy/run-deploy.js';
import type { RegistryAuth } from './push.js';

export interface PipelineSettings {
  registry: string;
  registryAuth?: RegistryAuth;
  /** Which builder to use; BUILDER=auto asks the engine once. */
  builder: () => Promise<Builder>;
  /** Logins for pulls of base images during a build: REGISTRY's and config.json's. */
  pullCredentials: PullCredentials;
  /** ARTIFACT_MAX_BYTES (default 1 GiB). */
  artifactMaxBytes?: number;
}

export interface PipelineDeps {
  octokit: GitHubClient;
  docker: Docker;
  registry: RegistryClient;
  store: Store;
  settings: PipelineSettings;
  /** DEPLOY_* settings; absent, no image is deployed whatever dockerInfo.json asks. */
  deploy?: { config: DeployConfig; reporter?: DeployReporter };
  /** Seconds one reference took to push (the push-duration histogram). */
  observePush?: (seconds: number) => void;
}

export const short = (sha: string) => sha.slice(0, 7);

export function registryFailure(err: unknown, what: string): BuildError {
  if (err instanceof RegistryError) {
    return new BuildError(`registry error while ${what}: ${err.message}`, { transient: err.status >= 500 || err.status === 429, cause: err });
  }
  return new BuildError(`registry error while ${what}: ${(err as Error).message}`, { transient: true, cause: err });
}
