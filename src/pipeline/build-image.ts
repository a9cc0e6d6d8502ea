import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import type { BuildRecord } from '../store/store.js';
import { imageTags, type ImageSpec } from '../spec/docker-info.js';
import { buildImage } from './build.js';
import { findCacheRefs } from './cache-refs.js';
import { explainBuildFailure } from './build-failure.js';
import { createBuildContext, excludedBuildFiles } from './context.js';
import { stageContext } from './stage-context.js';
import { pushImage } from './push.js';
import { readRepoFile, openTarball } from './source.js';
import { registryFailure, short, type PipelineDeps } from './pipeline-deps.js';
import { readVersionTag, versionBeingBuilt, versionTaken } from './version-tag.js';
import { describePlatforms, platformProblem, runnablePlatforms } from '../engine/platforms.js';
import { indexChildFor, putIndex, type IndexChild } from '../registry/image-index.js';
import { platformTag } from '../registry/internal-tags.js';
import { retagImage } from '../registry/retag.js';
import { classifyEngineError } from './engine-errors.js';
import { pushArtifacts, type ArtifactSource } from './push-artifacts.js';
import type { BuildLogWriter } from '../logs/build-logs.js';

/**
 * A version tag names one commit forever. Returns 'fresh' when the tag is
 * free (or holds this commit and the build is forced: a rebuild re-pushes it
 * with the new digest), 'done' when it already holds this very commit (a
 * re-run after a crash or a redelivery), and refuses when it holds another.
 */
async function checkVersionTag(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec): Promise<'fresh' | 'done'> {
  const existing = await readVersionTag(deps, spec);
  if (!existing) {
    // Two builds of one image:version from different commits (two repositories naming one image) may both find it free.
    const holder = await deps.store.claimVersion(spec.serviceName, spec.version, build.sha);
    if (holder === build.sha) return 'fresh';
    throw versionBeingBuilt(spec, holder);
  }
  if (existing.revision === build.sha) return build.force ? 'fresh' : 'done';
  // A version bump of an unchanged image tagged an image built at an earlier commit: the version is still this commit's.
  if (build.force && (await taggedByThisCommit(deps, build, spec, existing.digest))) return 'fresh';
  throw versionTaken(spec, existing);
}

async function taggedByThisCommit(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, digest: string): Promise<boolean> {
  const last = await deps.store.lastSuccess(spec.serviceName);
  return last?.sha === build.sha && last.pushed.some((p) => p.tag === spec.version && p.digest === digest);
}

/** What one engine build of the image needs besides the spec: the platform (undefined: the engine's own) and the local references it gets. */
interface EngineBuild {
  platform?: string;
  refs: string[];
}

