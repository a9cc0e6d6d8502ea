import { BuildError } from '../errors.js';
import type { TagInfo } from '../registry/client.js';
import type { ImageSpec } from '../spec/docker-info.js';
import { registryFailure, short, type PipelineDeps } from './pipeline-deps.js';

/** The image's version tag as the registry has it now; undefined when it is free. */
export async function readVersionTag(deps: PipelineDeps, spec: ImageSpec): Promise<TagInfo | undefined> {
  try {
    return await deps.registry.describeTag(spec.serviceName, spec.version);
  } catch (err) {
    throw registryFailure(err, `checking whether ${spec.serviceName}:${spec.version} exists`);
  }
}

/** Another commit's build claimed the free version first (two repositories naming one image). */
export function versionBeingBuilt(spec: ImageSpec, holder: string): BuildError {
  return new BuildError(`${spec.serviceName}:${spec.version} is being built from ${short(holder)} by another build; bump version in dockerInfo.json`);
}

/** The version tag holds another commit's image: versions are immutable. */
export function versionTaken(spec: ImageSpec, existing: TagInfo): BuildError {
  const holder = existing.revision ? short(existing.revision) : 'an image without a revision label';
  return new BuildError(`tag ${spec.version} already holds ${holder}; bump version in dockerInfo.json`);
}
