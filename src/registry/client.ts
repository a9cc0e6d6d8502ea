import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { EMPTY_CONFIG_DESCRIPTOR } from './artifact.js';
import { RegistryTransport, type Credentials } from './auth.js';
import { blobExists, openBlob, pushScope, uploadBlob, type OpenedBlob, type UploadBlobOptions, type UploadedBlob } from './blobs.js';
import { RegistryError, errorFromResponse, readRegistryErrorBody } from './errors.js';
import { MANIFEST_ACCEPT, MEDIA_TYPES, configFacts, inspectList, isList, isSchema1, schema1Config, type ImageConfig, type Manifest, type ManifestBody } from './manifests.js';
import { checkName, checkReference, checkTag, isValidDigest } from './names.js';

export { RegistryError } from './errors.js';
export { isValidRepositoryName, isValidTag } from './names.js';

/** Docker Registry HTTP API v2 client: what dockhook needs to list, inspect and delete images it pushed. */

export interface RegistryClientOptions {
  /** e.g. http://127.0.0.1:5000, no trailing path. Credentials go in `auth`, never in the URL. */
  url: string;
  auth?: Credentials;
  fetch?: typeof fetch;
  /** Entries asked for per page of /_catalog and /tags/list (default 100). Small values exist for tests. */
  pageSize?: number;
  /** Per HTTP request, including token requests (default 30 s). */
  timeoutMs?: number;
}

export interface TagInfo {
  tag: string;
  /** The manifest (or list/index) digest: what `docker pull name@digest` takes and what deletion needs. */
  digest: string;
  mediaType: string;
  created?: string;
  revision?: string;
  version?: string;
  source?: string;
  /** For a manifest list / OCI index: os/arch[/variant] of each image in it. */
  platforms?: string[];
}

/** A manifest exactly as the registry stores it: PUT these bytes back and the digest stays the same. */
export interface ManifestBytes {
  bytes: Buffer;
  /** The stored type, from Content-Type (the body's mediaType when the header is missing). */
  mediaType: string;
  digest: string;
}

export interface RegistryClient {
  ping(): Promise<{ ok: boolean; status: number }>;
  listRepositories(): Promise<string[]>;
  listTags(name: string): Promise<string[]>;
  getManifestDigest(name: string, reference: string): Promise<string | undefined>;
  describeTag(name: string, tag: string): Promise<TagInfo | undefined>;
  deleteTag(name: string, tag: string): Promise<{ digest: string }>;
  /**
   * DELETE /v2/<name>/manifests/<digest>: the manifest, and every tag of this
   * repository that names it, even when none does (deleteTag needs a tag to
   * find the digest). 404 MANIFEST_UNKNOWN when the registry has no such manifest.
   */
  deleteManifest(name: string, digest: string): Promise<void>;
  /**
   * Removes the tag alone: the manifest it names stays, with its other tags
   * (deleteTag deletes the manifest, and every tag of it). Registry 2.8 has
   * no tag deletion (DELETE /v2/<name>/manifests/<tag> answers 400
   * DIGEST_INVALID), and a registry that had one might delete the manifest
   * instead, so the tag is moved onto a placeholder of its own (UNTAGGED_TYPE:
   * the empty config, annotated with the tag and a nonce, so no other tag can
   * name it), which is then deleted by its digest. Returns the digest the tag
   * named; 404 MANIFEST_UNKNOWN when there is no such tag.
   */
  untag(name: string, tag: string): Promise<{ digest: string }>;
  /** The manifest (or list/index) by tag or digest, byte for byte; undefined when the registry answers 404. */
  getManifestBytes(name: string, reference: string): Promise<ManifestBytes | undefined>;
  /**
   * PUTs `bytes` as /v2/<name>/manifests/<tag> (the registry checks that every
   * blob and manifest it references is already in <name>). Returns the digest
   * the registry stored it under, checked against the bytes' own hash.
   */
  putManifest(name: string, tag: string, bytes: Buffer, mediaType: string): Promise<string>;
  /** HEAD /v2/<name>/blobs/<digest> (see blobs.ts). */
  blobExists(name: string, digest: string): Promise<boolean>;
  /** Pushes a blob to <name>, streamed when `source` is a Readable; skipped when the registry has it (see blobs.ts). */
  uploadBlob(name: string, source: Readable | Buffer, opts?: UploadBlobOptions): Promise<UploadedBlob>;
  /** A blob as a stream that checks its digest, never buffered (see blobs.ts). */
  openBlob(name: string, digest: string): Promise<OpenedBlob>;
}

