import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { verify } from '@octokit/webhooks-methods';
import { createGitRepo, git, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { examplePayload, mergedPullRequestPayload, signDelivery } from '../support/deliveries.js';
import { freePort } from '../support/ports.js';

const execFileAsync = promisify(execFile);
const TOKEN = 'ghp_fake_token_for_tests';
const OWNER = 'acme';
const NAME = 'widget';
// The request-log plugin would print every 4xx/5xx this file provokes on purpose.
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

// Longer than 60 base64 characters, to see GitHub's line wrapping.
const DOCKERFILE = 'FROM busybox\nCOPY app.txt /app.txt\nCMD ["cat", "/app.txt"]\n';
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Reads the status of an Octokit error without `any`. */
async function rejection(p: Promise<unknown>): Promise<{ status: number; response?: { data: any; headers: Record<string, string> } }> {
  try {
    await p;
  } catch (err) {
    return err as { status: number; response?: { data: any; headers: Record<string, string> } };
  }
  assert.fail('expected the request to fail');
}

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
