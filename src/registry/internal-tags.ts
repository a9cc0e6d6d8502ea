import { parsePlatform } from './image-index.js';

/**
 * Tags dockhook writes for itself, in an image's own repository, beside its
 * version tags. They all start with `_`, which dockerInfo.json may not use
 * for a version or an extra tag (spec/docker-info.ts), so they can never
 * collide with an image tag, and they sort after every version and sha- tag
 * that starts with a digit or an upper-case letter (and are told apart by
 * isInternalTag everywhere else: retention, the tag API).
 *
 * - `_platform-<sha7>-<os>-<arch>[-<variant>]`: one platform's image of a
 *   multi-platform build. registry:2 refuses an index whose children it does
 *   not hold in the same repository, so each child is pushed here first.
 * - `_artifact-<sha7>-<name>[-<os>-<arch>[-<variant>]]`: a build artifact (an
 *   OCI artifact, registry/artifact.ts), one per platform when the image has
 *   platforms.
 *
 * A forced rebuild of the same commit writes the same tags again: they name
 * the newest build of that commit, while the store keeps each build's digests.
 */

export const INTERNAL_TAG_PREFIX = '_';
export const PLATFORM_TAG_PREFIX = '_platform-';
export const ARTIFACT_TAG_PREFIX = '_artifact-';

/** Annotations dockhook puts on an artifact's manifest; retention and tag deletion find a version's artifacts by the first. */
export const ARTIFACT_ANNOTATIONS = {
  /** Digest of the image (or index) the artifact was built with: deleting that digest deletes the artifact. */
  imageDigest: 'dev.dockhook.image.digest',
  name: 'dev.dockhook.artifact.name',
  /** os/arch[/variant]; absent for an image built for the engine's own platform only. */
  platform: 'dev.dockhook.platform',
  revision: 'org.opencontainers.image.revision',
  version: 'org.opencontainers.image.version',
} as const;

export function isInternalTag(tag: string): boolean {
  return tag.startsWith(INTERNAL_TAG_PREFIX);
}

function platformSuffix(platform: string): string {
  const p = parsePlatform(platform);
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('-');
}

/** `_platform-abc1234-linux-arm64`. */
export function platformTag(sha: string, platform: string): string {
  return `${PLATFORM_TAG_PREFIX}${sha.slice(0, 7)}-${platformSuffix(platform)}`;
}

/** `_artifact-abc1234-dist` or `_artifact-abc1234-dist-linux-arm-v7`. */
export function artifactTag(sha: string, name: string, platform?: string): string {
  return `${ARTIFACT_TAG_PREFIX}${sha.slice(0, 7)}-${name}${platform ? `-${platformSuffix(platform)}` : ''}`;
}
