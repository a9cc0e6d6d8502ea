import { Router, type ErrorRequestHandler } from 'express';
import pLimit from 'p-limit';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { isValidRepositoryName, isValidTag, type RegistryClient, type TagInfo } from '../registry/client.js';
import { deleteWithDependents } from '../registry/delete-with-dependents.js';
import { ARTIFACT_TAG_PREFIX, PLATFORM_TAG_PREFIX, isInternalTag } from '../registry/internal-tags.js';
import { requireApiToken } from './api-auth.js';
import type { Store } from '../store/store.js';
import { fromRegistry } from './registry-answer.js';

export interface ImagesApiDeps {
  config: Pick<Config, 'registry' | 'apiToken' | 'apiTokenReads'>;
  registry: RegistryClient;
  /** A deleted version tag may name another commit from now on. */
  store: Pick<Store, 'releaseVersion' | 'versionsOf'>;
}

export interface TagView extends TagInfo {
  /** What to paste into a shell: the host the engine pushes to (REGISTRY), not REGISTRY_URL. */
  pull: string;
}

export interface ImageView {
  name: string;
  tags: TagView[];
}

/**
 * An unchanged image whose version was bumped is one manifest under two
 * version tags, and the registry can only delete the manifest: deleting the
 * old version would silently take the new one too. Refuse, naming them.
 */
async function refuseSharedVersions(registry: RegistryClient, name: string, tag: string, tags: string[], bound: string[]): Promise<void> {
  // Only versions dockhook bound to a commit: an extra tag of dockerInfo.json sharing the image goes with it, as it always did.
  const known = new Set(bound);
  const versions = tags.filter((t) => t !== tag && known.has(t));
  if (!versions.length) return;
  const limit = pLimit(DESCRIBE_CONCURRENCY);
  const digest = await registry.getManifestDigest(name, tag);
  const digests = await Promise.all(versions.map((t) => limit(() => registry.getManifestDigest(name, t))));
  const shared = versions.filter((_t, i) => digests[i] === digest);
  if (shared.length) {
    throw new AppError(409, `${name}:${tag} is the same image as ${shared.map((t) => `${name}:${t}`).join(', ')} (a version bump of an unchanged image); deleting it deletes those too`, {
      hint: 'add ?shared=delete to delete them all',
    });
  }
}

/** Manifest + config reads in flight at once for one request: quick for dozens of tags, gentle on the registry. */
const DESCRIBE_CONCURRENCY = 8;

const GC_NOTE =
  'deleting frees no disk space until the registry runs garbage-collect (see the README: Deleting images)';

/** `*name` captures the path segments; each is checked so that nothing malformed reaches a registry URL. */
function repositoryName(segments: unknown): string {
  const name = Array.isArray(segments) ? segments.join('/') : String(segments ?? '');
  if (!isValidRepositoryName(name)) {
    throw new AppError(400, `invalid repository name ${JSON.stringify(name)}`, {
      hint: "lowercase letters, digits and single '.', '_' or '-' between them, components joined by '/' (e.g. team/api)",
    });
  }
  return name;
}

function tagName(tag: unknown): string {
  const value = String(tag ?? '');
  if (!isValidTag(value)) {
    throw new AppError(400, `invalid tag ${JSON.stringify(value)}`, { hint: 'up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -' });
  }
  return value;
}

/** `_platform-…` and `_artifact-…` belong to a version: deleting one alone would break its index or orphan a file. */
function refuseInternalTag(name: string, tag: string): void {
  if (!isInternalTag(tag)) return;
  const what = tag.startsWith(PLATFORM_TAG_PREFIX)
    ? "one platform's image of a multi-platform version"
    : tag.startsWith(ARTIFACT_TAG_PREFIX)
      ? 'a build artifact of a version'
      : "dockhook's own bookkeeping";
  throw new AppError(400, `${name}:${tag} is a tag dockhook keeps for itself (${what}), not an image version: it cannot be deleted on its own`, {
    hint: `delete the version it belongs to (the one tagged sha-${tag.split('-')[1] ?? '…'}): its platform images and artifacts go with it`,
  });
}

