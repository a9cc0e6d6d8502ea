import pLimit from 'p-limit';
import { RegistryError, type RegistryClient, type TagInfo } from './client.js';
import { childrenOnlyReferencedBy, indexChildren } from './image-index.js';
import { ARTIFACT_ANNOTATIONS, ARTIFACT_TAG_PREFIX, PLATFORM_TAG_PREFIX, isInternalTag } from './internal-tags.js';

/**
 * Deleting a version's image (or index) leaves behind what dockhook pushed
 * beside it in the same repository (internal-tags.ts): the index's children,
 * under their `_platform-` tags, and the build's artifacts, under their
 * `_artifact-` tags. deleteWithDependents deletes those along with it:
 *
 * - the children of each deleted index that nothing left points at: no
 *   remaining index (of any tag that is not internal) names them and no tag
 *   other than the deleted versions' own `_platform-<sha7>-…` tags does. A
 *   child shared with a version that stays, or tagged by a build still in
 *   progress (its `_platform-` tags come before its index), stays, and only
 *   the deleted versions' own `_platform-` tags on it go (registry.untag):
 *   left behind, such a tag would count as a build in progress and keep the
 *   child after the last version that names it is deleted.
 * - every artifact whose dev.dockhook.image.digest annotation names one of
 *   the deleted digests (an index, a child or a single image).
 *
 * The children of an index can only be read while the index is there, so the
 * caller's deletion runs inside: read, `deleteMain()`, then delete the
 * dependents of what `deleteMain` says it actually deleted (a digest it could
 * not delete keeps its children). Everything after `deleteMain` is read anew,
 * so a tag pushed meanwhile counts. Failures past `deleteMain` are returned
 * as lines, never thrown, like applyRetention; `deleteMain`'s own error is
 * the caller's and passes through.
 */

export interface DependentsOutcome {
  /** Internal tags gone: with the children and artifacts deleted (every tag of each digest), and the deleted versions' own `_platform-` tags on a child that stays; sorted. */
  removedTags: string[];
  /** Child and artifact digests deleted, sorted. */
  removedDigests: string[];
  /** One human-readable line per failure, with the fix when there is one. */
  failures: string[];
}

export interface DeleteWithDependentsOptions {
  /**
   * The repository's tags as the caller already read them (applyRetention's
   * describeTag of each): saves reading them before the deletion. The
   * `revision` of a deleted digest's tags names its version's `_platform-` tags.
   */
  tags?: ReadonlyArray<Pick<TagInfo, 'tag' | 'digest'> & { revision?: string }>;
}

/** HEADs and GETs in flight at once: quick for dozens of tags, gentle on the registry. */
const CONCURRENCY = 4;

const SHA_TAG = /^sha-([0-9a-f]{7})$/;

