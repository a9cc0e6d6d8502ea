import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { OpenedBlob } from './blobs.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { MEDIA_TYPES } from './manifests.js';
import { checkName, checkReference, checkTag } from './names.js';

/**
 * Build artifacts as OCI artifacts (image-spec 1.1, "Guidelines for Artifact
 * Usage"): an OCI image manifest with dockhook's own `artifactType`, the
 * empty config `{}` and one tar+gzip layer holding the files, titled with
 * the file name so that `oras pull` writes it out under that name.
 *
 * Distribution 2.8.2 (Debian's docker-registry, registry:2) takes this as it
 * is: it does not know `artifactType` or application/vnd.oci.empty.v1+json,
 * but it neither refuses them nor rewrites the manifest (the bytes read back
 * are the bytes PUT, digest included). It does insist that the config blob
 * exist in the repository, so the two bytes of `{}` are uploaded like any
 * blob (once per repository; HEAD first). No fallback to an
 * artifact-specific config media type was needed.
 *
 * The manifest's bytes are deterministic (fixed key order, annotations
 * sorted): the same file with the same annotations gives the same digest.
 */

export const ARTIFACT_TYPE = 'application/vnd.dockhook.artifact.v1';
export const ARTIFACT_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** The annotation OCI clients (ORAS) take as the layer's file name. */
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';

const EMPTY_BYTES = Buffer.from('{}');
/** image-spec 1.1's empty descriptor, with the optional embedded data (`{}` in base64) as ORAS writes it. */
export const EMPTY_CONFIG_DESCRIPTOR = {
  mediaType: OCI_EMPTY_MEDIA_TYPE,
  digest: `sha256:${createHash('sha256').update(EMPTY_BYTES).digest('hex')}`,
  size: EMPTY_BYTES.length,
  data: EMPTY_BYTES.toString('base64'),
} as const;

export interface PushArtifactOptions {
  /** Default ARTIFACT_TYPE. */
  artifactType?: string;
  /** The .tar.gz: a stream (streamed, never buffered) or bytes already in memory. */
  file: Readable | Buffer;
  /** Its name, a plain file name such as dist.tar.gz (no directories): the layer's title. */
  fileName: string;
  /** The file's sha256 digest and size when known: an artifact whose layer is already in the repository is then not uploaded again. */
  digest?: string;
  size?: number;
  /** The manifest's annotations (org.opencontainers.image.revision, …). */
  annotations?: Record<string, string>;
}

export interface PushedArtifact {
  /** The manifest's digest: what `oras pull <name>@<digest>` takes. */
  digest: string;
  /** Length of the manifest's bytes. */
  size: number;
  layerDigest: string;
  layerSize: number;
  /** Whether the layer went over the wire (false: the registry already had it). */
  layerUploaded: boolean;
}

export interface ArtifactLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations: Record<string, string>;
}

export interface ReadArtifact {
  /** The manifest's digest. */
  digest: string;
  artifactType: string;
  annotations: Record<string, string>;
  layer: ArtifactLayer;
  /** The layer's title annotation, when it has a usable one. */
  fileName?: string;
  /** The layer's bytes, streamed from the registry; checks its digest at the end. Destroy it if unread. */
  stream: Readable;
}

type ArtifactRegistry = Pick<RegistryClient, 'uploadBlob' | 'putManifest'>;
type ArtifactReader = Pick<RegistryClient, 'getManifestBytes' | 'openBlob'>;

/** PUTs the artifact under <name>:<tag>: config blob, layer blob, then the manifest. */
export async function pushArtifact(registry: ArtifactRegistry, name: string, tag: string, o: PushArtifactOptions): Promise<PushedArtifact> {
  checkName(name);
  checkTag(tag);
  const artifactType = o.artifactType ?? ARTIFACT_TYPE;
  checkMediaType(artifactType);
  checkFileName(o.fileName);
  const annotations = checkAnnotations(o.annotations ?? {});

  const destroy = () => {
    if (!Buffer.isBuffer(o.file)) o.file.destroy();
  };
  try {
    await registry.uploadBlob(name, EMPTY_BYTES);
  } catch (err) {
    destroy(); // nobody else will read it
    throw err;
  }
  const layer = await registry.uploadBlob(name, o.file, { digest: o.digest, size: o.size });

  const bytes = manifestBytes({
    artifactType,
    layer: { mediaType: ARTIFACT_LAYER_MEDIA_TYPE, digest: layer.digest, size: layer.size, annotations: { [TITLE_ANNOTATION]: o.fileName } },
    annotations,
  });
  const digest = await registry.putManifest(name, tag, bytes, MEDIA_TYPES.ociManifest);
  return { digest, size: bytes.length, layerDigest: layer.digest, layerSize: layer.size, layerUploaded: layer.uploaded };
}

