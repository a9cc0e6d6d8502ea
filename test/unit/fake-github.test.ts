import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { verify } from '@octokit/webhooks-methods';
import { createGitRepo, git, gitEnv, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { examplePayload, mergedPullRequestPayload, signDelivery } from '../support/deliveries.js';
import { freePort } from '../support/ports.js';
import { quiet, rejection } from '../support/octokit-rejection.js';

const execFileAsync = promisify(execFile);
const TOKEN = 'ghp_fake_token_for_tests';
const OWNER = 'acme';
const NAME = 'widget';

// Longer than 60 base64 characters, to see GitHub's line wrapping.
const DOCKERFILE = 'FROM busybox\nCOPY app.txt /app.txt\nCMD ["cat", "/app.txt"]\n';
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('fake GitHub', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let octokit: Octokit;
  let first: string;

  before(async () => {
    repo = await createGitRepo({ Dockerfile: DOCKERFILE, 'sub/dir/app.txt': 'hello\n', 'bin.dat': BINARY });
    first = repo.head();
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(OWNER, NAME, repo);
    octokit = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl, log: quiet });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('GET /repos/:owner/:repo, case-insensitive like GitHub', async () => {
    const { data, headers } = await octokit.rest.repos.get({ owner: 'ACME', repo: NAME });
    assert.equal(data.full_name, 'acme/widget');
    assert.equal(data.default_branch, 'main');
    assert.equal(data.html_url, 'https://github.com/acme/widget');
    assert.deepEqual({ ...data.permissions }, { admin: true, maintain: true, push: true, triage: true, pull: true });
    assert.equal(headers['x-ratelimit-remaining'], '4999');
    assert.ok(headers['x-github-request-id']);
  });

  test('contents: raw media type returns the file as text', async () => {
    const { data, headers } = await octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'sub/dir/app.txt', mediaType: { format: 'raw' } });
    assert.equal(data as unknown, 'hello\n');
    assert.equal(headers['content-type'], 'application/vnd.github.v3.raw; charset=utf-8');
  });

  test('contents: raw bytes survive when the body is read unparsed', async () => {
    const res = await fetch(`${gh.apiUrl}/repos/${OWNER}/${NAME}/contents/bin.dat?ref=${first}`, {
      headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/vnd.github.raw+json' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), BINARY);
  });

  test('contents: JSON has GitHub-wrapped base64 and the blob sha', async () => {
    const { data } = await octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'Dockerfile', ref: first });
    assert.ok(!Array.isArray(data) && data.type === 'file');
    const file = data as { content: string; encoding: string; sha: string; size: number; name: string; path: string };
    assert.equal(file.encoding, 'base64');
    assert.ok(file.content.split('\n').every((line) => line.length <= 60));
    assert.ok(file.content.endsWith('\n'));
    assert.equal(Buffer.from(file.content, 'base64').toString(), DOCKERFILE);
    assert.equal(file.sha, await git(repo.dir, ['rev-parse', `${first}:Dockerfile`]));
    assert.equal(file.size, DOCKERFILE.length);
    assert.deepEqual([file.name, file.path], ['Dockerfile', 'Dockerfile']);
  });

  test('contents: a directory is a JSON listing', async () => {
    const { data } = await octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'sub' });
    assert.ok(Array.isArray(data));
    assert.deepEqual(data.map((e) => [e.type, e.name, e.path]), [['dir', 'dir', 'sub/dir']]);
    const root = await octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: '' });
    assert.deepEqual((root.data as { name: string }[]).map((e) => e.name).sort(), ['Dockerfile', 'bin.dat', 'sub']);
  });

  test('contents: missing file, unknown ref and unknown repo are 404s', async () => {
    const missing = await rejection(octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'nope/Dockerfile' }));
    assert.equal(missing.status, 404);
    assert.equal(missing.response?.data.message, 'Not Found');

    const badRef = await rejection(octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'Dockerfile', ref: 'no-such-branch' }));
    assert.equal(badRef.status, 404);
    assert.equal(badRef.response?.data.message, 'No commit found for the ref no-such-branch');

    const noRepo = await rejection(octokit.rest.repos.get({ owner: OWNER, repo: 'ghost' }));
    assert.equal(noRepo.status, 404);
  });

  test('contents: a later commit is visible at its sha, the old one at the old sha', async () => {
    const second = await repo.commit({ 'sub/dir/app.txt': 'bye\n', 'bin.dat': null }, 'Change app');
    const at = (ref: string) =>
      octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'sub/dir/app.txt', ref, mediaType: { format: 'raw' } });
    assert.equal((await at(second)).data as unknown, 'bye\n');
    assert.equal((await at(first)).data as unknown, 'hello\n');
    assert.equal((await rejection(octokit.rest.repos.getContent({ owner: OWNER, repo: NAME, path: 'bin.dat', ref: second }))).status, 404);
  });

  test('tarball: 302 to codeload, which serves git archive with the GitHub prefix', async () => {
    const res = await octokit.rest.repos.downloadTarballArchive({ owner: OWNER, repo: NAME, ref: 'main', request: { redirect: 'manual' } });
    assert.equal(res.status, 302);
    const sha = repo.head();
    assert.equal(res.headers.location, `${gh.codeloadUrl}/${OWNER}/${NAME}/legacy.tar.gz/${sha}`);

    const download = await fetch(res.headers.location!);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'application/x-gzip');
    const dir = await mkdtemp(join(tmpdir(), 'fake-github-test-'));
    try {
      const file = join(dir, 'repo.tar.gz');
      await writeFile(file, Buffer.from(await download.arrayBuffer()));
      const entries = (await execFileAsync('tar', ['-tzf', file])).stdout.trim().split('\n');
      const prefix = `${OWNER}-${NAME}-${sha.slice(0, 7)}/`;
      assert.ok(entries.every((e) => e.startsWith(prefix)), entries.join(', '));
      assert.ok(entries.includes(`${prefix}sub/dir/app.txt`));
      // The pax global header carries the commit id, as in GitHub's tarballs.
      const commitId = await execFileAsync('sh', ['-c', `gzip -dc '${file}' | git get-tar-commit-id`]);
      assert.equal(commitId.stdout.trim(), sha);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('tarball: octokit follows the redirect itself; unknown ref is 404', async () => {
    const { data } = await octokit.rest.repos.downloadTarballArchive({ owner: OWNER, repo: NAME, ref: first });
    assert.ok(data instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(data).subarray(0, 2)], [0x1f, 0x8b]); // gzip magic
    assert.equal((await rejection(octokit.rest.repos.downloadTarballArchive({ owner: OWNER, repo: NAME, ref: 'nope' }))).status, 404);
  });

  test('commits: resolves branch and sha; unknown is 422', async () => {
    const { data } = await octokit.rest.repos.getCommit({ owner: OWNER, repo: NAME, ref: 'main' });
    assert.equal(data.sha, repo.head());
    assert.equal(data.commit.message, 'Change app');
    assert.equal(data.html_url, `https://github.com/${OWNER}/${NAME}/commit/${data.sha}`);
    assert.equal((await octokit.rest.repos.getCommit({ owner: OWNER, repo: NAME, ref: first.slice(0, 10) })).data.sha, first);
    const unknown = await rejection(octokit.rest.repos.getCommit({ owner: OWNER, repo: NAME, ref: 'deadbeef' }));
    assert.equal(unknown.status, 422);
    assert.equal(unknown.response?.data.message, 'No commit found for SHA: deadbeef');
  });

  test('statuses: recorded, listed newest first, long description refused', async () => {
    const base = { owner: OWNER, repo: NAME, sha: first, context: 'dockhook' };
    const created = await octokit.rest.repos.createCommitStatus({ ...base, state: 'pending', description: 'Building' });
    assert.equal(created.status, 201);
    assert.equal(created.data.state, 'pending');
    await octokit.rest.repos.createCommitStatus({ ...base, state: 'success', description: 'x'.repeat(140), target_url: 'http://x/1' });

    const tooLong = await rejection(octokit.rest.repos.createCommitStatus({ ...base, state: 'failure', description: 'x'.repeat(141) }));
    assert.equal(tooLong.status, 422);
    assert.equal(tooLong.response?.data.message, 'Validation Failed');
    assert.equal(tooLong.response?.data.errors[0].message, 'description is too long (maximum is 140 characters)');
    // The typed client cannot send a bad state, so go around it.
    const badState = await fetch(`${gh.apiUrl}/repos/${OWNER}/${NAME}/statuses/${first}`, {
      method: 'POST',
      headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'done' }),
    });
    assert.equal(badState.status, 422);

    assert.deepEqual(gh.statusesFor(first).map((s) => s.state), ['pending', 'success']);
    assert.deepEqual(gh.statuses.at(-1), { ...gh.statuses.at(-1)!, owner: OWNER, repo: NAME, sha: first, target_url: 'http://x/1' });
    const listed = await octokit.rest.repos.listCommitStatusesForRef({ owner: OWNER, repo: NAME, ref: first });
    assert.deepEqual(listed.data.map((s) => s.state), ['success', 'pending']);
    const combined = await octokit.rest.repos.getCombinedStatusForRef({ owner: OWNER, repo: NAME, ref: first });
    assert.equal(combined.data.state, 'success');
    assert.equal(combined.data.total_count, 1);
  });

  test('failNext: canned answers in order, then normal service', async () => {
    const path = `/repos/${OWNER}/${NAME}/commits/`;
    gh.failNext({ method: 'GET', pathIncludes: path }, { status: 502, body: { message: 'Server Error' } }, { status: 502 });
    const reset = String(Math.floor(Date.now() / 1000) + 2);
    gh.failNext(
      { pathIncludes: '/statuses/' },
      { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset, 'x-ratelimit-limit': '5000' }, body: { message: 'API rate limit exceeded for user.' } },
    );
    const commit = () => octokit.rest.repos.getCommit({ owner: OWNER, repo: NAME, ref: 'main' });
    assert.equal((await rejection(commit())).status, 502);
    assert.equal((await rejection(commit())).status, 502);
    assert.equal((await commit()).status, 200);

    const limited = await rejection(octokit.rest.repos.createCommitStatus({ owner: OWNER, repo: NAME, sha: first, state: 'error' }));
    assert.equal(limited.status, 403);
    assert.equal(limited.response?.headers['x-ratelimit-remaining'], '0');
    assert.equal(limited.response?.headers['x-ratelimit-reset'], reset);
    assert.equal(limited.response?.data.message, 'API rate limit exceeded for user.');
    assert.equal((await octokit.rest.repos.createCommitStatus({ owner: OWNER, repo: NAME, sha: first, state: 'error' })).status, 201);
    assert.equal(gh.requests.filter((r) => r.method === 'GET' && r.path === `${path}main`).length >= 3, true);
  });

  test('auth: bad or missing token is 401 Bad credentials; Bearer works', async () => {
    const wrong = new Octokit({ auth: 'nope', baseUrl: gh.apiUrl, log: quiet });
    const err = await rejection(wrong.rest.repos.get({ owner: OWNER, repo: NAME }));
    assert.equal(err.status, 401);
    assert.deepEqual(err.response?.data, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    assert.equal((await fetch(`${gh.apiUrl}/user`)).status, 401);

    const res = await fetch(`${gh.apiUrl}/user`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-oauth-scopes'), 'repo');
    assert.equal(((await res.json()) as { login: string }).login, 'dockhook-bot');
    assert.equal((await octokit.rest.rateLimit.get()).data.resources.core.limit, 5000);
  });

  test('hooks: create masks the secret, list, update config, refuse duplicates', async () => {
    const created = await octokit.rest.repos.createWebhook({
      owner: OWNER,
      repo: NAME,
      name: 'web',
      config: { url: 'http://127.0.0.1:1/webhook', content_type: 'json', secret: 's3cret', insecure_ssl: '0' },
      events: ['pull_request'],
      active: true,
    });
    assert.equal(created.status, 201);
    assert.equal(created.data.config.secret, '********');
    assert.deepEqual(created.data.events, ['pull_request']);
    assert.equal(gh.hooks.get(`${OWNER}/${NAME}`)![0].config.secret, 's3cret');

    const dup = await rejection(
      octokit.rest.repos.createWebhook({ owner: OWNER, repo: NAME, config: { url: 'http://127.0.0.1:1/webhook' } }),
    );
    assert.equal(dup.status, 422);

    // `url` is a reserved octokit option (it replaces the request URL), so the
    // new hook URL has to travel in `data`.
    const updated = await octokit.request('PATCH /repos/{owner}/{repo}/hooks/{hook_id}/config', {
      owner: OWNER,
      repo: NAME,
      hook_id: created.data.id,
      data: { url: 'http://127.0.0.1:2/webhook' },
    });
    assert.equal(updated.data.url, 'http://127.0.0.1:2/webhook');
    assert.equal(gh.hooks.get(`${OWNER}/${NAME}`)![0].config.secret, 's3cret'); // config PATCH keeps unsent fields

    const listed = await octokit.rest.repos.listWebhooks({ owner: OWNER, repo: NAME });
    assert.deepEqual(listed.data.map((h) => [h.id, h.config.url, h.config.secret]), [[created.data.id, 'http://127.0.0.1:2/webhook', '********']]);
  });

  test('git trees: a tree sha, commit sha or branch lists one level of the commit\'s tree', async () => {
    const rootTree = await git(repo.dir, ['rev-parse', `${first}^{tree}`]);
    for (const tree_sha of [rootTree, first]) {
      const { data } = await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha });
      assert.equal(data.sha, rootTree);
      assert.equal(data.url, `${gh.apiUrl}/repos/${OWNER}/${NAME}/git/trees/${rootTree}`);
      assert.equal(data.truncated, false);
      const dockerfile = await git(repo.dir, ['rev-parse', `${first}:Dockerfile`]);
      const sub = await git(repo.dir, ['rev-parse', `${first}:sub`]);
      assert.deepEqual(data.tree, [
        { path: 'Dockerfile', mode: '100644', type: 'blob', sha: dockerfile, size: DOCKERFILE.length, url: `${gh.apiUrl}/repos/${OWNER}/${NAME}/git/blobs/${dockerfile}` },
        { path: 'bin.dat', mode: '100644', type: 'blob', sha: await git(repo.dir, ['rev-parse', `${first}:bin.dat`]), size: BINARY.length, url: `${gh.apiUrl}/repos/${OWNER}/${NAME}/git/blobs/${await git(repo.dir, ['rev-parse', `${first}:bin.dat`])}` },
        { path: 'sub', mode: '040000', type: 'tree', sha: sub, url: `${gh.apiUrl}/repos/${OWNER}/${NAME}/git/trees/${sub}` },
      ]);
    }
    const branch = await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: 'main' });
    assert.equal(branch.data.sha, await git(repo.dir, ['rev-parse', 'main^{tree}']));
  });

  test('git trees: recursive (any value, even "false") lists everything below, trees before their contents', async () => {
    const expected = ['Dockerfile', 'bin.dat', 'sub', 'sub/dir', 'sub/dir/app.txt'];
    for (const recursive of ['true', '1', 'false']) {
      const { data } = await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: first, recursive });
      assert.deepEqual(data.tree.map((e) => e.path), expected, recursive);
      assert.equal(data.truncated, false);
    }
    const sub = await git(repo.dir, ['rev-parse', `${first}:sub`]);
    const { data } = await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: sub, recursive: '1' });
    assert.deepEqual(data.tree.map((e) => [e.path, e.type, e.sha]), [
      ['dir', 'tree', await git(repo.dir, ['rev-parse', `${first}:sub/dir`])],
      ['dir/app.txt', 'blob', await git(repo.dir, ['rev-parse', `${first}:sub/dir/app.txt`])],
    ]);
  });

  test('git trees: unknown sha, ref, repository, or a blob\'s sha are 404 Not Found', async () => {
    const blob = await git(repo.dir, ['rev-parse', `${first}:Dockerfile`]);
    for (const [name, tree_sha] of [[NAME, 'f'.repeat(40)], [NAME, 'no-such-branch'], [NAME, blob], ['ghost', first]]) {
      const err = await rejection(octokit.rest.git.getTree({ owner: OWNER, repo: name, tree_sha }));
      assert.equal(err.status, 404, tree_sha);
      assert.equal(err.response?.data.message, 'Not Found');
    }
  });

  test('git trees: truncateTreesOver cuts recursive listings and says truncated', async () => {
    gh.addRepo(OWNER, 'huge', repo, { truncateTreesOver: 2 });
    const cut = await octokit.rest.git.getTree({ owner: OWNER, repo: 'huge', tree_sha: first, recursive: 'true' });
    assert.deepEqual([cut.data.tree.map((e) => e.path), cut.data.truncated], [['Dockerfile', 'bin.dat'], true]);
    // One level is under the limit, and GitHub only truncates recursive listings anyway.
    const level = await octokit.rest.git.getTree({ owner: OWNER, repo: 'huge', tree_sha: first });
    assert.deepEqual([level.data.tree.length, level.data.truncated], [3, false]);
    const sub = await git(repo.dir, ['rev-parse', `${first}:sub`]);
    const small = await octokit.rest.git.getTree({ owner: OWNER, repo: 'huge', tree_sha: sub, recursive: 'true' });
    assert.deepEqual([small.data.tree.length, small.data.truncated], [2, false]);
  });

  test('git trees: a submodule is a commit entry without size or url; tags resolve', async () => {
    const index = join(tmpdir(), `fake-github-index-${process.pid}`);
    const env = { ...gitEnv, GIT_INDEX_FILE: index, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
    const run = async (args: string[]) => (await execFileAsync('git', ['-C', repo.dir, ...args], { env })).stdout.trim();
    try {
      await run(['read-tree', first]);
      await run(['update-index', '--add', '--cacheinfo', `160000,${first},lib`]);
      const commit = await run(['commit-tree', await run(['write-tree']), '-p', first, '-m', 'Add submodule']);
      await run(['tag', 'with-submodule', commit]);
    } finally {
      await rm(index, { force: true });
    }
    const { data } = await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: 'with-submodule' });
    assert.deepEqual(data.tree.find((e) => e.path === 'lib'), { path: 'lib', mode: '160000', type: 'commit', sha: first });
  });

  test('requestsTo/requestCount: by route and parameters, canned answers included', async () => {
    const route = 'GET /repos/{owner}/{repo}/git/trees/{tree_sha}';
    gh.requests.length = 0;
    gh.failNext({ pathIncludes: '/git/trees/' }, { status: 403, body: { message: 'Forbidden' } });
    assert.equal((await rejection(octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: 'main' }))).status, 403);
    await octokit.rest.git.getTree({ owner: 'ACME', repo: NAME, tree_sha: 'main', recursive: 'true' });
    await octokit.rest.git.getTree({ owner: OWNER, repo: NAME, tree_sha: first });
    await octokit.rest.repos.get({ owner: OWNER, repo: NAME });

    assert.equal(gh.requestCount({ route }), 3);
    assert.equal(gh.requestCount({ route, params: { owner: OWNER, repo: NAME, tree_sha: 'main' } }), 2);
    assert.equal(gh.requestCount({ route, queryIncludes: 'recursive=' }), 1);
    assert.equal(gh.requestCount({ route: 'GET /repos/{owner}/{repo}' }), 1);
    assert.deepEqual(gh.requestsTo({ route, params: { tree_sha: first } }).map((r) => [r.path, r.params]), [
      [`/repos/${OWNER}/${NAME}/git/trees/${first}`, { owner: OWNER, repo: NAME, tree_sha: first }],
    ]);
  });

  test('request log: every route the fake serves has a name', async () => {
    gh.requests.length = 0;
    const hook = await octokit.rest.repos.createWebhook({ owner: OWNER, repo: NAME, config: { url: 'http://127.0.0.1:3/webhook' } });
    const hook_id = hook.data.id;
    const base = { owner: OWNER, repo: NAME };
    await octokit.rest.users.getAuthenticated();
    await octokit.rest.rateLimit.get();
    await octokit.rest.repos.get(base);
    await octokit.rest.repos.getContent({ ...base, path: '' });
    await octokit.rest.repos.getContent({ ...base, path: 'sub/dir/app.txt' });
    await octokit.rest.repos.downloadTarballArchive({ ...base, ref: 'main' });
    await octokit.rest.repos.downloadZipballArchive({ ...base, ref: 'main', request: { redirect: 'manual' } });
    await octokit.rest.repos.getCommit({ ...base, ref: 'main' });
    await octokit.rest.repos.listCommitStatusesForRef({ ...base, ref: 'main' });
    await octokit.rest.repos.getCombinedStatusForRef({ ...base, ref: 'main' });
    await octokit.rest.repos.createCommitStatus({ ...base, sha: first, state: 'success' });
    await octokit.rest.git.getTree({ ...base, tree_sha: 'main' });
    await octokit.rest.repos.listWebhooks(base);
    await octokit.rest.repos.getWebhook({ ...base, hook_id });
    await octokit.rest.repos.updateWebhook({ ...base, hook_id, active: true });
    await octokit.rest.repos.getWebhookConfigForRepo({ ...base, hook_id });
    await octokit.rest.repos.updateWebhookConfigForRepo({ ...base, hook_id, content_type: 'json' });
    await octokit.rest.repos.pingWebhook({ ...base, hook_id });
    await octokit.rest.repos.testPushWebhook({ ...base, hook_id });
    await octokit.rest.repos.deleteWebhook({ ...base, hook_id });
    await fetch(`${gh.apiUrl}/repos/${OWNER}/${NAME}/nothing-here`, { headers: { authorization: `token ${TOKEN}` } });

    assert.deepEqual(gh.requests.map((r) => r.route), [
      'POST /repos/{owner}/{repo}/hooks',
      'GET /user',
      'GET /rate_limit',
      'GET /repos/{owner}/{repo}',
      'GET /repos/{owner}/{repo}/contents/{path}',
      'GET /repos/{owner}/{repo}/contents/{path}',
      'GET /repos/{owner}/{repo}/tarball/{ref}',
      'GET /{owner}/{repo}/legacy.tar.gz/{ref}',
      'GET /repos/{owner}/{repo}/zipball/{ref}',
      'GET /repos/{owner}/{repo}/commits/{ref}',
      'GET /repos/{owner}/{repo}/commits/{ref}/statuses',
      'GET /repos/{owner}/{repo}/commits/{ref}/status',
      'POST /repos/{owner}/{repo}/statuses/{sha}',
      'GET /repos/{owner}/{repo}/git/trees/{tree_sha}',
      'GET /repos/{owner}/{repo}/hooks',
      'GET /repos/{owner}/{repo}/hooks/{hook_id}',
      'PATCH /repos/{owner}/{repo}/hooks/{hook_id}',
      'GET /repos/{owner}/{repo}/hooks/{hook_id}/config',
      'PATCH /repos/{owner}/{repo}/hooks/{hook_id}/config',
      'POST /repos/{owner}/{repo}/hooks/{hook_id}/pings',
      'POST /repos/{owner}/{repo}/hooks/{hook_id}/tests',
      'DELETE /repos/{owner}/{repo}/hooks/{hook_id}',
      undefined,
    ]);
    assert.deepEqual(gh.requests.find((r) => r.server === 'codeload')?.params, { owner: OWNER, repo: NAME, ref: repo.head() });
  });
});

