import { createHash } from 'node:crypto';
import type { ImageSpec } from './docker-info.js';

/** What an image's build reads, each as git (or dockhook) already hashed it. */
export interface FingerprintInputs {
  /** git tree SHA of the context folder at the commit. */
  contextTree: string;
  /** git blob SHA of the Dockerfile. */
  dockerfileBlob: string;
  /** The registry the build is given as DOCKHOOK_REGISTRY: another one means other base images. */
  registry: string;
  /** Fingerprints of the images it depends on, by service name. */
  needs: Record<string, string>;
}

/**
 * Seed 001's checksum, from hashes git already keeps: equal fingerprints mean
 * the build would read the same bytes, so its image can be reused. The
 * version and the tags are left out on purpose: bumping them alone retags.
 * The whole context tree counts, files .dockerignore excludes included, so a
 * change there rebuilds (conservative, never wrong).
 */
export function fingerprintImage(spec: ImageSpec, inputs: FingerprintInputs): string {
  const canonical = JSON.stringify({
    v: 1,
    context: spec.context,
    contextTree: inputs.contextTree,
    dockerfile: spec.dockerfile,
    dockerfileBlob: inputs.dockerfileBlob,
    buildArgs: Object.entries(spec.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    target: spec.target ?? null,
    registry: inputs.registry,
    needs: Object.entries(inputs.needs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    // Only when asked for, so that images without them keep the fingerprints they had before these fields existed.
    ...(spec.platforms.length ? { platforms: [...spec.platforms].sort() } : {}),
    ...(spec.artifacts.length ? { artifacts: spec.artifacts.map((a) => [a.name, a.path]).sort() } : {}),
  });
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}
