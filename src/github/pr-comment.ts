import type { Logger } from '../log.js';
import type { BuildRecord } from '../store/store.js';
import type { GitHubAccess } from './access.js';
import { pullLines } from './build-summary.js';
import { oneAtATime } from './one-at-a-time.js';
import { codeBlock, escapeMarkdown, GITHUB_FIELD_MAX, keepEnd } from './markdown.js';

/** The hidden line that finds dockhook's comment again, with its author. */
export const COMMENT_MARKER = '<!-- dockhook -->';

export interface PrCommentSources {
  github: GitHubAccess;
  /** The builds one comment covers: a merge's images (its group), or the build alone. */
  buildsOf: (build: BuildRecord) => Promise<BuildRecord[]>;
  /** The pull request a build belongs to: its own, or (a Re-run, a push) that of an earlier build of the commit. */
  pullRequestOf: (build: BuildRecord) => Promise<BuildRecord['pullRequest']>;
  pageUrl: (id: number) => string | undefined;
  log: Logger;
}

const STATE_WORD: Record<BuildRecord['state'], string> = { queued: '⏳ queued', running: '🔨 building', succeeded: '✅ pushed', failed: '❌ failed' };

/** The comment's body: every image of the merge, its state and pull lines, or its failure with a link to the log. Escaped: names and reasons come from the repository. */
export function commentBody(builds: BuildRecord[], pageUrl: (id: number) => string | undefined): string {
  const sha = builds[0]?.sha.slice(0, 7) ?? '';
  const sections = builds.map((b) => {
    const name = escapeMarkdown(b.service ?? b.image ?? `${b.owner}/${b.repo}`);
    const link = pageUrl(b.id);
    const head = `**${name}** ${STATE_WORD[b.state]}${link ? ` · [log](${link})` : ''}`;
    if (b.state === 'succeeded' && b.pushed.length) return `${head}\n${codeBlock(pullLines(b).join('\n'), 'sh')}`;
    if (b.state === 'failed') return `${head}\n${codeBlock(b.failure ?? 'failed')}`;
    return head;
  });
  return keepEnd(`${COMMENT_MARKER}\n### dockhook: images of ${sha}\n\n${sections.join('\n\n')}`, GITHUB_FIELD_MAX, `${COMMENT_MARKER}\n… (cut)\n`);
}

/**
 * PR_COMMENT=true: one comment per pull request, found again by its marker
 * and its author, edited on every build rather than added again. Updates of
 * one pull request run one at a time in this process, so two images finishing
 * together do not both create it.
 */
export function prCommenter(src: PrCommentSources) {
  const inOrder = oneAtATime<string>((key, err) => {
    src.log.warn({ pr: key, err: { message: (err as Error).message, status: (err as { status?: number }).status } }, 'could not update the pull request comment on GitHub');
  });

  async function upsert(build: BuildRecord, pr: NonNullable<BuildRecord['pullRequest']>): Promise<void> {
    const octokit = await src.github.forRepo(build.owner, build.repo);
    const where = { owner: build.owner, repo: build.repo };
    const body = commentBody(await src.buildsOf(build), src.pageUrl);
    const me = await src.github.login();
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { ...where, issue_number: pr.number, per_page: 100 });
    const mine = comments.find((c) => c.user?.login === me && c.body?.startsWith(COMMENT_MARKER));
    if (mine) {
      if (mine.body !== body) await octokit.rest.issues.updateComment({ ...where, comment_id: mine.id, body });
    } else {
      await octokit.rest.issues.createComment({ ...where, issue_number: pr.number, body });
    }
  }

  return {
    async update(build: BuildRecord): Promise<void> {
      let pr;
      try {
        pr = await src.pullRequestOf(build);
      } catch (err) {
        src.log.warn({ build: build.id, err: { message: (err as Error).message } }, 'could not find the pull request of the build; its comment is not updated');
        return;
      }
      if (!pr) return;
      await inOrder(`${build.owner}/${build.repo}#${pr.number}`.toLowerCase(), () => upsert(build, pr));
    },
  };
}