describe('deliveries', () => {
  test('signDelivery signs the exact body as @octokit/webhooks-methods verifies it', async () => {
    const payload = mergedPullRequestPayload({ owner: OWNER, repo: NAME, sha: 'a'.repeat(40), number: 7 });
    for (const form of [false, true]) {
      const { body, headers } = await signDelivery('secret', payload, { form, id: 'd-1' });
      assert.equal(await verify('secret', body, headers['x-hub-signature-256']), true);
      assert.equal(headers['x-github-delivery'], 'd-1');
      assert.equal(headers['x-github-event'], 'pull_request');
      if (form) assert.deepEqual(JSON.parse(new URLSearchParams(body).get('payload')!), payload);
    }
  });

  test('mergedPullRequestPayload is a merged closed PR of owner/repo', () => {
    const p = mergedPullRequestPayload({ owner: OWNER, repo: NAME, sha: 'b'.repeat(40), branch: 'release', defaultBranch: 'main' }) as any;
    assert.equal(p.action, 'closed');
    assert.equal(p.pull_request.merged, true);
    assert.equal(p.pull_request.merge_commit_sha, 'b'.repeat(40));
    assert.equal(p.pull_request.base.ref, 'release');
    assert.equal(p.repository.full_name, 'acme/widget');
    assert.equal(p.repository.default_branch, 'main');
    assert.ok(!JSON.stringify(p.repository).includes('Hello-World'));
    assert.equal(examplePayload('ping').zen !== undefined, true);
  });

  test('freePort gives a bindable port', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
  });
});