/** Fetches the source and builds it once on the engine; returns the image ID. */
async function buildOnEngine(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, what: EngineBuild, dockerignore: string | undefined, signal: AbortSignal, out: BuildLogWriter, cacheFrom: string[]): Promise<string> {
  const { settings } = deps;
  const where = { owner: build.owner, repo: build.repo };
  const contextPrefix = spec.context ? `${spec.context}/` : '';
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
  // An app's Dockerfile says ARG DOCKHOOK_REGISTRY and FROM ${DOCKHOOK_REGISTRY}/base:1.2; dockerInfo.json cannot point it elsewhere.
  const buildArgs = { ...spec.buildArgs, DOCKHOOK_REGISTRY: settings.registry };
  const builder = await settings.builder();
  out.line(`building ${what.refs.join(', ')}${what.platform ? ` for ${what.platform}` : ''} with the ${builder === 'buildkit' ? 'BuildKit' : 'classic'} builder`);
  const missingDockerfile = () => new BuildError(`Dockerfile not found at ${contextPrefix}${spec.dockerfile} in ${short(build.sha)}; set "dockerfile" in dockerInfo.json`);
  const staged = builder === 'buildkit' ? await stageContext(context, spec.dockerfile, excludedBuildFiles(dockerignore, spec.dockerfile)) : undefined;
  if (staged && 'missingDockerfile' in staged) throw missingDockerfile();
  let imageId: string;
  try {
    imageId = await buildImage(deps.docker, {
      context: staged ? { dirs: staged.dirs } : { tar: context.stream },
      dockerfile: spec.dockerfile,
      tags: what.refs,
      labels,
      buildArgs,
      target: spec.target,
      platform: what.platform,
      cacheFrom,
      credentials: settings.pullCredentials,
      signal,
      onLine: (line) => out.line(line),
      explain: (message) =>
        explainBuildFailure(message, { credentials: settings.pullCredentials, dockerfile: staged?.dockerfileText, buildArgs, registry: settings.registry }),
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
  out.line(`built ${imageId}${what.platform ? ` (${what.platform})` : ''} from ${sent.files} files (${sent.bytes} bytes, ${sent.ignored} ignored)`);
  return imageId;
}

/** Fails before anything is built when the engine cannot run one of the platforms asked for, with the fix. */
async function checkPlatforms(deps: PipelineDeps, spec: ImageSpec, out: BuildLogWriter): Promise<void> {
  let runnable;
  try {
    runnable = await runnablePlatforms(deps.docker);
  } catch (err) {
    throw classifyEngineError(err, 'asking the engine which platforms it runs');
  }
  const problems = spec.platforms.map((p) => platformProblem(p, runnable)).filter((p): p is string => p !== undefined);
  if (problems.length) throw new BuildError(problems.join('; '));
  out.line(`platforms: ${spec.platforms.join(', ')} (the engine runs ${describePlatforms(runnable)})`);
}

/** Builds one image on the engine (once per platform) and pushes its tags: the path of an image whose inputs changed. */
export async function buildAndPush(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, signal: AbortSignal, out: BuildLogWriter, progress: (d: string) => void): Promise<string> {
  const { settings } = deps;
  const where = { owner: build.owner, repo: build.repo };
  const name = spec.serviceName;
  const repository = `${settings.registry}/${name}`;
  if ((await checkVersionTag(deps, build, spec)) === 'done') {
    out.line(`${repository}:${spec.version} already holds ${build.sha}: nothing to do`);
    return `${repository}:${spec.version} already built from this commit`;
  }
  if (spec.platforms.length) await checkPlatforms(deps, spec, out);
  progress(build.force ? 'rebuilding (forced)' : 'building');

  // Pushed in this order so that a present version tag implies its sha-, extra tags and artifacts are there too.
  const tags = [...imageTags(spec, build.sha).filter((t) => t !== spec.version), spec.version];
  const moveLatest = build.branch === build.defaultBranch && !(await deps.store.hasLaterLatest(name, build.mergedAt, build.id));
  if (build.branch === build.defaultBranch && !moveLatest) out.line('latest stays: a later merge of this image already pushed it');
  if (moveLatest) tags.push('latest');
  // A host that never built this image reuses the layers of its last versions from the registry.
  const cacheFrom = await findCacheRefs(deps.registry, { name, repository, version: spec.version, onLine: (line) => out.line(line) });
  const dockerignore = await readRepoFile(deps.octokit, where, posix.join(spec.context, '.dockerignore'), build.sha);

  const pushTag = async (tag: string, push: () => Promise<string>): Promise<void> => {
    // The claim and the push are one step per image across workers: a later merge that claimed it meanwhile keeps it.
    if (tag === 'latest' && !(await deps.store.claimLatest(name, build.mergedAt, build.id))) {
      out.line('latest stays: a later merge of this image took it while this one built');
      return;
    }
    const ref = `${repository}:${tag}`;
    out.line(`pushing ${ref}`);
    const digest = await push();
    await deps.store.recordPush(build.id, { ref, tag, digest }, tag === 'latest');
    out.line(`pushed ${ref} ${digest}`);
  };
  const enginePush = async (ref: string): Promise<string> => {
    const started = performance.now();
    const digest = await pushImage(deps.docker, ref, { registry: settings.registry, auth: settings.registryAuth, signal, onLine: (line) => out.line(line) });
    deps.observePush?.((performance.now() - started) / 1000);
    return digest;
  };

  if (!spec.platforms.length) {
    const refs = tags.map((t) => `${repository}:${t}`);
    await buildOnEngine(deps, build, spec, { refs }, dockerignore, signal, out, cacheFrom);
    const [first, ...rest] = tags;
    let digest = '';
    await pushTag(first!, async () => (digest = await enginePush(`${repository}:${first}`)));
    if (spec.artifacts.length) await pushArtifacts(deps, build, spec, [{ image: refs[0]! }], digest, signal, out);
    for (const tag of rest) await pushTag(tag, () => enginePush(`${repository}:${tag}`));
    return `pushed ${repository}:${spec.version}`;
  }

  // One engine build per platform, each pushed under its own _platform- tag; the index is what the tags name.
  const children: IndexChild[] = [];
  const sources: ArtifactSource[] = [];
  for (const platform of spec.platforms) {
    const childTag = platformTag(build.sha, platform);
    const childRef = `${repository}:${childTag}`;
    progress(`building ${platform}`);
    await buildOnEngine(deps, build, spec, { platform, refs: [childRef] }, dockerignore, signal, out, cacheFrom);
    out.line(`pushing ${childRef}`);
    const digest = await enginePush(childRef);
    const child = await indexChild(deps, name, digest, platform);
    await deps.store.recordPlatform(build.id, { platform, digest, tag: childTag });
    out.line(`pushed ${childRef} ${digest}`);
    children.push(child);
    sources.push({ platform, image: childRef });
  }
  const [first, ...rest] = tags;
  let indexDigest = '';
  await pushTag(first!, async () => {
    try {
      return (indexDigest = await putIndex(deps.registry, name, first!, children));
    } catch (err) {
      throw registryFailure(err, `putting the index of ${spec.platforms.join(', ')} as ${repository}:${first}`);
    }
  });
  if (spec.artifacts.length) await pushArtifacts(deps, build, spec, sources, indexDigest, signal, out);
  for (const tag of rest) {
    await pushTag(tag, async () => {
      try {
        return (await retagImage(deps.registry, name, indexDigest, [tag]))[0]!.digest;
      } catch (err) {
        throw registryFailure(err, `tagging ${repository}:${tag}`);
      }
    });
  }
  return `pushed ${repository}:${spec.version} for ${spec.platforms.join(', ')}`;
}

async function indexChild(deps: PipelineDeps, name: string, digest: string, platform: string) {
  try {
    return await indexChildFor(deps.registry, name, digest, platform);
  } catch (err) {
    throw registryFailure(err, `reading back ${name}@${digest} (${platform})`);
  }
}
