import type { Logger } from '../log.js';
import { reportStatus } from '../pipeline/status.js';
import type { BuildRecord, Store } from '../store/store.js';
import type { GitHubAccess } from './access.js';
import { checkRunReporter } from './check-runs.js';
import { prCommenter } from './pr-comment.js';

/** How a build's progress reaches GitHub: commit statuses (token mode) or check runs (App mode), and the PR comment when asked for. */
export interface BuildReporter {
  /** A build was queued (App mode: its check run appears as queued). */
  queued(build: BuildRecord): Promise<void>;
  /** `silent`: a multi-image merge's own build, whose images report for themselves. */
  report(build: BuildRecord, state: 'pending' | 'success' | 'failure', description: string, silent?: boolean): Promise<void>;
}

const TAIL_LINES = 60;
const CACHE_LINE = /^layers from cache: /;

/** The last lines of the builds running in this process, and their cache line: what a failed check run shows. */
export class LogTap {
  private readonly tails = new Map<number, string[]>();
  private readonly cache = new Map<number, string>();
  line(id: number, text: string): void {
    let tail = this.tails.get(id);
    if (!tail) this.tails.set(id, (tail = []));
    tail.push(text);
    if (tail.length > TAIL_LINES) tail.shift();
    if (CACHE_LINE.test(text)) this.cache.set(id, text);
  }
  tail(id: number): string[] {
    return this.tails.get(id) ?? [];
  }
  cacheLine(id: number): string | undefined {
    return this.cache.get(id);
  }
  /** Once the build's result is reported; a retry's lines start afresh. */
  forget(id: number): void {
    this.tails.delete(id);
    this.cache.delete(id);
  }
}

export interface BuildReporterDeps {
  github: GitHubAccess;
  store: Store;
  /** Read at each report: serve may learn the public URL from ngrok after start. */
  publicUrl: () => string | undefined;
  prComment: boolean;
  tap: LogTap;
  log: Logger;
}

export function createBuildReporter(deps: BuildReporterDeps): BuildReporter {
  const pageUrl = (id: number) => {
    const base = deps.publicUrl();
    return base ? `${base}/builds/${id}` : undefined;
  };
  const log = deps.log.child({ component: 'github' });
  const checks =
    deps.github.mode === 'app'
      ? checkRunReporter({
          github: deps.github,
          load: (id) => deps.store.get(id),
          group: (id) => deps.store.listGroup(id),
          pageUrl,
          logTail: (id) => deps.tap.tail(id),
          cacheLine: (id) => deps.tap.cacheLine(id),
          log,
        })
      : undefined;
  const comments = deps.prComment
    ? prCommenter({
        github: deps.github,
        // A merge's images share one comment: the group's builds, or the head's own when it failed before planning.
        buildsOf: async (b) => {
          const headId = b.groupId ?? b.id;
          const images = await deps.store.listGroup(headId);
          return images.length ? images : [(await deps.store.get(b.id)) ?? b];
        },
        pullRequestOf: async (b) => {
          if (b.pullRequest) return b.pullRequest;
          const recent = await deps.store.list({ repo: `${b.owner}/${b.repo}`, limit: 100 });
          return recent.find((r) => r.sha === b.sha && r.pullRequest)?.pullRequest;
        },
        pageUrl,
        log,
      })
    : undefined;

  return {
    async queued(build) {
      await checks?.queued(build);
    },
    async report(build, state, description, silent = false) {
      if (checks) await checks.report(build, state, description, silent);
      else if (!silent) {
        await reportStatus(await deps.github.forRepo(build.owner, build.repo), { owner: build.owner, repo: build.repo, sha: build.sha, buildId: build.id, service: build.service }, state, description, deps.publicUrl(), log);
      }
      if (state !== 'pending') {
        deps.tap.forget(build.id);
        if (comments) await comments.update(build);
      }
    },
  };
}
