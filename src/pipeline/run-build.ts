import { posix } from 'node:path';
import type Docker from 'dockerode';
import type { BuildLogWriter } from '../logs/build-logs.js';
import type { PullCredentials } from '../engine/pull-credentials.js';
import { BuildError } from '../errors.js';
import type { GitHubClient } from '../github.js';
import type { BuildRecord, Store } from '../store/store.js';
import { RegistryError, type RegistryClient } from '../registry/client.js';
import { imageTags, parseDockerInfo, SpecError, type BuildSpec } from '../spec/docker-info.js';
import { buildImage } from './build.js';
import { findCacheRefs } from './cache-refs.js';
import type { Builder } from './builder-choice.js';
import { explainBuildFailure } from './build-failure.js';
import { createBuildContext, excludedBuildFiles } from './context.js';
import { stageContext } from './stage-context.js';
import { pushImage, type RegistryAuth } from './push.js';
import { assertRepoReadable, openTarball, readRepoFile } from './source.js';

export interface PipelineSettings {
  registry: string;
  registryAuth?: RegistryAuth;
  /** Which builder to use; BUILDER=auto asks the engine once. */
  builder: () => Promise<Builder>;
  /** Logins for pulls of base images during a build: REGISTRY's and config.json's. */
  pullCredentials: PullCredentials;
}

export interface PipelineDeps {
  octokit: GitHubClient;
  docker: Docker;
  registry: RegistryClient;
  store: Store;
  settings: PipelineSettings;
  /** Seconds one reference took to push (the push-duration histogram). */
  observePush?: (seconds: number) => void;
}

export interface PipelineResult {
  /** One line for the commit status. */
  summary: string;
  spec: BuildSpec;
}

const short = (sha: string) => sha.slice(0, 7);

async function readSpec(deps: PipelineDeps, build: BuildRecord): Promise<BuildSpec> {
  const where = { owner: build.owner, repo: build.repo };
  const text = await readRepoFile(deps.octokit, where, 'dockerInfo.json', build.sha);
  if (text === undefined) {
    await assertRepoReadable(deps.octokit, where);
    throw new BuildError(`dockerInfo.json not found at the root of ${build.owner}/${build.repo}@${short(build.sha)}; add {"service_name": "...", "version": "..."}`);
  }
  try {
    return parseDockerInfo(text);
  } catch (err) {
    if (err instanceof SpecError) throw new BuildError(err.message);
    throw err;
  }
}

function registryFailure(err: unknown, what: string): BuildError {
  if (err instanceof RegistryError) {
    return new BuildError(`registry error while ${what}: ${err.message}`, { transient: err.status >= 500 || err.status === 429, cause: err });
  }
  return new BuildError(`registry error while ${what}: ${(err as Error).message}`, { transient: true, cause: err });
}

/**
 * A version tag names one commit forever. Returns 'fresh' when the tag is
 * free, 'done' when it already holds this very commit (a re-run after a
 * crash or a redelivery), and refuses when it holds another commit.
 */
async function checkVersionTag(deps: PipelineDeps, build: BuildRecord, spec: BuildSpec): Promise<'fresh' | 'done'> {
  let existing;
  try {
    existing = await deps.registry.describeTag(spec.serviceName, spec.version);
  } catch (err) {
    throw registryFailure(err, `checking whether ${spec.serviceName}:${spec.version} exists`);
  }
  if (!existing) {
    // Two builds of one image:version from different commits (two repositories naming one image) may both find it free.
    const holder = await deps.store.claimVersion(spec.serviceName, spec.version, build.sha);
    if (holder === build.sha) return 'fresh';
    throw new BuildError(`${spec.serviceName}:${spec.version} is being built from ${short(holder)} by another build; bump version in dockerInfo.json`);
  }
  if (existing.revision === build.sha) return 'done';
  const holder = existing.revision ? short(existing.revision) : 'an image without a revision label';
  throw new BuildError(`tag ${spec.version} already holds ${holder}; bump version in dockerInfo.json`);
}

/**
 * One build, from commit to pushed digests. Plain steps in order; the worker
 * decides what a failure means (retry, fail, requeue on shutdown).
 */