describe('fake GitHub: deployments', () => {
  const DOCS_409 = 'Conflict: Commit status checks failed for';
  let repo: GitRepo;
  let gh: FakeGitHub;
  let octokit: Octokit;
  let first: string; // behind main: what a rollback deploys
  let head: string; // main
  const base = { owner: OWNER, repo: NAME };
  const bypass = { auto_merge: false, required_contexts: [] as string[] };

  before(async () => {
    repo = await createGitRepo({ 'app.txt': 'v1\n' });
    first = repo.head();
    await git(repo.dir, ['branch', 'behind-clean', first]);
    await git(repo.dir, ['checkout', '--quiet', '-b', 'behind-conflict', first]);
    await repo.commit({ 'app.txt': 'side\n' }, 'Side change');
    await git(repo.dir, ['checkout', '--quiet', 'main']);
    head = await repo.commit({ 'app.txt': 'v2\n' }, 'v2');
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(OWNER, NAME, repo);
    gh.addRepo(OWNER, 'other', repo);
    octokit = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl, log: quiet });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  /** POSTs a body the typed client would refuse to send. */
  const post = (path: string, body: unknown) =>
    fetch(`${gh.apiUrl}/repos/${OWNER}/${NAME}${path}`, {
      method: 'POST',
      headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('create: 201 with the deployment object, GitHub defaults, Location, recorded as sent', async () => {
    const created = await octokit.rest.repos.createDeployment({ ...base, ref: head, ...bypass });
    assert.equal(created.status, 201);
    const d = created.data as Extract<typeof created.data, { id: unknown }>;
    assert.equal(typeof d.id, 'number');
    assert.equal(d.sha, head);
    assert.equal(d.ref, head);
    assert.equal(d.environment, 'production');
    assert.equal(d.original_environment, 'production');
    assert.equal(d.production_environment, true);
    assert.equal(d.transient_environment, false);
    assert.equal(d.task, 'deploy');
    assert.deepEqual(d.payload, {});
    assert.equal(d.description, '');
    assert.match(d.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(d.url, `${gh.apiUrl}/repos/${OWNER}/${NAME}/deployments/${d.id}`);
    assert.equal(d.statuses_url, `${d.url}/statuses`);
    assert.equal(d.repository_url, `${gh.apiUrl}/repos/${OWNER}/${NAME}`);
    assert.equal(created.headers.location, d.url);

    const staged = await octokit.rest.repos.createDeployment({
      ...base,
      ref: 'main',
      environment: 'staging',
      description: 'dockhook build 7',
      payload: { service: 'api', build: 7 },
      ...bypass,
    });
    const s = staged.data as Extract<typeof staged.data, { id: unknown }>;
    assert.equal(s.ref, 'main');
    assert.equal(s.sha, head);
    assert.equal(s.production_environment, false); // documented default: true only for "production"
    assert.deepEqual(s.payload, { service: 'api', build: 7 });
    assert.equal(s.description, 'dockhook build 7');

    const recorded = gh.deploymentsFor('ACME', NAME);
    assert.deepEqual(recorded.map((r) => r.id), [d.id, s.id]);
    assert.equal(recorded[0].auto_merge, false);
    assert.deepEqual(recorded[0].required_contexts, []);
    assert.equal((await octokit.rest.repos.getDeployment({ ...base, deployment_id: d.id })).data.sha, head);
    assert.deepEqual(gh.deploymentsFor(OWNER, 'other'), []);
  });

  test('create: missing or unknown ref is 422, bad types are 422, no token is 401', async () => {
    const missing = await post('/deployments', { environment: 'production' });
    assert.equal(missing.status, 422);
    const unknown = await rejection(octokit.rest.repos.createDeployment({ ...base, ref: 'no-such-branch', ...bypass }));
    assert.equal(unknown.status, 422);
    assert.equal(unknown.response?.data.message, 'No ref found for: no-such-branch');
    assert.equal((await post('/deployments', { ref: 'main', auto_merge: 'no' })).status, 422);
    assert.equal((await post('/deployments', { ref: 'main', required_contexts: 'ci' })).status, 422);
    const anonymous = await fetch(`${gh.apiUrl}/repos/${OWNER}/${NAME}/deployments`, { method: 'POST', body: '{"ref":"main"}' });
    assert.equal(anonymous.status, 401);
    assert.equal(gh.deploymentsFor(OWNER, NAME).length, 2); // nothing recorded by the refusals
  });

  test('create: auto_merge (the default) refuses a ref behind the default branch: 409 on a sha or conflict, 202 on a clean branch', async () => {
    const before = gh.deployments.length;
    const sha = await rejection(octokit.rest.repos.createDeployment({ ...base, ref: first, required_contexts: [] }));
    assert.equal(sha.status, 409);
    assert.equal(sha.response?.data.message, `Conflict merging main into ${first}.`);
    const conflict = await rejection(octokit.rest.repos.createDeployment({ ...base, ref: 'behind-conflict', required_contexts: [] }));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.response?.data.message, 'Conflict merging main into behind-conflict.');
    const clean = await octokit.rest.repos.createDeployment({ ...base, ref: 'behind-clean', required_contexts: [] });
    assert.equal(clean.status, 202);
    assert.deepEqual(clean.data, { message: 'Auto-merged main into behind-clean on deployment.' });
    assert.equal(gh.deployments.length, before);

    // The rollback case: an older sha deploys as itself with auto_merge: false.
    const rollback = await octokit.rest.repos.createDeployment({ ...base, ref: first, ...bypass });
    assert.equal(rollback.status, 201);
    assert.equal((rollback.data as { sha: string }).sha, first);
    // A ref that contains the default branch needs no merge.
    assert.equal((await octokit.rest.repos.createDeployment({ ...base, ref: head, required_contexts: [] })).status, 201);
  });

  test('create: commit status checks, 409 unless required_contexts is [] or the contexts are success', async () => {
    const side = await git(repo.dir, ['rev-parse', 'behind-conflict']);
    const at = { ...base, ref: side, auto_merge: false };
    // No statuses at all: nothing to check, GitHub deploys.
    assert.equal((await octokit.rest.repos.createDeployment(at)).status, 201);

    await octokit.rest.repos.createCommitStatus({ ...base, sha: side, context: 'ci', state: 'success' });
    await octokit.rest.repos.createCommitStatus({ ...base, sha: side, context: 'lint', state: 'failure' });
    const all = await rejection(octokit.rest.repos.createDeployment(at));
    assert.equal(all.status, 409);
    assert.equal(all.response?.data.message, `${DOCS_409} ${side}.`);
    assert.deepEqual(all.response?.data.errors, [
      {
        contexts: [
          { context: 'ci', state: 'success' },
          { context: 'lint', state: 'failure' },
        ],
        resource: 'Deployment',
        field: 'required_contexts',
        code: 'invalid',
      },
    ]);
    assert.equal((await octokit.rest.repos.createDeployment({ ...at, required_contexts: ['ci'] })).status, 201);
    const lint = await rejection(octokit.rest.repos.createDeployment({ ...at, required_contexts: ['lint'] }));
    assert.equal(lint.status, 409);
    const never = await rejection(octokit.rest.repos.createDeployment({ ...at, required_contexts: ['ci', 'e2e'] }));
    assert.equal(never.status, 409);
    assert.deepEqual(never.response?.data.errors[0].contexts, [
      { context: 'ci', state: 'success' },
      { context: 'e2e', state: 'missing' },
    ]);
    assert.equal((await octokit.rest.repos.createDeployment({ ...at, required_contexts: [] })).status, 201);

    // The current (newest) status of a context counts.
    await octokit.rest.repos.createCommitStatus({ ...base, sha: side, context: 'lint', state: 'success' });
    assert.equal((await octokit.rest.repos.createDeployment(at)).status, 201);
  });

  test('list: newest first, filtered by sha, ref, environment and task, paged with Link', async () => {
    const ids = gh.deploymentsFor(OWNER, NAME).map((d) => d.id);
    const all = await octokit.rest.repos.listDeployments({ ...base, per_page: 100 });
    assert.deepEqual(all.data.map((d) => d.id), [...ids].reverse());

    const bySha = await octokit.rest.repos.listDeployments({ ...base, sha: first });
    assert.deepEqual(bySha.data.map((d) => d.sha), [first]);
    const byRef = await octokit.rest.repos.listDeployments({ ...base, ref: 'main' });
    assert.deepEqual(byRef.data.map((d) => [d.ref, d.environment]), [['main', 'staging']]);
    const staging = await octokit.rest.repos.listDeployments({ ...base, environment: 'staging' });
    assert.deepEqual(staging.data.map((d) => d.environment), ['staging']);
    const production = await octokit.rest.repos.listDeployments({ ...base, environment: 'production', sha: head });
    assert.ok(production.data.length >= 2 && production.data.every((d) => d.environment === 'production' && d.sha === head));
    assert.deepEqual((await octokit.rest.repos.listDeployments({ ...base, task: 'deploy:migrations' })).data, []);
    assert.deepEqual((await octokit.rest.repos.listDeployments({ owner: OWNER, repo: 'other' })).data, []);

    const page = await octokit.rest.repos.listDeployments({ ...base, per_page: 2 });
    assert.equal(page.data.length, 2);
    assert.match(page.headers.link ?? '', /[?&]page=2[^>]*>; rel="next"/);
    const paged = await octokit.paginate(octokit.rest.repos.listDeployments, { ...base, per_page: 2 });
    assert.deepEqual(paged.map((d) => d.id), [...ids].reverse());
  });

  test('statuses: 201, log_url is also target_url, listed newest first, recorded', async () => {
    const created = await octokit.rest.repos.createDeployment({ ...base, ref: head, ...bypass });
    const id = (created.data as { id: number }).id;
    const progress = await octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id: id, state: 'in_progress', log_url: 'http://dockhook/builds/7' });
    assert.equal(progress.status, 201);
    assert.equal(progress.data.state, 'in_progress');
    assert.equal(progress.data.log_url, 'http://dockhook/builds/7');
    assert.equal(progress.data.target_url, 'http://dockhook/builds/7');
    assert.equal(progress.data.environment, 'production');
    assert.equal(progress.data.description, '');
    assert.equal(progress.data.environment_url, '');
    assert.equal(progress.data.deployment_url, `${gh.apiUrl}/repos/${OWNER}/${NAME}/deployments/${id}`);
    assert.equal(progress.headers.location, `${progress.data.deployment_url}/statuses/${progress.data.id}`);
    const done = await octokit.rest.repos.createDeploymentStatus({
      ...base,
      deployment_id: id,
      state: 'success',
      log_url: 'http://dockhook/builds/7',
      environment_url: 'http://host:8080/',
      description: 'x'.repeat(140),
    });
    assert.equal(done.data.environment_url, 'http://host:8080/');

    const listed = await octokit.rest.repos.listDeploymentStatuses({ ...base, deployment_id: id });
    assert.deepEqual(listed.data.map((s) => s.state), ['success', 'in_progress']);
    assert.equal((await octokit.rest.repos.getDeploymentStatus({ ...base, deployment_id: id, status_id: done.data.id })).data.state, 'success');
    const recorded = gh.deploymentStatuses(id);
    assert.deepEqual(recorded.map((s) => [s.state, s.log_url, s.added_by_github]), [
      ['in_progress', 'http://dockhook/builds/7', false],
      ['success', 'http://dockhook/builds/7', false],
    ]);
    assert.deepEqual(gh.deploymentStatuses(id + 999), []);
  });

  test('statuses: unknown deployment is 404, invalid state or a description over 140 characters is 422', async () => {
    const id = gh.deploymentsFor(OWNER, NAME)[0].id;
    const unknown = await rejection(octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id: 424242, state: 'success' }));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.response?.data.message, 'Not Found');
    assert.equal((await rejection(octokit.rest.repos.listDeploymentStatuses({ ...base, deployment_id: 424242 }))).status, 404);
    assert.equal((await rejection(octokit.rest.repos.getDeployment({ ...base, deployment_id: 424242 }))).status, 404);
    // Another repository's deployment is not found here.
    assert.equal((await rejection(octokit.rest.repos.createDeploymentStatus({ owner: OWNER, repo: 'other', deployment_id: id, state: 'success' }))).status, 404);
    assert.equal((await post('/deployments/abc/statuses', { state: 'success' })).status, 404);

    const badState = await post(`/deployments/${id}/statuses`, { state: 'done' });
    assert.equal(badState.status, 422);
    assert.equal(((await badState.json()) as { message: string }).message, 'Validation Failed');
    assert.equal((await post(`/deployments/${id}/statuses`, {})).status, 422);
    const tooLong = await rejection(octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id: id, state: 'failure', description: 'x'.repeat(141) }));
    assert.equal(tooLong.status, 422);
    assert.equal(tooLong.response?.data.errors[0].message, 'description is too long (maximum is 140 characters)');
    // Characters, not UTF-16 units: 140 emoji are 280 units and still fit.
    const emoji = await octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id: id, state: 'failure', description: '🐳'.repeat(140) });
    assert.equal(emoji.status, 201);
    assert.deepEqual(gh.deploymentStatuses(id).map((s) => s.state), ['failure']);
  });

  test('statuses: auto_inactive marks prior successful non-production deployments of the environment inactive', async () => {
    const deploy = async (environment: string, extra: Record<string, unknown> = {}) =>
      ((await octokit.rest.repos.createDeployment({ ...base, ref: head, environment, ...bypass, ...extra })).data as { id: number }).id;
    const succeed = (id: number, auto_inactive?: boolean) =>
      octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id: id, state: 'success', ...(auto_inactive === undefined ? {} : { auto_inactive }) });
    const states = (id: number) => gh.deploymentStatuses(id).map((s) => (s.added_by_github ? `${s.state} (by GitHub)` : s.state));

    const qa1 = await deploy('qa');
    const qa2 = await deploy('qa');
    const qa3 = await deploy('qa');
    const otherEnv = await deploy('preview');
    await succeed(qa1);
    await succeed(otherEnv);
    await succeed(qa2, false);
    assert.deepEqual(states(qa1), ['success']);
    await succeed(qa3);
    assert.deepEqual(states(qa1), ['success', 'inactive (by GitHub)']);
    assert.deepEqual(states(qa2), ['success', 'inactive (by GitHub)']);
    assert.deepEqual(states(otherEnv), ['success']);
    const listed = await octokit.rest.repos.listDeploymentStatuses({ ...base, deployment_id: qa1 });
    assert.equal(listed.data[0].state, 'inactive');

    // Production deployments are left alone.
    const prod1 = await deploy('production');
    await succeed(prod1);
    await succeed(await deploy('production'));
    assert.deepEqual(states(prod1), ['success']);
  });

  test('request log: the deployment routes have names', async () => {
    gh.requests.length = 0;
    const created = await octokit.rest.repos.createDeployment({ ...base, ref: head, ...bypass });
    const deployment_id = (created.data as { id: number }).id;
    await octokit.rest.repos.listDeployments(base);
    await octokit.rest.repos.getDeployment({ ...base, deployment_id });
    const status = await octokit.rest.repos.createDeploymentStatus({ ...base, deployment_id, state: 'queued' });
    await octokit.rest.repos.listDeploymentStatuses({ ...base, deployment_id });
    await octokit.rest.repos.getDeploymentStatus({ ...base, deployment_id, status_id: status.data.id });
    assert.deepEqual(gh.requests.map((r) => r.route), [
      'POST /repos/{owner}/{repo}/deployments',
      'GET /repos/{owner}/{repo}/deployments',
      'GET /repos/{owner}/{repo}/deployments/{deployment_id}',
      'POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses',
      'GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses',
      'GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses/{status_id}',
    ]);
    assert.deepEqual(gh.requests[5].params, { owner: OWNER, repo: NAME, deployment_id: String(deployment_id), status_id: String(status.data.id) });
  });
});
