import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BuildError } from '../../src/errors.js';
import { createGitHubClient, type GitHubClient } from '../../src/github.js';
import { createLogger } from '../../src/log.js';
import { readRepoTree, type RepoTree } from '../../src/pipeline/repo-tree.js';
import { createGitRepo, git, gitEnv, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';

const execFileAsync = promisify(execFile);
const TOKEN = 'ghp_fake_token_for_tests';
const OWNER = 'acme';
const NAME = 'mono';
const TREES = 'GET /repos/{owner}/{repo}/git/trees/{tree_sha}';
const FILES = {
  Dockerfile: 'FROM busybox\n',
  'api/Dockerfile': 'FROM node:20\nCOPY src /src\n',
  'api/src/main.ts': 'console.log("api");\n',
  'web/Dockerfile': 'FROM nginx\n',
  'web/index.html': '<h1>web</h1>\n',
  'deep/a/b/c.txt': 'deep\n',
};
const FOLDERS = ['', 'api', 'api/src', 'web', 'deep', 'deep/a', 'deep/a/b'];
const BLOBS = Object.keys(FILES);

/** `git rev-parse <sha>:<path>`: what git itself says the object at `path` is. */
const revParse = (repo: GitRepo, sha: string, path: string) => git(repo.dir, ['rev-parse', `${sha}:${path}`]);

/**
 * Commits a submodule entry (a gitlink, mode 160000) at `path` on top of HEAD
 * without touching the work tree or the repo's index, and returns the commit.
 * createGitRepo cannot: its commits `git add -A` the work tree.
 */
async function commitGitlink(repo: GitRepo, path: string, target: string): Promise<string> {
  const index = join(tmpdir(), `dockhook-index-${process.pid}-${Date.now()}`);
  const env = { ...gitEnv, GIT_INDEX_FILE: index, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
  const run = async (args: string[]) => (await execFileAsync('git', ['-C', repo.dir, ...args], { env })).stdout.trim();
  try {
    await run(['read-tree', 'HEAD']);
    await run(['update-index', '--add', '--cacheinfo', `160000,${target},${path}`]);
    const tree = await run(['write-tree']);
    return await run(['commit-tree', tree, '-p', 'HEAD', '-m', 'Add submodule']);
  } finally {
    await rm(index, { force: true });
  }
}

describe('readRepoTree', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let octokit: GitHubClient;
  let first: string;

  before(async () => {
    repo = await createGitRepo(FILES);
    first = repo.head();
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(OWNER, NAME, repo);
    // The same repository again, past a (tiny) listing limit, for the fallback.
    gh.addRepo(OWNER, 'big', repo, { truncateTreesOver: 3 });
    octokit = createGitHubClient({ token: TOKEN, baseUrl: gh.apiUrl, log: createLogger('silent') });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('root and folder tree SHAs are git\'s, from one API call', async () => {
    const before = gh.requestCount({ route: TREES });
    const tree = await readRepoTree(octokit, { owner: OWNER, repo: NAME }, first);
    assert.equal(tree.root, await revParse(repo, first, ''));
    for (const folder of FOLDERS) {
      assert.deepEqual(await tree.shaOf(folder), { type: 'tree', sha: await revParse(repo, first, folder) }, folder);
    }
    // Spellings of the same folder.
    for (const alias of ['api/', './api', 'api//', 'web/../api']) {
      assert.deepEqual(await tree.shaOf(alias), await tree.shaOf('api'), alias);
    }
    assert.deepEqual(await tree.shaOf('.'), { type: 'tree', sha: tree.root });
    const calls = gh.requestsTo({ route: TREES }).slice(before);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].params.tree_sha, first);
    assert.equal(calls[0].query, '?recursive=true');
  });

  test('a blob\'s SHA is git\'s', async () => {
    const tree = await readRepoTree(octokit, { owner: OWNER, repo: NAME }, first);
    for (const file of BLOBS) {
      assert.deepEqual(await tree.shaOf(file), { type: 'blob', sha: await revParse(repo, first, file) }, file);
    }
  });

  test('a change in one folder changes its SHA and the root\'s, not a sibling\'s', async () => {
    const second = await repo.commit({ 'api/src/main.ts': 'console.log("api v2");\n' }, 'Change api');
    const [a, b] = await Promise.all([first, second].map((sha) => readRepoTree(octokit, { owner: OWNER, repo: NAME }, sha)));
    assert.notEqual(a.root, b.root);
    for (const changed of ['api', 'api/src', 'api/src/main.ts']) {
      assert.notEqual((await a.shaOf(changed))!.sha, (await b.shaOf(changed))!.sha, changed);
    }
    for (const same of ['web', 'deep', 'api/Dockerfile', 'Dockerfile']) {
      assert.deepEqual(await a.shaOf(same), await b.shaOf(same), same);
    }
  });

  test('a missing path, a path below a file and one outside the repository are undefined', async () => {
    const tree = await readRepoTree(octokit, { owner: OWNER, repo: NAME }, first);
    for (const missing of ['nope', 'api/nope', 'api/Dockerfile/x', 'deep/a/b/c.txt/d', '../api', '/api', 'API']) {
      assert.equal(await tree.shaOf(missing), undefined, missing);
    }
  });

  test('a submodule is a commit entry, with nothing below it', async () => {
    const withModule = await commitGitlink(repo, 'vendor/lib', first);
    const tree = await readRepoTree(octokit, { owner: OWNER, repo: NAME }, withModule);
    assert.deepEqual(await tree.shaOf('vendor/lib'), { type: 'commit', sha: first });
    assert.equal(await tree.shaOf('vendor/lib/README'), undefined);
    assert.deepEqual(await tree.shaOf('vendor'), { type: 'tree', sha: await revParse(repo, withModule, 'vendor') });
  });

  test('truncated listing: the walk gives the same answers, listing each folder at most once', async () => {
    const where = { owner: OWNER, repo: 'big' };
    const full = await readRepoTree(octokit, { owner: OWNER, repo: NAME }, first);
    gh.requests.length = 0;
    const cut = await readRepoTree(octokit, where, first);
    assert.equal(cut.root, full.root);

    const paths = [...FOLDERS, ...BLOBS, 'nope', 'api/nope', 'web/index.html/x', 'deep/a/nope/x'];
    const answers = async (tree: RepoTree) => Promise.all(paths.map((p) => tree.shaOf(p)));
    assert.deepEqual(await answers(cut), await answers(full));
    const calls = gh.requestsTo({ route: TREES, params: where });
    assert.equal(calls.filter((r) => r.query.includes('recursive')).length, 1);
    const levels = calls.filter((r) => !r.query.includes('recursive'));
    assert.ok(levels.length > 0, 'the fallback listed folders one level at a time');
    const treeShas = new Set(await Promise.all(FOLDERS.map((f) => revParse(repo, first, f))));
    assert.ok(levels.every((r) => treeShas.has(r.params.tree_sha)), 'by tree SHA');
    assert.equal(new Set(levels.map((r) => r.params.tree_sha)).size, levels.length, 'each listing once, even when asked concurrently');

    // Asked again: answered from the cache.
    const count = gh.requestCount({ route: TREES });
    assert.deepEqual(await answers(cut), await answers(full));
    assert.equal(gh.requestCount({ route: TREES }), count);
  });

  test('truncated listing: a failed level is a BuildError naming the folder, and is asked again later', async () => {
    const where = { owner: OWNER, repo: 'big' };
    const tree = await readRepoTree(octokit, where, first);
    const web = await revParse(repo, first, 'web');
    gh.failNext({ method: 'GET', pathIncludes: `/git/trees/${web}` }, { status: 403, body: { message: 'Resource not accessible by integration' } });
    const err = await tree.shaOf('web/index.html').then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BuildError);
    assert.match(err.message, new RegExp(`GitHub answered 403 while reading the tree of ${first.slice(0, 7)} at web`));
    assert.deepEqual(await tree.shaOf('web/index.html'), { type: 'blob', sha: await revParse(repo, first, 'web/index.html') });
  });

  test('an unknown repository or commit is a BuildError naming the problem', async () => {
    for (const [where, sha] of [
      [{ owner: OWNER, repo: 'ghost' }, first],
      [{ owner: OWNER, repo: NAME }, 'f'.repeat(40)],
    ] as const) {
      const err = await readRepoTree(octokit, where, sha).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BuildError, String(err));
      assert.equal(err.transient, false);
      assert.match(err.message, new RegExp(`^GitHub answered 404 while reading the tree of ${sha.slice(0, 7)}: check GITHUB_TOKEN can read this repository`));
    }
  });

  test('a bad token is a BuildError saying so', async () => {
    const wrong = createGitHubClient({ token: 'nope', baseUrl: gh.apiUrl, log: createLogger('silent') });
    const err = await readRepoTree(wrong, { owner: OWNER, repo: NAME }, first).catch((e: unknown) => e);
    assert.ok(err instanceof BuildError);
    assert.match(err.message, /GitHub refused GITHUB_TOKEN while reading the tree of/);
  });
});
