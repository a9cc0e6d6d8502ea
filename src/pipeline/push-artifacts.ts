import type Docker from 'dockerode';
import { copyOut } from '../engine/copy-out.js';
import { BuildError } from '../errors.js';
import type { BuildLogWriter } from '../logs/build-logs.js';
import { pushArtifact } from '../registry/artifact.js';
import { ARTIFACT_ANNOTATIONS, artifactTag } from '../registry/internal-tags.js';
import type { ArtifactSpec, ImageSpec } from '../spec/docker-info.js';
import type { BuildRecord } from '../store/store.js';
import { registryFailure, type PipelineDeps } from './pipeline-deps.js';

export const DEFAULT_ARTIFACT_MAX_BYTES = 1024 ** 3;

/** The image (a local reference) each platform's artifacts are copied from; platform undefined for a single-platform build. */
export interface ArtifactSource {
  platform?: string;
  image: string;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * Copies every artifact path out of each built image and pushes it as an
 * OCI artifact into the image's repository, under `_artifact-…` tags
 * (registry/internal-tags.ts), streamed from the engine to the registry
 * without touching the worker's disk. `imageDigest` (the image or index the
 * tags will point at) is written into each artifact so that deleting that
 * version deletes its artifacts too.
 */
export async function pushArtifacts(
  deps: PipelineDeps,
  build: BuildRecord,
  spec: ImageSpec,
  sources: ArtifactSource[],
  imageDigest: string,
  signal: AbortSignal,
  out: BuildLogWriter,
): Promise<void> {
  const maxBytes = deps.settings.artifactMaxBytes ?? DEFAULT_ARTIFACT_MAX_BYTES;
  for (const source of sources) {
    for (const artifact of spec.artifacts) await pushOne(deps, build, spec, artifact, source, imageDigest, maxBytes, signal, out);
  }
}

async function pushOne(
  deps: PipelineDeps,
  build: BuildRecord,
  spec: ImageSpec,
  artifact: ArtifactSpec,
  source: ArtifactSource,
  imageDigest: string,
  maxBytes: number,
  signal: AbortSignal,
  out: BuildLogWriter,
): Promise<void> {
  const name = spec.serviceName;
  const tag = artifactTag(build.sha, artifact.name, source.platform);
  const what = `artifact ${artifact.name} (${artifact.path}${source.platform ? `, ${source.platform}` : ''})`;
  out.line(`copying ${what} out of the image`);
  const copy = await copyOut(deps.docker as Docker, source.image, artifact.path, { maxBytes, platform: source.platform, signal, name: artifact.name });
  const fileName = `${artifact.name}${source.platform ? `-${source.platform.replaceAll('/', '-')}` : ''}.tar.gz`;
  let pushed;
  try {
    pushed = await pushArtifact(deps.registry, name, tag, {
      file: copy.stream,
      fileName,
      annotations: {
        [ARTIFACT_ANNOTATIONS.imageDigest]: imageDigest,
        [ARTIFACT_ANNOTATIONS.name]: artifact.name,
        ...(source.platform ? { [ARTIFACT_ANNOTATIONS.platform]: source.platform } : {}),
        [ARTIFACT_ANNOTATIONS.revision]: build.sha,
        [ARTIFACT_ANNOTATIONS.version]: spec.version,
      },
    });
  } catch (err) {
    copy.stream.destroy();
    // The copy's own failure (missing path, over the limit) is what the user must read, not the upload cut short by it.
    const copyError = await copy.done.then(() => undefined, (e: unknown) => e);
    if (copyError instanceof BuildError) throw copyError;
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new BuildError('build aborted');
    throw registryFailure(err, `pushing ${what}`);
  }
  const done = await copy.done;
  if (done.removeError) out.line(`note: the copy's container was not removed (${done.removeError}); \`docker ps -a --filter label=dockhook.copy-out\` finds it`);
  await deps.store.recordArtifact(build.id, {
    name: artifact.name,
    platform: source.platform,
    path: artifact.path,
    repository: name,
    tag,
    digest: pushed.digest,
    layerDigest: pushed.layerDigest,
    size: pushed.layerSize,
  });
  out.line(`pushed ${what}: ${deps.settings.registry}/${name}:${tag} ${pushed.digest} (${mib(pushed.layerSize)} gzipped, ${mib(done.tarBytes)} tar)`);
}