export async function runPipeline(deps: PipelineDeps, build: BuildRecord, signal: AbortSignal, out: BuildLogWriter): Promise<PipelineResult> {
  const { settings } = deps;
  const where = { owner: build.owner, repo: build.repo };
  out.line(`dockhook build #${build.id}: ${build.owner}/${build.repo}@${build.sha} (${build.branch}), attempt ${build.attempts}`);

  const spec = await readSpec(deps, build);
  await deps.store.setImage(build.id, spec.serviceName, spec.version);
  const repository = `${settings.registry}/${spec.serviceName}`;
  out.line(`dockerInfo.json: image ${spec.serviceName}, version ${spec.version}, context ${spec.context || '.'}, dockerfile ${spec.dockerfile}`);

  if ((await checkVersionTag(deps, build, spec)) === 'done') {
    out.line(`${repository}:${spec.version} already holds ${build.sha}: nothing to do`);
    return { summary: `${repository}:${spec.version} already built from this commit`, spec };
  }

  // Pushed in this order so that a present version tag implies its sha- and extra tags are there too.
  const tags = [...imageTags(spec, build.sha).filter((t) => t !== spec.version), spec.version];
  const moveLatest = build.branch === build.defaultBranch && !(await deps.store.hasLaterLatest(spec.serviceName, build.mergedAt, build.id));
  if (build.branch === build.defaultBranch && !moveLatest) out.line('latest stays: a later merge of this image already pushed it');
  if (moveLatest) tags.push('latest');
  const refs = tags.map((t) => `${repository}:${t}`);
  // A host that never built this image reuses the layers of its last versions from the registry.
  const cacheFrom = await findCacheRefs(deps.registry, { name: spec.serviceName, repository, version: spec.version, onLine: (line) => out.line(line) });

  const contextPrefix = spec.context ? `${spec.context}/` : '';
  const dockerignore = await readRepoFile(deps.octokit, where, posix.join(spec.context, '.dockerignore'), build.sha);
  out.line(`fetching the source tarball${dockerignore === undefined ? '' : ` (applying ${contextPrefix}.dockerignore)`}`);
  const tarball = await openTarball(deps.octokit, where, build.sha, signal);
  const context = createBuildContext(tarball, { context: spec.context, dockerfile: spec.dockerfile, dockerignore });

  const labels = {
    'org.opencontainers.image.revision': build.sha,
    'org.opencontainers.image.source': build.repoUrl,
    'org.opencontainers.image.version': spec.version,
    'org.opencontainers.image.created': new Date().toISOString(),
    'org.opencontainers.image.title': spec.serviceName,
  };
  const builder = await settings.builder();
  out.line(`building ${refs.join(', ')} with the ${builder === 'buildkit' ? 'BuildKit' : 'classic'} builder`);
  const missingDockerfile = () => new BuildError(`Dockerfile not found at ${contextPrefix}${spec.dockerfile} in ${short(build.sha)}; set "dockerfile" in dockerInfo.json`);
  const staged = builder === 'buildkit' ? await stageContext(context, spec.dockerfile, excludedBuildFiles(dockerignore, spec.dockerfile)) : undefined;
  if (staged && 'missingDockerfile' in staged) throw missingDockerfile();
  let imageId: string;
  try {
    imageId = await buildImage(deps.docker, {
      context: staged ? { dirs: staged.dirs } : { tar: context.stream },
      dockerfile: spec.dockerfile,
      tags: refs,
      labels,
      buildArgs: spec.buildArgs,
      target: spec.target,
      cacheFrom,
      credentials: settings.pullCredentials,
      signal,
      onLine: (line) => out.line(line),
      explain: (message) =>
        explainBuildFailure(message, { credentials: settings.pullCredentials, dockerfile: staged?.dockerfileText, buildArgs: spec.buildArgs, registry: settings.registry }),
    });
  } catch (err) {
    if (!staged) {
      const seen = await Promise.race([context.done.catch(() => undefined), new Promise<undefined>((r) => setTimeout(r, 1000, undefined))]);
      if (seen && !seen.dockerfileFound) throw missingDockerfile();
    }
    throw err;
  } finally {
    await staged?.remove();
  }
  const sent = await context.done;
  out.line(`built ${imageId} from ${sent.files} files (${sent.bytes} bytes, ${sent.ignored} ignored)`);

  for (const ref of refs) {
    const tag = ref.slice(repository.length + 1);
    // The claim and the push are one step per image across workers: a later merge that claimed it meanwhile keeps it.
    if (tag === 'latest' && !(await deps.store.claimLatest(spec.serviceName, build.mergedAt, build.id))) {
      out.line('latest stays: a later merge of this image took it while this one built');
      continue;
    }
    out.line(`pushing ${ref}`);
    const pushStarted = performance.now();
    const digest = await pushImage(deps.docker, ref, { registry: settings.registry, auth: settings.registryAuth, signal, onLine: (line) => out.line(line) });
    deps.observePush?.((performance.now() - pushStarted) / 1000);
    await deps.store.recordPush(build.id, { ref, tag, digest }, tag === 'latest');
    out.line(`pushed ${ref} ${digest}`);
  }
  return { summary: `pushed ${repository}:${spec.version}`, spec };
}