/** The artifactType of untag's placeholders, and the annotation naming the tag each one took over. */
export const UNTAGGED_TYPE = 'application/vnd.dockhook.untagged.v1';
export const UNTAGGED_ANNOTATION = 'dev.dockhook.untagged';

const DELETE_DISABLED =
  'the registry has deletion disabled; start it with REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled: true) to allow deleting images';

export function createRegistryClient(o: RegistryClientOptions): RegistryClient {
  const base = new URL(o.url);
  if (base.username || base.password) {
    // Refused rather than used: the URL ends up in error messages and logs.
    throw new TypeError('registry URL must not contain credentials: use REGISTRY_USERNAME and REGISTRY_PASSWORD');
  }
  const baseUrl = o.url.replace(/\/+$/, '');
  const pageSize = o.pageSize ?? 100;
  const t = new RegistryTransport({ baseUrl, auth: o.auth, fetch: o.fetch ?? fetch, timeoutMs: o.timeoutMs ?? 30_000 });

  /** A request with a body, through the transport so that its 401/token handling applies (the retry resends the same bytes). */
  async function sendWithBody(path: string, method: 'PUT', body: Buffer, headers: Record<string, string>, scope: string): Promise<Response> {
    // A copy: fetch's types take only an ArrayBuffer-backed view (a Buffer may sit on a SharedArrayBuffer).
    return t.send(path, { method, headers, body: new Uint8Array(body), scope });
  }

  /** GET every page, following Link: <...>; rel="next" until there is none. undefined = 404 NAME_UNKNOWN. */
  async function paginate(path: string, field: 'repositories' | 'tags', scope: string): Promise<string[] | undefined> {
    const out: string[] = [];
    const seen = new Set<string>();
    for (let next: string | undefined = `${path}?n=${pageSize}`; next && !seen.has(next); ) {
      seen.add(next); // a registry that links a page to itself must not loop us forever
      const res = await t.send(next, { scope });
      if (res.status === 404 && field === 'tags') {
        const { code } = await readRegistryErrorBody(res);
        if (code === 'NAME_UNKNOWN') return undefined;
        throw new RegistryError(404, `registry answered 404 to GET ${path}${code ? ` (${code})` : ''}`, { code });
      }
      if (!res.ok) throw await errorFromResponse(res, `GET ${path}`);
      const page = (await readJson<Record<string, unknown>>(res, `GET ${path}`))[field];
      if (Array.isArray(page)) out.push(...page.filter((x): x is string => typeof x === 'string'));
      next = nextLink(res.headers.get('link'), baseUrl);
    }
    return out;
  }

  async function headDigest(name: string, reference: string): Promise<string | undefined> {
    const path = `/v2/${name}/manifests/${reference}`;
    const res = await t.send(path, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT }, scope: pullScope(name) });
    if (res.status === 404) return undefined;
    if (!res.ok) throw await errorFromResponse(res, `HEAD ${path}`);
    const digest = res.headers.get('docker-content-digest');
    if (digest) return digest;
    // Some registries omit the header on HEAD: the digest is the sha256 of the exact bytes served.
    return (await getManifest(name, reference))?.digest;
  }

  /** GET a manifest's exact bytes. undefined = 404. */
  async function fetchManifest(name: string, reference: string): Promise<{ raw: Buffer; path: string; res: Response } | undefined> {
    const path = `/v2/${name}/manifests/${reference}`;
    const res = await t.send(path, { headers: { accept: MANIFEST_ACCEPT }, scope: pullScope(name) });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw await errorFromResponse(res, `GET ${path}`);
    return { raw: Buffer.from(await res.arrayBuffer()), path, res };
  }

  async function getManifest(name: string, reference: string): Promise<Manifest | undefined> {
    const got = await fetchManifest(name, reference);
    if (!got) return undefined;
    const body = parseManifest(got.raw, got.path);
    return {
      digest: got.res.headers.get('docker-content-digest') ?? sha256(got.raw),
      // OCI manifests may leave mediaType out of the body; the Content-Type header then carries it.
      mediaType: body.mediaType ?? contentType(got.res) ?? '',
      body,
    };
  }

  /** created + labels from the image config blob; {} when the image has no readable config. */
  async function readConfig(name: string, m: Manifest): Promise<ImageConfig> {
    if (isSchema1(m)) return schema1Config(m);
    const digest = m.body.config?.digest;
    if (!digest || !isValidDigest(digest)) return {};
    const path = `/v2/${name}/blobs/${digest}`;
    const res = await t.send(path, { scope: pullScope(name) });
    if (res.status === 404) {
      await res.body?.cancel();
      return {};
    }
    if (!res.ok) throw await errorFromResponse(res, `GET ${path}`);
    // Non-image artifacts (Helm charts, signatures) put other things in "config".
    return ((await res.json().catch(() => ({}))) ?? {}) as ImageConfig;
  }

  /** DELETE /v2/<name>/manifests/<digest>; the registry takes every tag of it in <name> along. */
  async function deleteByDigest(name: string, digest: string): Promise<void> {
    const path = `/v2/${name}/manifests/${digest}`;
    const res = await t.send(path, { method: 'DELETE', scope: `repository:${name}:delete` });
    if (res.status === 405) {
      await res.body?.cancel();
      throw new RegistryError(405, DELETE_DISABLED, { code: 'UNSUPPORTED', hint: 'set REGISTRY_STORAGE_DELETE_ENABLED=true on the registry' });
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError(404, `manifest ${name}@${digest} not found in the registry`, { code: 'MANIFEST_UNKNOWN' });
    }
    if (!res.ok) throw await errorFromResponse(res, `DELETE ${path}`);
    await res.body?.cancel();
  }

  return {
    async ping() {
      const res = await t.sendOnce('/v2/');
      await res.body?.cancel();
      // 401 means "up, wants credentials": readiness is about reachability, not about our login.
      return { ok: res.ok || res.status === 401, status: res.status };
    },

    async listRepositories() {
      return (await paginate('/v2/_catalog', 'repositories', 'registry:catalog:*')) ?? [];
    },

    async listTags(name) {
      checkName(name);
      const tags = (await paginate(`/v2/${name}/tags/list`, 'tags', pullScope(name))) ?? [];
      // registry 2.8 returns tags in storage order and ignores n; sort so callers see a stable list.
      return tags.sort();
    },

    async getManifestDigest(name, reference) {
      checkName(name);
      checkReference(reference);
      return headDigest(name, reference);
    },

    async describeTag(name, tag) {
      checkName(name);
      checkTag(tag);
      const top = await getManifest(name, tag);
      if (!top) return undefined;
      const info: TagInfo = { tag, digest: top.digest, mediaType: top.mediaType };
      let image: Manifest | undefined = top;
      if (isList(top)) {
        const { platforms, pick } = inspectList(top);
        info.platforms = platforms;
        image = pick && isValidDigest(pick) ? await getManifest(name, pick) : undefined;
      }
      Object.assign(info, configFacts(image ? await readConfig(name, image) : {}));
      return info;
    },

    /**
     * Deletes by the MANIFEST digest (the API has no delete-by-tag). Every
     * tag pointing at that digest goes with it, in this repository only.
     */
    async deleteTag(name, tag) {
      checkName(name);
      checkTag(tag);
      const digest = await headDigest(name, tag);
      if (!digest) throw new RegistryError(404, `tag ${name}:${tag} not found in the registry`, { code: 'MANIFEST_UNKNOWN' });
      const path = `/v2/${name}/manifests/${digest}`;
      const res = await t.send(path, { method: 'DELETE', scope: `repository:${name}:delete` });
      if (res.status === 405) {
        await res.body?.cancel();
        throw new RegistryError(405, DELETE_DISABLED, { code: 'UNSUPPORTED', hint: 'set REGISTRY_STORAGE_DELETE_ENABLED=true on the registry' });
      }
      if (!res.ok) throw await errorFromResponse(res, `DELETE ${path}`);
      await res.body?.cancel();
      return { digest };
    },

    async deleteManifest(name, digest) {
      checkName(name);
      if (!isValidDigest(digest)) throw new RegistryError(400, `invalid digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`, { code: 'DIGEST_INVALID' });
      await deleteByDigest(name, digest);
    },

    async untag(name, tag) {
      checkName(name);
      checkTag(tag);
      const digest = await headDigest(name, tag);
      if (!digest) throw new RegistryError(404, `tag ${name}:${tag} not found in the registry`, { code: 'MANIFEST_UNKNOWN' });
      // The placeholder's config (and its one layer, as image-spec 1.1 asks of an artifact without files) is `{}`: once per repository.
      await uploadBlob(t, name, Buffer.from('{}'), { digest: EMPTY_CONFIG_DESCRIPTOR.digest, size: EMPTY_CONFIG_DESCRIPTOR.size });
      const placeholder = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociManifest,
          artifactType: UNTAGGED_TYPE,
          config: EMPTY_CONFIG_DESCRIPTOR,
          layers: [EMPTY_CONFIG_DESCRIPTOR],
          annotations: { [UNTAGGED_ANNOTATION]: `${name}:${tag}`, 'org.opencontainers.image.created': new Date().toISOString(), 'dev.dockhook.nonce': randomUUID() },
        }),
      );
      const putPath = `/v2/${name}/manifests/${tag}`;
      const put = await sendWithBody(putPath, 'PUT', placeholder, { 'content-type': MEDIA_TYPES.ociManifest }, pushScope(name));
      if (!put.ok) throw await errorFromResponse(put, `PUT ${putPath}`);
      await put.body?.cancel();
      const own = sha256(placeholder);
      const stored = put.headers.get('docker-content-digest') ?? own;
      try {
        await deleteByDigest(name, stored);
      } catch (e) {
        const err = e instanceof RegistryError ? e : new RegistryError(502, String(e));
        // The tag moved off `digest` (which is untouched) but still names the placeholder: say which, so it can be deleted by hand.
        throw new RegistryError(err.status, `${name}:${tag} no longer names ${digest}, but the placeholder ${stored} it was moved to could not be deleted: ${err.message}`, { code: err.code, hint: err.hint ?? `delete ${name}@${stored} (DELETE /v2/${name}/manifests/${stored})`, cause: e });
      }
      return { digest };
    },

    async getManifestBytes(name, reference) {
      checkName(name);
      checkReference(reference);
      const got = await fetchManifest(name, reference);
      if (!got) return undefined;
      // The header first: it is the type the registry stored and will check a PUT of these bytes against.
      const mediaType = contentType(got.res) ?? parseManifest(got.raw, got.path).mediaType;
      if (!mediaType) throw new RegistryError(502, `registry answered GET ${got.path} without saying the manifest's media type`);
      return { bytes: got.raw, mediaType, digest: got.res.headers.get('docker-content-digest') ?? sha256(got.raw) };
    },

    async putManifest(name, tag, bytes, mediaType) {
      checkName(name);
      checkTag(tag);
      const path = `/v2/${name}/manifests/${tag}`;
      const res = await sendWithBody(path, 'PUT', bytes, { 'content-type': mediaType }, pushScope(name));
      if (!res.ok) throw await errorFromResponse(res, `PUT ${path}`);
      await res.body?.cancel();
      const stored = res.headers.get('docker-content-digest');
      const algorithm = stored?.split(':')[0] === 'sha512' ? 'sha512' : 'sha256';
      const own = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      // A registry that rewrote the manifest (or a proxy that re-encoded it) stored something else under the tag.
      if (stored && stored !== own) {
        throw new RegistryError(502, `registry stored ${name}:${tag} as ${stored}, but the manifest sent has digest ${own}`, { code: 'DIGEST_INVALID' });
      }
      return stored ?? own;
    },

    blobExists: (name, digest) => blobExists(t, name, digest),
    uploadBlob: (name, source, opts) => uploadBlob(t, name, source, opts),
    openBlob: (name, digest) => openBlob(t, name, digest),
  };
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Content-Type without parameters; undefined when absent or empty. */
function contentType(res: Response): string | undefined {
  return res.headers.get('content-type')?.split(';')[0]!.trim() || undefined;
}

function parseManifest(raw: Buffer, path: string): ManifestBody {
  try {
    return JSON.parse(raw.toString('utf8')) as ManifestBody;
  } catch {
    throw new RegistryError(502, `registry answered GET ${path} with something that is not a JSON manifest`);
  }
}

function pullScope(name: string): string {
  return `repository:${name}:pull`;
}

/** `</v2/_catalog?last=b&n=2>; rel="next"`, resolved against the registry; only same-origin links are followed. */
function nextLink(header: string | null, baseUrl: string): string | undefined {
  const m = header ? /<([^>]+)>\s*;\s*rel="?next"?/i.exec(header) : null;
  if (!m) return undefined;
  const url = new URL(m[1], baseUrl + '/');
  // Credentials are attached to every request: never follow a link to another host.
  if (url.origin !== new URL(baseUrl).origin) {
    throw new RegistryError(502, `registry pagination link points to another host (${url.origin})`);
  }
  return url.href;
}

async function readJson<T>(res: Response, what: string): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch {
    throw new RegistryError(502, `registry answered ${what} with something that is not JSON`);
  }
}
