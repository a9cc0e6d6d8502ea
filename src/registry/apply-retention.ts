import pLimit from 'p-limit';
import { RegistryError, type RegistryClient, type TagInfo } from './client.js';
import { isInternalTag } from './internal-tags.js';
import { deleteWithDependents } from './delete-with-dependents.js';
import { planRetention, type RetentionPlan } from './retention.js';

/**
 * Carries out KEEP_VERSIONS for one image against the registry: describe every
 * tag, plan (retention.ts), delete the planned digests, then what went with
 * them (delete-with-dependents.ts: index children no one else names, their
 * artifacts). Deletion failures are returned, never thrown: retention must
 * not fail the build that triggered it.
 */

export interface RetentionOutcome {
  plan: RetentionPlan;
  /** Tags actually gone (every tag of each digest deleted), internal `_platform-`/`_artifact-` tags of what went with them included. */
  removed: string[];
  /** One human-readable line per failure, with the fix when there is one. */
  failures: string[];
}

/** Manifest + config reads per tag; a handful in parallel keeps a long tag list quick without flooding the registry. */
const DESCRIBE_CONCURRENCY = 4;

async function describeAll(registry: RegistryClient, image: string): Promise<TagInfo[]> {
  const limit = pLimit(DESCRIBE_CONCURRENCY);
  const tags = await registry.listTags(image);
  const infos = await Promise.all(tags.map((tag) => limit(() => registry.describeTag(image, tag))));
  // undefined: the tag went away between the list and the read; nothing to plan for it.
  return infos.filter((t): t is TagInfo => t !== undefined);
}

function describeFailure(err: unknown): string {
  if (err instanceof RegistryError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Failures that every further deletion would hit too: report once, stop. */
function stopsEverything(err: unknown): boolean {
  return err instanceof RegistryError && (err.code === 'UNSUPPORTED' || err.status === 401 || err.status === 503);
}

export async function applyRetention(registry: RegistryClient, image: string, keep: number): Promise<RetentionOutcome> {
  const tags = await describeAll(registry, image);
  const plan = planRetention(tags, keep);
  const removed: string[] = [];
  const failures: string[] = [];

  const deleteAll = async (): Promise<string[]> => {
    const deleted: string[] = [];
    for (const digest of plan.digests) {
      const going = tags.filter((t) => t.digest === digest).map((t) => t.tag);
      // The registry API deletes by digest only and the client resolves a tag to
      // get it. Go through a version tag (dockhook never moves one) and check it
      // still names the planned digest, so a tag moved since the plan (an extra
      // tag re-pushed by a concurrent build) can never take a kept image down.
      const via = going.find((t) => !t.startsWith('sha-') && !isInternalTag(t)) ?? going[0]!;
      try {
        const now = await registry.getManifestDigest(image, via);
        if (now !== digest) {
          failures.push(`skipped ${image}:${via}: it moved to ${now ?? 'nothing'} since the plan; the next build retries`);
          continue;
        }
        await registry.deleteTag(image, via);
        removed.push(...going);
        deleted.push(digest);
      } catch (err) {
        failures.push(`could not delete ${image}:${going.join(', ')} (${digest}): ${describeFailure(err)}`);
        if (stopsEverything(err)) break;
      }
    }
    return deleted;
  };
  if (plan.digests.length) {
    const dependents = await deleteWithDependents(registry, image, plan.digests, deleteAll, { tags });
    removed.push(...dependents.removedTags);
    failures.push(...dependents.failures);
  }
  return { plan, removed: removed.sort(), failures };
}