export async function deleteWithDependents(
  registry: RegistryClient,
  image: string,
  digests: Iterable<string>,
  deleteMain: () => Promise<Iterable<string>>,
  o: DeleteWithDependentsOptions = {},
): Promise<DependentsOutcome> {
  const deleting = new Set(digests);
  const failures: string[] = [];
  const limit = pLimit(CONCURRENCY);

  // Before: the children of each index about to go, and which commits' _platform- tags are its own.
  const children = new Map<string, string[]>();
  const shas = new Set<string>();
  try {
    const tags: NonNullable<DeleteWithDependentsOptions['tags']> = o.tags ?? [...(await tagDigests(registry, image, limit))].map(([tag, digest]) => ({ tag, digest }));
    for (const t of tags) {
      if (!deleting.has(t.digest)) continue;
      const sha = SHA_TAG.exec(t.tag)?.[1];
      if (sha) shas.add(sha);
      if (t.revision && /^[0-9a-f]{7,}$/.test(t.revision)) shas.add(t.revision.slice(0, 7));
    }
    await Promise.all(
      [...deleting].map((d) =>
        limit(async () => {
          const kids = await indexChildren(registry, image, d);
          if (kids?.length) children.set(d, kids.map((k) => k.digest));
        }),
      ),
    );
  } catch (err) {
    // Not knowing the children must not stop the deletion asked for: they stay, and the line says so.
    failures.push(`could not read what ${image}@${[...deleting].join(', ')} names, so its platform images and artifacts stay: ${describeFailure(err)}`);
  }

  const deleted = new Set(await deleteMain());
  const removedTags: string[] = [];
  const removedDigests: string[] = [];
  if (deleted.size === 0) return { removedTags, removedDigests, failures };

  let now: Map<string, string>;
  try {
    now = await tagDigests(registry, image, limit);
  } catch (err) {
    failures.push(`could not list the tags of ${image} to delete what went with ${[...deleted].join(', ')}: ${describeFailure(err)}`);
    return { removedTags, removedDigests, failures };
  }

  /**
   * Deletes `digest` by its digest (deleteManifest), tagged or not: a child
   * whose `_platform-` tag a forced rebuild of its commit moved elsewhere has
   * no tag left. Its tags go with it; they are read again just before, so a
   * tag moved meanwhile is not reported. False when it could not.
   */
  const remove = async (digest: string, what: string): Promise<boolean> => {
    const tags = [...now].filter(([, d]) => d === digest).map(([t]) => t).sort();
    const named = tags.length ? `${image}:${tags.join(', ')} (${digest})` : `${image}@${digest}`;
    try {
      const still = await Promise.all(tags.map((t) => limit(async () => ((await registry.getManifestDigest(image, t)) === digest ? [t] : []))));
      await registry.deleteManifest(image, digest);
      removedTags.push(...still.flat());
      removedDigests.push(digest);
      tags.forEach((t) => now.delete(t));
      return true;
    } catch (err) {
      failures.push(`could not delete ${what} ${named}: ${describeFailure(err)}`);
      if (stopsEverything(err)) throw err;
      return false;
    }
  };

  /** Removes `tag` alone from `digest` (a platform image that stays), checked just before. */
  const untag = async (tag: string, digest: string): Promise<void> => {
    try {
      const current = await registry.getManifestDigest(image, tag);
      if (current !== digest) {
        failures.push(`skipped ${image}:${tag}: it moved to ${current ?? 'nothing'} meanwhile`);
        return;
      }
      await registry.untag(image, tag);
      removedTags.push(tag);
      now.delete(tag);
    } catch (err) {
      failures.push(`could not remove the tag ${image}:${tag} from the platform image ${digest}, which stays (another version or a build in progress names it): ${describeFailure(err)}`);
      if (stopsEverything(err)) throw err;
    }
  };

  try {
    // (a) Children: judged against every index that stays.
    const gone = [...deleted].filter((d) => children.has(d));
    const goneChildren = new Set<string>();
    if (gone.length) {
      const indexes = new Map<string, string[]>(gone.map((d) => [d, children.get(d)!]));
      const remaining = new Set([...now].filter(([t, d]) => !isInternalTag(t) && !deleted.has(d)).map(([, d]) => d));
      await Promise.all(
        [...remaining].map((d) =>
          limit(async () => {
            const kids = await indexChildren(registry, image, d);
            if (kids?.length) indexes.set(d, kids.map((k) => k.digest));
          }),
        ),
      );
      const ignoreTags = [...now.keys()].filter((t) => t.startsWith(PLATFORM_TAG_PREFIX) && shas.has(t.slice(PLATFORM_TAG_PREFIX.length, PLATFORM_TAG_PREFIX.length + 7)));
      for (const child of childrenOnlyReferencedBy(deleted, { tags: now, indexes, ignoreTags })) {
        if (await remove(child, 'platform image')) goneChildren.add(child);
      }
      // What is left of those tags names a child of a deleted index that stays: the tag goes, the child stays. Not a
      // tag that names something else (a forced rebuild of the commit in progress), nor one of a commit a kept version has.
      const own = new Set(gone.flatMap((d) => children.get(d)!));
      const keptShas = new Set([...now.keys()].flatMap((t) => SHA_TAG.exec(t)?.[1] ?? []));
      for (const tag of ignoreTags.sort()) {
        const digest = now.get(tag);
        if (digest === undefined || !own.has(digest) || keptShas.has(tag.slice(PLATFORM_TAG_PREFIX.length, PLATFORM_TAG_PREFIX.length + 7))) continue;
        await untag(tag, digest);
      }
    }

    // (b) Artifacts of anything deleted.
    const images = new Set([...deleted, ...goneChildren]);
    const artifacts = new Map<string, string>(); // artifact digest → a tag of it
    for (const [tag, digest] of now) if (tag.startsWith(ARTIFACT_TAG_PREFIX) && !artifacts.has(digest)) artifacts.set(digest, tag);
    const of = await Promise.all([...artifacts].map(([digest, tag]) => limit(() => artifactImage(registry, image, tag, digest))));
    for (const [i, [digest]] of [...artifacts].entries()) {
      const target = of[i];
      if (target && images.has(target)) await remove(digest, 'artifact');
    }
  } catch (err) {
    // Lines were written by remove(); a failure every further request would hit too ends the work.
    if (!(err instanceof RegistryError) || !stopsEverything(err)) failures.push(`could not finish deleting what went with ${image}@${[...deleted].join(', ')}: ${describeFailure(err)}`);
  }
  return { removedTags: removedTags.sort(), removedDigests: removedDigests.sort(), failures };
}

/** Every tag of `image` → its digest, now. Tags gone between the list and the HEAD are left out. */
async function tagDigests(registry: RegistryClient, image: string, limit: ReturnType<typeof pLimit>): Promise<Map<string, string>> {
  const tags = await registry.listTags(image);
  const digests = await Promise.all(tags.map((t) => limit(() => registry.getManifestDigest(image, t))));
  return new Map(tags.flatMap((t, i) => (digests[i] ? [[t, digests[i]!] as [string, string]] : [])));
}

/** The image digest an artifact's manifest annotates; undefined when it has none, is gone, or moved off `digest`. */
async function artifactImage(registry: RegistryClient, image: string, tag: string, digest: string): Promise<string | undefined> {
  const got = await registry.getManifestBytes(image, tag);
  if (!got || got.digest !== digest) return undefined;
  try {
    const body = JSON.parse(got.bytes.toString('utf8')) as { annotations?: Record<string, unknown> };
    const value = body?.annotations?.[ARTIFACT_ANNOTATIONS.imageDigest];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined; // not JSON: not one of dockhook's artifacts
  }
}

function describeFailure(err: unknown): string {
  if (err instanceof RegistryError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Failures that every further deletion would hit too. */
function stopsEverything(err: unknown): boolean {
  return err instanceof RegistryError && (err.code === 'UNSUPPORTED' || err.status === 401 || err.status === 503);
}
