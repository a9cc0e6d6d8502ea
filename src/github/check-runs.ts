import type { GitHubClient } from '../github.js';
import type { Logger } from '../log.js';
import { statusContext, toStatusDescription } from '../pipeline/status.js';
import type { BuildRecord } from '../store/store.js';
import type { GitHubAccess } from './access.js';
import { oneAtATime } from './one-at-a-time.js';
import { failureMarkdown, logTailText, successMarkdown } from './build-summary.js';

/** What the check run reporter reads besides the build: its page, its last log lines, its cache line. */
export interface CheckRunSources {
  github: GitHubAccess;
  /** The build as stored now (pushed refs, platforms, timings). */
  load: (id: number) => Promise<BuildRecord | undefined>;
  /** The image builds a merge's head planned (store.listGroup). */
  group: (headId: number) => Promise<BuildRecord[]>;
  pageUrl: (id: number) => string | undefined;
  /** The build's last log lines (up to 60) and its "layers from cache" line, as this worker saw them. */
  logTail: (id: number) => string[];
  cacheLine: (id: number) => string | undefined;
  log: Logger;
}

type Output = { title: string; summary: string; text?: string };

const TITLE_MAX = 255;
const title = (text: string) => toStatusDescription(text).slice(0, TITLE_MAX);

/**
 * Check runs (App mode): one per build, named like the commit status would be
 * (`dockhook`, or `dockhook/<service>` for an image of a multi-image merge),
 * `external_id` the build id, so that any process finds the run again.
 * Queued, then in progress, then completed with the result in its output.
 * Reporting never fails a build: errors are logged.
 */
export function checkRunReporter(src: CheckRunSources) {
  const ids = new Map<number, number>(); // build id → check run id, found or created here
  // One update at a time per build, in order.
  const inOrder = oneAtATime<number>((buildId, err) => {
    src.log.warn({ build: buildId, err: { message: (err as Error).message, status: (err as { status?: number }).status } }, 'could not update the check run on GitHub');
  });

  async function find(octokit: GitHubClient, build: BuildRecord): Promise<number | undefined> {
    const known = ids.get(build.id);
    if (known !== undefined) return known;
    const runs = await octokit.paginate(octokit.rest.checks.listForRef, {
      owner: build.owner,
      repo: build.repo,
      ref: build.sha,
      check_name: statusContext(build.service),
      filter: 'all',
      per_page: 100,
    });
    const id = runs.find((r) => r.external_id === String(build.id))?.id;
    if (id !== undefined) ids.set(build.id, id);
    return id;
  }

  async function upsert(build: BuildRecord, fields: { status: 'queued' | 'in_progress' | 'completed'; conclusion?: 'success' | 'failure'; output?: Output; onlyIfNew?: boolean }): Promise<void> {
    const octokit = await src.github.forRepo(build.owner, build.repo);
    const where = { owner: build.owner, repo: build.repo };
    const now = new Date().toISOString();
    const timing = fields.status === 'in_progress' ? { started_at: now } : fields.status === 'completed' ? { completed_at: now } : {};
    const body = { status: fields.status, ...(fields.conclusion ? { conclusion: fields.conclusion } : {}), ...timing, ...(fields.output ? { output: fields.output } : {}) };
    const id = await find(octokit, build);
    if (id !== undefined) {
      if (fields.onlyIfNew) return;
      await octokit.rest.checks.update({ ...where, check_run_id: id, ...body });
      return;
    }
    const details = src.pageUrl(build.id);
    const { data } = await octokit.rest.checks.create({
      ...where,
      name: statusContext(build.service),
      head_sha: build.sha,
      external_id: String(build.id),
      ...(details ? { details_url: details } : {}),
      ...body,
    });
    ids.set(build.id, data.id);
  }

  async function completeSuccess(build: BuildRecord, summary: string, silent: boolean): Promise<void> {
    const stored = (await src.load(build.id)) ?? build;
    if (silent) {
      // A multi-image merge's own run: it planned the images, which report in their own check runs.
      const images = await src.group(build.id);
      await upsert(stored, {
        status: 'completed',
        conclusion: 'success',
        output: { title: title(summary), summary: `Each image has its own check run: ${images.map((i) => `\`${statusContext(i.service)}\``).join(', ')}.` },
      });
      for (const image of images) await inOrder(image.id, () => upsert(image, { status: 'queued', onlyIfNew: true, output: { title: 'queued', summary: 'Waiting for a worker.' } }));
      return;
    }
    await upsert(stored, { status: 'completed', conclusion: 'success', output: { title: title(summary), summary: successMarkdown(stored, src.cacheLine(build.id), src.pageUrl(build.id)) } });
  }

  return {
    queued(build: BuildRecord): Promise<void> {
      return inOrder(build.id, () => upsert(build, { status: 'queued', onlyIfNew: true, output: { title: 'queued', summary: 'Waiting for a worker.' } }));
    },
    report(build: BuildRecord, state: 'pending' | 'success' | 'failure', description: string, silent = false): Promise<void> {
      return inOrder(build.id, async () => {
        if (state === 'pending') return upsert(build, { status: 'in_progress', output: { title: title(description), summary: `Building ${build.owner}/${build.repo}@${build.sha.slice(0, 7)}${build.service ? `, image ${build.service}` : ''}.` } });
        if (state === 'success') return completeSuccess(build, description, silent);
        const stored = (await src.load(build.id)) ?? build;
        const tail = src.logTail(build.id);
        await upsert(stored, {
          status: 'completed',
          conclusion: 'failure',
          output: { title: title(description), summary: failureMarkdown(stored, description, src.pageUrl(build.id)), ...(tail.length ? { text: logTailText(tail) } : {}) },
        });
      });
    },
  };
}