/**
 * GET /api/images (every repository of the catalog), GET /api/images/<name>
 * (one, with slashes) and DELETE /api/images/<name>/tags/<tag>. Reads are open
 * unless API_TOKEN_READS=true; the delete always needs API_TOKEN.
 */
export function imagesApiRouter(deps: ImagesApiDeps): Router {
  const router = Router();
  const auth = { apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads };
  const read = requireApiToken(auth, 'read');
  const write = requireApiToken(auth, 'write');

  const describe = async (name: string, limit: ReturnType<typeof pLimit>): Promise<ImageView> => {
    // Through the same limiter: a catalog of hundreds must not open hundreds of requests at once.
    const tags = await limit(() => deps.registry.listTags(name));
    const infos = await Promise.all(tags.map((tag) => limit(() => deps.registry.describeTag(name, tag))));
    return {
      name,
      tags: infos
        // undefined: deleted between the tag list and the read; it is gone, so it is not shown.
        .filter((t): t is TagInfo => t !== undefined)
        .map((t) => ({ ...t, pull: `docker pull ${deps.config.registry}/${name}:${t.tag}` })),
    };
  };

  router.get('/api/images', read, async (_req, res) => {
    const limit = pLimit(DESCRIBE_CONCURRENCY);
    const images = await fromRegistry(async () => {
      const names = await deps.registry.listRepositories();
      return Promise.all(names.map((name) => describe(name, limit)));
    });
    res.json({ registry: deps.config.registry, images });
  });

  router.get('/api/images/*name', read, async (req, res) => {
    const name = repositoryName(req.params.name);
    const image = await fromRegistry(() => describe(name, pLimit(DESCRIBE_CONCURRENCY)));
    // The registry keeps a repository in its catalog after its last tag is deleted; without tags there is no image to show.
    if (image.tags.length === 0) throw new AppError(404, `no image ${name} in the registry (no such repository, or no tags left)`, { hint: 'GET /api/images lists what there is' });
    res.json({ registry: deps.config.registry, ...image });
  });

  router.delete('/api/images/*name/tags/:tag', write, async (req, res) => {
    const name = repositoryName(req.params.name);
    const tag = tagName(req.params.tag);
    const query = req.query as Record<string, unknown>;
    const unknown = Object.keys(query).filter((k) => k !== 'shared');
    if (unknown.length) throw new AppError(400, `unknown query parameter ${unknown.join(', ')}`, { hint: 'use shared=delete' });
    if (query.shared !== undefined && query.shared !== 'delete') throw new AppError(400, 'shared must be delete');
    refuseInternalTag(name, tag);
    const { digest, alsoRemoved, failures } = await fromRegistry(async () => {
      const before = await deps.registry.listTags(name);
      if (!before.includes(tag)) throw new AppError(404, `tag ${name}:${tag} not found in the registry`);
      if (query.shared !== 'delete') await refuseSharedVersions(deps.registry, name, tag, before, await deps.store.versionsOf(name));
      const target = await deps.registry.getManifestDigest(name, tag);
      let deleted: { digest: string } | undefined;
      // The index's children and the version's artifacts go too, unless something that stays still names them.
      const dependents = await deleteWithDependents(deps.registry, name, target ? [target] : [], async () => {
        deleted = await deps.registry.deleteTag(name, tag);
        return [deleted.digest];
      });
      // The registry deletes the manifest, and with it every tag of this repository that pointed at it.
      const after = new Set(await deps.registry.listTags(name));
      return { digest: deleted!.digest, alsoRemoved: before.filter((t) => t !== tag && !after.has(t)), failures: dependents.failures };
    });
    for (const t of [tag, ...alsoRemoved]) if (!isInternalTag(t)) await deps.store.releaseVersion(name, t);
    res.json({ deleted: `${name}:${tag}`, digest, alsoRemoved, failures, note: GC_NOTE });
  });

  // A path the router cannot even decode (`%E0%A4%A`) is the caller's mistake, not a 500.
  const undecodable: ErrorRequestHandler = (err, _req, _res, next) => {
    next(err instanceof URIError ? new AppError(400, 'the path is not valid percent-encoding') : err);
  };
  router.use('/api/images', undecodable);
  return router;
}
