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
    stop: async () => {
      await github.close();
      setImmediate(() => process.exit(0));
    },
  },
  { apiUrl: github.apiUrl, pid: process.pid },
);