/**
 * The artifact at <name>:<reference> (tag or digest) with its layer as a
 * stream; undefined when the registry has no such manifest. Refuses a
 * manifest that is not an artifact of `artifactType` (default ARTIFACT_TYPE),
 * such as an image pushed under that tag.
 */
export async function readArtifact(
  registry: ArtifactReader,
  name: string,
  reference: string,
  o: { artifactType?: string } = {},
): Promise<ReadArtifact | undefined> {
  checkName(name);
  checkReference(reference);
  const expected = o.artifactType ?? ARTIFACT_TYPE;
  const got = await registry.getManifestBytes(name, reference);
  if (!got) return undefined;
  const where = `${name}${reference.includes(':') ? '@' : ':'}${reference}`;
  const notArtifact = (why: string) =>
    new RegistryError(409, `${where} is not a dockhook artifact: ${why}`, { code: 'MANIFEST_INVALID', hint: 'the tag was overwritten by something else, or it names an image, not an artifact' });

  if (got.mediaType !== MEDIA_TYPES.ociManifest) throw notArtifact(`its manifest is ${got.mediaType}, not ${MEDIA_TYPES.ociManifest}`);
  let body: { artifactType?: unknown; config?: { mediaType?: unknown }; layers?: unknown; annotations?: unknown };
  try {
    body = JSON.parse(got.bytes.toString('utf8'));
  } catch {
    throw new RegistryError(502, `registry answered ${where} with something that is not a JSON manifest`);
  }
  // Registries that keep artifactType out of the manifest would leave the type in config.mediaType (the image-spec 1.0 way): read both.
  const artifactType = typeof body.artifactType === 'string' ? body.artifactType : typeof body.config?.mediaType === 'string' ? body.config.mediaType : '';
  if (artifactType !== expected) throw notArtifact(`its artifactType is ${JSON.stringify(artifactType || undefined)}, not ${expected}`);
  const layers = Array.isArray(body.layers) ? body.layers : [];
  if (layers.length !== 1) throw notArtifact(`it has ${layers.length} layers, not 1`);
  const layer = toLayer(layers[0]);
  if (!layer) throw notArtifact('its layer descriptor is malformed');

  const opened: OpenedBlob = await registry.openBlob(name, layer.digest);
  if (opened.size !== undefined && opened.size !== layer.size) {
    opened.stream.destroy();
    throw new RegistryError(502, `registry served ${name}@${layer.digest} as ${opened.size} bytes, but the manifest says ${layer.size}`, { code: 'SIZE_INVALID' });
  }
  const title = layer.annotations[TITLE_ANNOTATION];
  return {
    digest: got.digest,
    artifactType,
    annotations: stringRecord(body.annotations),
    layer,
    fileName: title && isPlainFileName(title) ? title : undefined,
    stream: opened.stream,
  };
}

/**
 * The manifest, serialised in a fixed order. `mediaType` is optional in an
 * OCI manifest but written anyway, as image-spec 1.1 asks of artifacts:
 * clients that only look at the body need it.
 */
export function manifestBytes(m: { artifactType: string; layer: ArtifactLayer; annotations: Record<string, string> }): Buffer {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: m.artifactType,
    config: EMPTY_CONFIG_DESCRIPTOR,
    layers: [{ mediaType: m.layer.mediaType, digest: m.layer.digest, size: m.layer.size, annotations: sorted(m.layer.annotations) }],
  };
  if (Object.keys(m.annotations).length > 0) manifest.annotations = sorted(m.annotations);
  return Buffer.from(JSON.stringify(manifest));
}

function toLayer(v: unknown): ArtifactLayer | undefined {
  const d = v as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown } | null;
  if (!d || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) return undefined;
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: stringRecord(d.annotations) };
}

function stringRecord(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function sorted(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** RFC 6838 type/subtype, which is what image-spec asks of artifactType. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function checkMediaType(t: string): void {
  if (!MEDIA_TYPE.test(t)) throw new RegistryError(400, `invalid artifactType ${JSON.stringify(t)}: expected a media type such as ${ARTIFACT_TYPE}`, { code: 'MANIFEST_INVALID' });
}

function isPlainFileName(n: string): boolean {
  // ORAS writes the layer out under its title: no directories, nothing that climbs out of where it pulls to.
  return n.length > 0 && n.length <= 255 && n !== '.' && n !== '..' && !/[/\\\0]/.test(n);
}

function checkFileName(n: string): void {
  if (typeof n !== 'string' || !isPlainFileName(n)) {
    throw new RegistryError(400, `invalid artifact file name ${JSON.stringify(n)}: use a plain file name such as dist.tar.gz, without '/'`, { code: 'NAME_INVALID' });
  }
}

function checkAnnotations(a: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(a)) {
    if (!k || typeof v !== 'string') {
      throw new RegistryError(400, `invalid artifact annotation ${JSON.stringify(k)}: keys must be non-empty and values strings`, { code: 'MANIFEST_INVALID' });
    }
  }
  return a;
}
