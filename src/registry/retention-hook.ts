import type { BuildLogWriter } from '../logs/build-logs.js';
import { AppError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BuildRecord, Store } from '../store/store.js';
import { applyRetention } from './apply-retention.js';
import type { RegistryClient } from './client.js';
import { isInternalTag } from './internal-tags.js';

export interface RetentionHookDeps {
  registry: RegistryClient;
  store: Store;
  keep: number;
  log: Logger;
}

/**
 * The worker's afterSuccess for KEEP_VERSIONS: prunes the image the build
 * just pushed. Never throws: the worker would otherwise turn a pruning
 * problem into a failed build of an image that was pushed fine. Problems go
 * to the build log, the build's notes and dockhook's log instead.
 */
export function retentionAfterSuccess(deps: RetentionHookDeps): (build: BuildRecord, out: BuildLogWriter) => Promise<void> {
  return async (build, out) => {
    // The record the worker holds was read before the pipeline set the image name.
    const image = (await deps.store.get(build.id))?.image;
    if (!image) return;
    // A build taken over by another worker after its push reaches this point twice: prune once.
    if (!(await deps.store.claimRetention(build.id))) return;
    const log = deps.log.child({ build: build.id, image, component: 'retention' });
    const problem = async (text: string) => {
      out.line(`retention: ${text}`);
      await deps.store.addNote(build.id, `retention: ${text}`);
      log.warn({ problem: text }, 'retention could not delete everything it planned to');
    };
    try {
      const { plan, removed, failures } = await applyRetention(deps.registry, image, deps.keep);
      out.line(
        removed.length
          ? `retention (KEEP_VERSIONS=${deps.keep}): deleted ${image}:${removed.join(', ')}; kept ${plan.keep.join(', ')}`
          : `retention (KEEP_VERSIONS=${deps.keep}): nothing to delete in ${image}`,
      );
      // _platform- and _artifact- tags went with their versions; they were never bound to a commit.
      for (const version of removed.filter((t) => !isInternalTag(t))) await deps.store.releaseVersion(image, version);
      if (removed.length) log.info({ removed, kept: plan.keep }, 'old versions deleted');
      for (const f of failures) await problem(f);
    } catch (err) {
      const hint = err instanceof AppError && err.hint ? ` (${err.hint})` : '';
      await problem(`could not read the tags of ${image}: ${errorMessage(err)}${hint}`);
    }
  };
}
