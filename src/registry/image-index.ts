import { createHash } from 'node:crypto';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { MEDIA_TYPES, isImageManifestMediaType, isIndexMediaType } from './manifests.js';
import { checkName, checkReference, checkTag, isValidDigest } from './names.js';

/**
 * Multi-platform references: one tag that resolves to a different image on
 * each platform. dockhook pushes each platform's image on its own (under a
 * per-platform tag, in the same repository: registry:2 refuses an index whose
 * children it does not hold there), then PUTs an index naming them.
 *
 * The index is a Docker manifest list when every child is a Docker schema-2
 * manifest (what the classic builder and `docker push` produce), else an OCI
 * image index. Its bytes are deterministic: the same children, in any order,
 * always give the same bytes and so the same digest, which is what makes
 * "unchanged image, retag it" work for the index as for a single image.
 */

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface IndexChild {
  digest: string;
  /** The child's own manifest media type, as the registry stores it (ManifestBytes.mediaType). */
  mediaType: string;
  /** Length of the child manifest's bytes (ManifestBytes.bytes.length). */
  size: number;
  platform: ImagePlatform;
}

export interface BuiltIndex {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** An entry of an index read back from the registry. `platform` is absent when the entry has none. */
export interface ReadIndexChild {
  digest: string;
  mediaType?: string;
  size?: number;
  platform?: ImagePlatform;
}

const PART = /^[a-z0-9]+$/;

/** What people type for an architecture, and what image platforms call it (the GOARCH names). */
const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  x8664: 'amd64',
  aarch64: 'arm64',
  armhf: 'arm/v7',
  armel: 'arm/v6',
  i386: '386',
  i686: '386',
};

function invalidPlatform(message: string, hint?: string): RegistryError {
  return new RegistryError(400, message, { code: 'PLATFORM_INVALID', hint });
}

function checkPlatform(p: ImagePlatform, what: string): void {
  const shown = JSON.stringify(p);
  if (typeof p !== 'object' || p === null) throw invalidPlatform(`${what}: platform must be {os, architecture, variant?}, got ${shown}`);
  const alias = typeof p.architecture === 'string' ? ARCH_ALIASES[p.architecture] : undefined;
  if (alias) {
    throw invalidPlatform(`${what}: architecture ${p.architecture} is spelled ${alias} in image platforms`, `write ${p.os}/${alias}`);
  }
  for (const [field, value] of [['os', p.os], ['architecture', p.architecture]] as const) {
    if (typeof value !== 'string' || !PART.test(value)) {
      throw invalidPlatform(`${what}: platform ${field} ${JSON.stringify(value)} is not lowercase letters and digits`, 'write platforms as os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7');
    }
  }
  if (p.variant !== undefined && (typeof p.variant !== 'string' || !PART.test(p.variant))) {
    throw invalidPlatform(`${what}: platform variant ${JSON.stringify(p.variant)} is not lowercase letters and digits`, 'e.g. linux/arm/v7 or linux/arm64/v8');
  }
}

/** `linux/arm/v7` → {os: 'linux', architecture: 'arm', variant: 'v7'}. Throws a 400 RegistryError (PLATFORM_INVALID) saying how to write it. */
export function parsePlatform(s: string): ImagePlatform {
  if (typeof s !== 'string') throw invalidPlatform(`platform must be a string such as "linux/amd64", got ${JSON.stringify(s)}`);
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw invalidPlatform(`invalid platform ${JSON.stringify(s)}: expected os/architecture[/variant]`, 'e.g. linux/amd64, linux/arm64 or linux/arm/v7');
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  const p: ImagePlatform = variant === undefined ? { os, architecture } : { os, architecture, variant };
  checkPlatform(p, `invalid platform ${JSON.stringify(s)}`);
  return p;
}

