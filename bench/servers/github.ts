/**
 * The test suite's fake GitHub (API + codeload, serving real git repositories)
 * in a process of its own, so that streaming source tarballs does not run on
 * the load generator's event loop.
 */
import { startFakeGitHub } from '../../test/support/fake-github.js';
import type { GitRepo } from '../../test/support/git-repo.js';
import { serveRpc } from '../process.js';

const token = process.env.GITHUB_TOKEN;
if (!token) throw new Error('GITHUB_TOKEN is required');
const github = await startFakeGitHub({ token });
// The fake's own created_at has whole seconds: note each status's arrival in ms here as well.
const arrivals: { sha: string; state: string; context: string; description: string | null; at: number }[] = [];
const push = github.statuses.push.bind(github.statuses);
github.statuses.push = (...items) => {
  for (const s of items) arrivals.push({ sha: s.sha, state: s.state, context: s.context, description: s.description, at: Date.now() });
  return push(...items);
};

serveRpc(
  {
    /** Serves the git repository in `dir` (created and committed to by the parent) as owner/name. */
    addRepo: ({ owner, name, dir, branch }: { owner: string; name: string; dir: string; branch: string }) => {
      const repo: GitRepo = {
        dir,
        branch,
        head: () => {
          throw new Error('not used by the fake GitHub');
        },
        commit: () => Promise.reject(new Error('not used by the fake GitHub')),
        cleanup: () => Promise.resolve(),
      };
      github.addRepo(owner, name, repo);
    },
    statuses: () => github.statuses.length,
    /** Every status written so far: commit, state, context, description, arrival (ms since the epoch). */
    statusArrivals: () => arrivals,
    /** The statuses of one commit, in arrival order (as statusArrivals). */
    statusesFor: (sha: string) => arrivals.filter((a) => a.sha === sha),
    /** Requests so far per route as the fake names it (e.g. 'GET /repos/{owner}/{repo}/git/trees/{tree_sha}'), for a difference before and after. */
    requestTally: () => {
      const tally: Record<string, number> = {};
      for (const r of github.requests) tally[r.route ?? `${r.method} (unserved) ${r.path}`] = (tally[r.route ?? `${r.method} (unserved) ${r.path}`] ?? 0) + 1;
      return tally;
    },
    stop: async () => {
      await github.close();
      setImmediate(() => process.exit(0));
    },
  },
  { apiUrl: github.apiUrl, pid: process.pid },
);
