import type { TagInfo } from './client.js';
import { isInternalTag } from './internal-tags.js';

/**
 * KEEP_VERSIONS: which tags of one image stay and which go. Pure, so every
 * rule is a unit test; registry/apply-retention.ts carries the plan out.
 *
 * The registry can only delete a manifest (a digest), and that takes every
 * tag pointing at it. So the plan is made per digest: a digest goes only when
 * no tag that must stay points at it, and `remove` lists every tag that will
 * disappear with it, not only the ones chosen.
 */

export interface RetentionPlan {
  /** Sorted. */
  keep: string[];
  /** Sorted. Every tag whose digest is deleted. */
  remove: string[];
  /** The digests to delete: each removed tag's digest, once. */
  digests: string[];
}

const SHA_TAG = /^sha-/;

/** A version: the tags that share one image (a version tag plus dockerInfo.json's extra tags pointing at it). */
interface Version {
  digest: string;
  created: number;
  tags: string[];
  /** sha-<7> tags pushed with it, found through the revision label. */
  companions: string[];
}

function createdMs(t: TagInfo): number | undefined {
  const ms = t.created ? Date.parse(t.created) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

const byName = new Intl.Collator('en', { numeric: true }).compare;

/**
 * Keeps the `keep` newest versions of an image. A version tag is any tag that
 * is neither `latest` nor `sha-*`; "newest" is the image's creation time (the
 * org.opencontainers.image.created label, else the config's created), never
 * the tag's name, so 1.10.0 after 1.9.0 or a hotfix 1.2.9 after 2.0.0 is
 * ordered by when it was built. Its `sha-` companion is
 * `sha-<first 7 of its revision label>`.
 *
 * Never removed: `latest`; any tag sharing a digest with a kept tag; sha-
 * tags with no version in the list (nothing to judge them by); tags without
 * a readable creation time (they cannot be ordered, so they are not counted
 * either).
 *
 * dockhook's internal tags (`_platform-…`, `_artifact-…`, internal-tags.ts)
 * are no versions: never counted, never in `keep` or `remove`, and the plan
 * never deletes a digest one of them points at. They are a version's index
 * children and artifacts, which go with it (delete-with-dependents.ts).
 */
export function planRetention(all: TagInfo[], keep: number): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a whole number of at least 1, got ${keep}`);

  const tags = all.filter((t) => !isInternalTag(t.tag));

  const names = new Set(tags.map((t) => t.tag));
  const versions = new Map<string, Version>();
  const undated: TagInfo[] = [];
  for (const t of tags) {
    if (t.tag === 'latest' || SHA_TAG.test(t.tag)) continue;
    const ms = createdMs(t);
    if (ms === undefined) {
      undated.push(t);
      continue;
    }
    const v = versions.get(t.digest) ?? { digest: t.digest, created: ms, tags: [], companions: [] };
    v.created = Math.max(v.created, ms);
    v.tags.push(t.tag);
    if (t.revision && t.revision.length >= 7) {
      const companion = `sha-${t.revision.slice(0, 7)}`;
      if (names.has(companion) && !v.companions.includes(companion)) v.companions.push(companion);
    }
    versions.set(t.digest, v);
  }

  // Newest first; equal times (two builds in one second) fall back to the highest tag name.
  const highest = (v: Version) => [...v.tags].sort(byName).at(-1)!;
  const ordered = [...versions.values()].sort((a, b) => b.created - a.created || byName(highest(b), highest(a)));
  const kept = ordered.slice(0, keep);
  const dropped = ordered.slice(keep);

  const digestOf = new Map(tags.map((t) => [t.tag, t.digest]));
  const protectedDigests = new Set<string>();
  const protect = (tag: string) => {
    const d = digestOf.get(tag);
    if (d) protectedDigests.add(d);
  };
  protect('latest');
  for (const v of kept) {
    protectedDigests.add(v.digest);
    v.companions.forEach(protect);
  }
  undated.forEach((t) => protectedDigests.add(t.digest));
  // Normally a child or an artifact, never a version's own digest; if one ever is, deleting it would break what the internal tag serves.
  for (const t of all) if (isInternalTag(t.tag)) protectedDigests.add(t.digest);
  const claimed = new Set([...versions.values()].flatMap((v) => v.companions));
  for (const t of tags) if (SHA_TAG.test(t.tag) && !claimed.has(t.tag)) protectedDigests.add(t.digest);

  const doomed = new Set<string>();
  for (const v of dropped) {
    for (const d of [v.digest, ...v.companions.map((c) => digestOf.get(c)!)]) if (!protectedDigests.has(d)) doomed.add(d);
  }
  const remove = tags.filter((t) => doomed.has(t.digest)).map((t) => t.tag);
  const removed = new Set(remove);
  return {
    keep: tags.filter((t) => !removed.has(t.tag)).map((t) => t.tag).sort(byName),
    remove: remove.sort(byName),
    digests: [...doomed].sort(),
  };
}