/** The inverse of parsePlatform: os/architecture[/variant]. */
export function formatPlatform(p: ImagePlatform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

export function isValidPlatform(s: string): boolean {
  try {
    parsePlatform(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * The platform as the engine matches it (containerd's normalisation): arm64
 * is arm64/v8, arm is arm/v7, amd64/v1 is amd64. Two children with the same
 * key are the same platform to `docker pull`, so an index may hold only one.
 */
function platformKey(p: ImagePlatform): string {
  let variant = p.variant ?? '';
  if (p.architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = '';
  if (p.architecture === 'arm' && variant === '') variant = 'v7';
  if (p.architecture === 'amd64' && variant === 'v1') variant = '';
  return formatPlatform({ os: p.os, architecture: p.architecture, variant });
}

function invalidIndex(message: string, hint?: string, code = 'MANIFEST_INVALID'): RegistryError {
  return new RegistryError(400, message, { code, hint });
}

/**
 * The index naming `children`, as the exact bytes to PUT. Pure.
 *
 * Bytes: compact JSON (no whitespace, no final newline), keys in the order
 * the OCI and Docker Go types marshal them:
 *   {"schemaVersion":2,"mediaType":…,"manifests":[
 *     {"mediaType":…,"digest":…,"size":…,"platform":{"architecture":…,"os":…[,"variant":…]}}, …]}
 * children sorted by their platform string (os/architecture[/variant]).
 *
 * Refuses: no children; two children for one platform; a child that is
 * itself an index (the engine does not follow nested indexes); anything but a
 * Docker schema-2 or OCI image manifest; bad digests, sizes and platforms.
 */
export function buildIndex(children: IndexChild[]): BuiltIndex {
  if (!Array.isArray(children) || children.length === 0) {
    throw invalidIndex('an image index needs at least one child image', 'build at least one platform before assembling the index');
  }
  const seen = new Map<string, string>();
  for (const c of children) {
    const what = `index child ${c?.digest ?? JSON.stringify(c)}`;
    if (typeof c?.digest !== 'string' || !isValidDigest(c.digest)) {
      throw invalidIndex(`${what}: invalid digest, expected sha256:<64 hex digits>`, undefined, 'DIGEST_INVALID');
    }
    checkPlatform(c.platform, what);
    const shown = formatPlatform(c.platform);
    if (typeof c.mediaType !== 'string' || isIndexMediaType(c.mediaType)) {
      throw invalidIndex(
        `${what} (${shown}) is itself a multi-platform index (${String(c.mediaType)})`,
        'an index names single-platform images: list that index\'s own children instead',
      );
    }
    if (!isImageManifestMediaType(c.mediaType)) {
      throw invalidIndex(
        `${what} (${shown}) has media type ${c.mediaType}, which is not an image manifest`,
        `an index names ${MEDIA_TYPES.dockerManifest} or ${MEDIA_TYPES.ociManifest} manifests: take mediaType from the child's manifest as the registry serves it`,
      );
    }
    if (!Number.isSafeInteger(c.size) || c.size <= 0) {
      throw invalidIndex(`${what} (${shown}): size ${JSON.stringify(c.size)} is not a positive whole number of bytes`, "use the length of the child manifest's bytes", 'SIZE_INVALID');
    }
    const key = platformKey(c.platform);
    const other = seen.get(key);
    if (other !== undefined) {
      throw invalidIndex(
        `two images for platform ${shown} in one index (${other} and ${c.digest})`,
        'an index holds one image per platform: drop one of them',
      );
    }
    seen.set(key, c.digest);
  }

  const docker = children.every((c) => c.mediaType === MEDIA_TYPES.dockerManifest);
  const mediaType = docker ? MEDIA_TYPES.dockerList : MEDIA_TYPES.ociIndex;
  const sorted = [...children].sort((a, b) => cmp(formatPlatform(a.platform), formatPlatform(b.platform)));
  const body = {
    schemaVersion: 2,
    mediaType,
    manifests: sorted.map((c) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.size,
      platform: { architecture: c.platform.architecture, os: c.platform.os, ...(c.platform.variant ? { variant: c.platform.variant } : {}) },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return { bytes, mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/** Ordinal, not locale: the order (and so the digest) must not depend on the machine. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Builds the index for `children` and PUTs it as <name>:<tag>; returns its
 * digest. Every child is first read back from <name> (in parallel), and the
 * index is PUT only when all of them are there with the digest, size and
 * media type given: registry:2 would refuse a missing one anyway (400
 * MANIFEST_BLOB_UNKNOWN), and a wrong size would be accepted by the registry
 * but break `docker pull` later. To point more tags at the index, retagImage
 * it (lists are PUT back byte for byte like any manifest).
 */
export async function putIndex(
  registry: Pick<RegistryClient, 'getManifestBytes' | 'putManifest'>,
  name: string,
  tag: string,
  children: IndexChild[],
): Promise<string> {
  checkName(name);
  checkTag(tag);
  const index = buildIndex(children);

  const found = await Promise.all(children.map((c) => registry.getManifestBytes(name, c.digest)));
  const missing = children.filter((_, i) => !found[i]);
  if (missing.length > 0) {
    const list = missing.map((c) => `${c.digest} (${formatPlatform(c.platform)})`).join(', ');
    throw new RegistryError(404, `cannot tag ${name}:${tag} as an index: ${missing.length} of its ${children.length} images ${missing.length === 1 ? 'is' : 'are'} not in ${name}: ${list}`, {
      code: 'MANIFEST_UNKNOWN',
      hint: `push each platform's image to ${name} (under its own tag, e.g. ${tag}-${formatPlatform(missing[0]!.platform).replaceAll('/', '-')}) before the index: the registry refuses an index whose images are not in the same repository`,
    });
  }
  children.forEach((c, i) => {
    const got = found[i]!;
    const shown = `${name}@${c.digest} (${formatPlatform(c.platform)})`;
    if (got.digest !== c.digest) {
      throw new RegistryError(502, `registry answered ${shown} with a manifest whose digest is ${got.digest}`, { code: 'DIGEST_INVALID' });
    }
    if (got.bytes.length !== c.size) {
      throw new RegistryError(400, `${shown} is ${got.bytes.length} bytes in the registry, but the index would say ${c.size}`, {
        code: 'SIZE_INVALID',
        hint: "take size from the length of the child's manifest bytes (getManifestBytes)",
      });
    }
    if (got.mediaType !== c.mediaType) {
      throw new RegistryError(400, `${shown} is stored as ${got.mediaType}, but the index would say ${c.mediaType}`, {
        code: 'MANIFEST_INVALID',
        hint: "take mediaType from the child's manifest as the registry serves it (getManifestBytes)",
      });
    }
  });

  const stored = await registry.putManifest(name, tag, index.bytes, index.mediaType);
  if (stored !== index.digest) {
    throw new RegistryError(502, `registry stored the index ${name}:${tag} as ${stored} instead of ${index.digest}`, { code: 'DIGEST_INVALID' });
  }
  return stored;
}

/**
 * The child descriptor for the image at <name>:<reference>, as the registry
 * serves it: what a build passes to putIndex after pushing one platform.
 */
export async function indexChildFor(
  registry: Pick<RegistryClient, 'getManifestBytes'>,
  name: string,
  reference: string,
  platform: ImagePlatform | string,
): Promise<IndexChild> {
  const p = typeof platform === 'string' ? parsePlatform(platform) : platform;
  const got = await registry.getManifestBytes(name, reference);
  if (!got) {
    throw new RegistryError(404, `${name}:${reference} (${formatPlatform(p)}) is not in the registry`, {
      code: 'MANIFEST_UNKNOWN',
      hint: 'push the image for that platform first',
    });
  }
  return { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length, platform: p };
}

/**
 * For an index or manifest list at <name>:<reference>: the manifests it names,
 * in the index's order, attestation entries (platform unknown/unknown)
 * included since they are children to delete too. [] for a single image;
 * undefined when the reference is not in the registry.
 */
export async function indexChildren(
  registry: Pick<RegistryClient, 'getManifestBytes'>,
  name: string,
  reference: string,
): Promise<ReadIndexChild[] | undefined> {
  checkName(name);
  checkReference(reference);
  const got = await registry.getManifestBytes(name, reference);
  if (!got) return undefined;
  let body: { manifests?: unknown };
  try {
    body = JSON.parse(got.bytes.toString('utf8')) as { manifests?: unknown };
  } catch {
    throw new RegistryError(502, `registry answered ${name}:${reference} with something that is not a JSON manifest`);
  }
  if (!isIndexMediaType(got.mediaType) && !Array.isArray(body?.manifests)) return [];
  const entries = Array.isArray(body.manifests) ? (body.manifests as Array<Record<string, unknown>>) : [];
  const out: ReadIndexChild[] = [];
  for (const e of entries) {
    if (typeof e?.digest !== 'string' || !isValidDigest(e.digest)) continue;
    const child: ReadIndexChild = { digest: e.digest };
    if (typeof e.mediaType === 'string') child.mediaType = e.mediaType;
    if (typeof e.size === 'number') child.size = e.size;
    const p = e.platform as Record<string, unknown> | undefined;
    if (p && typeof p.os === 'string' && typeof p.architecture === 'string') {
      child.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}) };
    }
    out.push(child);
  }
  return out;
}

/**
 * Which child manifests to delete along with some indexes: the children of
 * the `deleting` digests that nothing left points at. Pure.
 *
 * - `tags`: every tag of the repository → its digest, as it is now.
 * - `indexes`: index digest → its children's digests (indexChildren), for
 *   every index the caller knows of; an index that stays keeps its children.
 * - `ignoreTags`: tags that do not keep a child alive by themselves: the
 *   per-platform tags of the version being deleted, which point straight at
 *   its children. Any other tag on a child keeps it.
 *
 * Returns digests, sorted, never one of `deleting` itself.
 */
export function childrenOnlyReferencedBy(
  deleting: Iterable<string>,
  o: {
    tags: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
    indexes: ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>;
    ignoreTags?: Iterable<string>;
  },
): string[] {
  const gone = new Set(deleting);
  const tags: Array<[string, string]> = o.tags instanceof Map ? [...o.tags] : Object.entries(o.tags);
  const indexes: Array<[string, readonly string[]]> = o.indexes instanceof Map ? [...o.indexes] : Object.entries(o.indexes);
  const ignored = new Set(o.ignoreTags ?? []);

  const referenced = new Set<string>();
  for (const [tag, digest] of tags) {
    // A tag on a digest being deleted goes with it; an ignored tag goes by the caller's choice.
    if (!gone.has(digest) && !ignored.has(tag)) referenced.add(digest);
  }
  for (const [index, kids] of indexes) {
    if (!gone.has(index)) kids.forEach((k) => referenced.add(k));
  }
  const out = new Set<string>();
  for (const [index, kids] of indexes) {
    if (!gone.has(index)) continue;
    for (const k of kids) if (!gone.has(k) && !referenced.has(k)) out.add(k);
  }
  return [...out].sort();
}
