/**
 * Manifest and image-config shapes, and the pure parts of reading them: which
 * media types to ask for, which image of a multi-platform list to describe,
 * and where the OCI labels live.
 */

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

/**
 * All four current types, always. A registry that finds the stored type
 * missing from Accept converts the manifest on the fly (registry 2.8 rewrites
 * it to schema 1), and that conversion has a DIFFERENT digest: deleting it 404s.
 */
export const MANIFEST_ACCEPT = [MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex].join(', ');

export const LABELS = {
  // Read after the config's own `created`, so the label wins where present: it is the build time dockhook stamps.
  created: 'org.opencontainers.image.created',
  revision: 'org.opencontainers.image.revision',
  version: 'org.opencontainers.image.version',
  source: 'org.opencontainers.image.source',
} as const;

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

export interface ManifestBody {
  mediaType?: string;
  config?: { digest?: string };
  manifests?: Array<{ digest: string; platform?: Platform }>;
  history?: Array<{ v1Compatibility?: string }>;
}

export interface Manifest {
  digest: string;
  mediaType: string;
  body: ManifestBody;
}

export interface ImageConfig {
  created?: string;
  config?: { Labels?: Record<string, unknown> | null };
}

export function isList(m: Manifest): boolean {
  return m.mediaType === MEDIA_TYPES.dockerList || m.mediaType === MEDIA_TYPES.ociIndex || Array.isArray(m.body.manifests);
}

export function isSchema1(m: Manifest): boolean {
  return m.mediaType === MEDIA_TYPES.schema1Signed || m.mediaType === MEDIA_TYPES.schema1;
}

/** Schema 1 has no config blob: the newest layer's v1Compatibility JSON plays that role. */
export function schema1Config(m: Manifest): ImageConfig {
  const v1 = m.body.history?.[0]?.v1Compatibility;
  try {
    return v1 ? (JSON.parse(v1) as ImageConfig) : {};
  } catch {
    return {};
  }
}

/**
 * The platforms a list offers (os/arch[/variant]) and the image to describe
 * it by: linux/amd64 when present (what most servers run), else the first.
 * buildx attestation entries (platform unknown/unknown) are not images.
 */
export function inspectList(m: Manifest): { platforms: string[]; pick?: string } {
  const entries = (m.body.manifests ?? []).filter((e) => e.platform?.os !== 'unknown');
  const platforms = entries.flatMap((e) => (e.platform ? [[e.platform.os, e.platform.architecture, e.platform.variant].filter(Boolean).join('/')] : []));
  const pick = entries.find((e) => e.platform?.os === 'linux' && e.platform.architecture === 'amd64') ?? entries[0];
  return { platforms, pick: pick?.digest };
}

/** created + the OCI labels dockhook stamps on images, from an image config. */
export function configFacts(config: ImageConfig): { created?: string; revision?: string; version?: string; source?: string } {
  const labels = config.config?.Labels ?? {};
  const facts: { created?: string; revision?: string; version?: string; source?: string } = {};
  if (typeof config.created === 'string') facts.created = config.created;
  for (const [field, label] of Object.entries(LABELS) as Array<[keyof typeof LABELS, string]>) {
    if (typeof labels[label] === 'string') facts[field] = labels[label];
  }
  return facts;
}

/** A manifest list or an OCI image index: a manifest that names other manifests, one per platform. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.dockerList || mediaType === MEDIA_TYPES.ociIndex;
}

/** A single-platform image manifest (Docker schema 2 or OCI): what an index may name. */
export function isImageManifestMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.dockerManifest || mediaType === MEDIA_TYPES.ociManifest;
}
