import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeApp, type FakeGitHub } from '../support/fake-github.js';
import { quiet, rejection } from '../support/octokit-rejection.js';

const TOKEN = 'ghp_fake_token_for_tests';

describe('fake GitHub: check runs', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let app: FakeApp;
  let octokit: Octokit;
  let sha: string;
  const owner = 'acme';
  const name = 'widget';

  before(async () => {
    repo = await createGitRepo({ Dockerfile: 'FROM busybox\n' });
    sha = repo.head();
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(owner, name, repo);
    app = gh.createApp();
    const { installationId } = gh.installApp(app.appId, { account: owner, repositories: [name] });
    octokit = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId },
      baseUrl: gh.apiUrl,
      log: quiet,
    });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('lifecycle: queued, in_progress, completed with output; recorded with every body sent', async () => {
    const created = await octokit.rest.checks.create({ owner, repo: name, name: 'dockhook/web', head_sha: sha, external_id: 'build-1' });
    assert.equal(created.status, 201);
    assert.equal(created.data.status, 'queued');
    assert.equal(created.data.conclusion, null);
    assert.equal(created.data.app?.slug, app.slug);
    assert.equal(created.data.external_id, 'build-1');
    assert.equal(created.data.details_url, `https://${app.slug}.example.com`, 'documented default: the App homepage');
    const id = created.data.id;

    await octokit.rest.checks.update({ owner, repo: name, check_run_id: id, status: 'in_progress', details_url: 'http://dockhook.test/builds/1' });
    const done = await octokit.rest.checks.update({
      owner,
      repo: name,
      check_run_id: id,
      conclusion: 'success',
      output: { title: 'Built web', summary: '`docker pull reg/web:abc`', text: 'log' },
    });
    assert.equal(done.data.status, 'completed', 'a conclusion implies completed');
    assert.equal(done.data.conclusion, 'success');
    assert.ok(done.data.completed_at);
    assert.deepEqual([done.data.output.title, done.data.output.summary, done.data.output.text], ['Built web', '`docker pull reg/web:abc`', 'log']);

    const got = await octokit.rest.checks.get({ owner, repo: name, check_run_id: id });
    assert.equal(got.data.details_url, 'http://dockhook.test/builds/1');

    const [run] = gh.checkRunsFor('ACME', name, sha);
    assert.equal(run!.id, id);
    assert.equal(run!.status, 'completed');
    assert.deepEqual(run!.updates.map((u) => u.status ?? u.conclusion), [undefined, 'in_progress', 'success']);
    assert.equal(run!.updates[0]!.name, 'dockhook/web');
  });

  test('validation: name and head_sha required, conclusion required when completed, enums, unknown commit', async () => {
    // Untyped on purpose: these bodies break the schema.
    const request = octokit.request as unknown as (route: string, params: Record<string, unknown>) => Promise<unknown>;
    const post = (body: Record<string, unknown>) => rejection(request('POST /repos/{owner}/{repo}/check-runs', { owner, repo: name, ...body }));
    const noName = await post({ head_sha: sha });
    assert.deepEqual([noName.status, noName.response?.data.message], [422, 'Invalid request.\n\n"name" wasn\'t supplied.']);
    const neither = await post({});
    assert.equal(neither.response?.data.message, 'Invalid request.\n\n"name", "head_sha" weren\'t supplied.');
    const completed = await post({ name: 'x', head_sha: sha, status: 'completed' });
    assert.equal(completed.status, 422);
    assert.match(completed.response?.data.message, /"conclusion" wasn't supplied/);
    const completedAt = await post({ name: 'x', head_sha: sha, completed_at: new Date().toISOString() });
    assert.equal(completedAt.status, 422);
    const badStatus = await post({ name: 'x', head_sha: sha, status: 'waiting' });
    assert.equal(badStatus.response?.data.message, 'Invalid request.\n\nFor \'properties/status\', "waiting" is not one of ["queued", "in_progress", "completed"].');
    const badConclusion = await post({ name: 'x', head_sha: sha, conclusion: 'great' });
    assert.equal(badConclusion.status, 422);
    const noCommit = await post({ name: 'x', head_sha: 'f'.repeat(40) });
    assert.equal(noCommit.status, 422);
    const noSummary = await post({ name: 'x', head_sha: sha, output: { title: 't' } });
    assert.equal(noSummary.response?.data.message, 'Invalid request.\n\n"summary" wasn\'t supplied.');
    assert.equal(gh.checkRunsFor(owner, name, sha).filter((r) => r.name === 'x').length, 0);

    // Created completed in one go: started and completed now.
    const direct = await octokit.rest.checks.create({ owner, repo: name, name: 'x', head_sha: sha, conclusion: 'failure', output: { title: 't', summary: 's' } });
    assert.deepEqual([direct.data.status, direct.data.conclusion], ['completed', 'failure']);
  });

  test('output: summary or text over 65535 characters is 422, and over 65535 bytes too', async () => {
    const { data } = await octokit.rest.checks.create({ owner, repo: name, name: 'long', head_sha: sha });
    const update = (output: { title?: string; summary: string; text?: string }) =>
      rejection(octokit.rest.checks.update({ owner, repo: name, check_run_id: data.id, output }));
    const long = await update({ summary: 'x'.repeat(65536) });
    assert.deepEqual([long.status, long.response?.data.message], [422, 'Invalid request.\n\nOnly 65535 characters are allowed; 65536 were supplied.']);
    const longText = await update({ summary: 'ok', text: 'y'.repeat(70000) });
    assert.equal(longText.response?.data.message, 'Invalid request.\n\nOnly 65535 characters are allowed; 70000 were supplied.');
    const bytes = await update({ summary: 'é'.repeat(40000) });
    assert.equal(bytes.status, 422);
    assert.equal(bytes.response?.data.errors[0].message, 'summary exceeds a maximum bytesize of 65535');
    await octokit.rest.checks.update({ owner, repo: name, check_run_id: data.id, output: { summary: 'x'.repeat(65535), text: 'y'.repeat(65535) } });
    const run = gh.checkRunsFor(owner, name, sha).find((r) => r.id === data.id)!;
    assert.equal(run.output.summary!.length, 65535);
    assert.equal(run.updates.length, 2, 'refused updates are not recorded');
  });

  test('a personal token may read check runs but not create or update them', async () => {
    const user = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl, log: quiet });
    const refused = await rejection(user.rest.checks.create({ owner, repo: name, name: 'pat', head_sha: sha }));
    assert.equal(refused.status, 403);
    assert.equal(refused.response?.data.message, 'You must authenticate via a GitHub App.');
    const [run] = gh.checkRunsFor(owner, name, sha);
    const patch = await rejection(user.rest.checks.update({ owner, repo: name, check_run_id: run!.id, status: 'in_progress' }));
    assert.equal(patch.status, 403);
    assert.equal((await user.rest.checks.get({ owner, repo: name, check_run_id: run!.id })).data.id, run!.id);

    // An installation without checks:write is refused too.
    const readOnly = gh.createApp({ slug: 'read-only' });
    const { installationId } = gh.installApp(readOnly.appId, { account: owner, repositories: 'all', permissions: { metadata: 'read', checks: 'read' } });
    const other = new Octokit({ authStrategy: createAppAuth, auth: { appId: readOnly.appId, privateKey: readOnly.privateKey, installationId }, baseUrl: gh.apiUrl, log: quiet });
    const denied = await rejection(other.rest.checks.create({ owner, repo: name, name: 'ro', head_sha: sha }));
    assert.deepEqual([denied.status, denied.response?.data.message], [403, 'Resource not accessible by integration']);
    assert.equal(denied.response?.headers['x-accepted-github-permissions'], 'checks=write');
  });

  test('list for a ref: latest per name by default, filter=all, check_name, status, pagination', async () => {
    const second = await repo.commit({ 'a.txt': 'a\n' }, 'second');
    gh.addRepo(owner, name, repo);
    const make = (n: string, extra: Record<string, unknown> = {}) =>
      octokit.request('POST /repos/{owner}/{repo}/check-runs', { owner, repo: name, name: n, head_sha: second, ...extra });
    await make('dockhook/a', { conclusion: 'failure' });
    const rerun = await make('dockhook/a', { status: 'in_progress' });
    await make('dockhook/b');
    await make('dockhook/c', { conclusion: 'success' });

    const latest = await octokit.rest.checks.listForRef({ owner, repo: name, ref: 'main' });
    assert.equal(latest.data.total_count, 3);
    assert.equal(latest.data.check_runs.find((r) => r.name === 'dockhook/a')!.id, rerun.data.id);
    const all = await octokit.rest.checks.listForRef({ owner, repo: name, ref: second, filter: 'all' });
    assert.equal(all.data.total_count, 4);
    const byName = await octokit.rest.checks.listForRef({ owner, repo: name, ref: second, check_name: 'dockhook/b' });
    assert.deepEqual(byName.data.check_runs.map((r) => r.name), ['dockhook/b']);
    const byStatus = await octokit.rest.checks.listForRef({ owner, repo: name, ref: second, status: 'completed' });
    assert.deepEqual(byStatus.data.check_runs.map((r) => r.name), ['dockhook/c']);

    const paged = await octokit.rest.checks.listForRef({ owner, repo: name, ref: second, filter: 'all', per_page: 3 });
    assert.equal(paged.data.check_runs.length, 3);
    assert.equal(paged.data.total_count, 4);
    assert.match(paged.headers.link ?? '', /rel="next"/);
    const everything = await octokit.paginate(octokit.rest.checks.listForRef, { owner, repo: name, ref: second, filter: 'all', per_page: 3 });
    assert.equal(everything.length, 4);
    assert.deepEqual(gh.checkRunsFor(owner, name, second).map((r) => r.name), ['dockhook/a', 'dockhook/a', 'dockhook/b', 'dockhook/c']);
  });

  test('request log: the check-run routes have names', async () => {
    gh.requests.length = 0;
    const { data } = await octokit.rest.checks.create({ owner, repo: name, name: 'log', head_sha: sha });
    await octokit.rest.checks.update({ owner, repo: name, check_run_id: data.id, status: 'in_progress' });
    await octokit.rest.checks.get({ owner, repo: name, check_run_id: data.id });
    await octokit.rest.checks.listForRef({ owner, repo: name, ref: sha });
    assert.deepEqual(
      gh.requests.filter((r) => r.route?.includes('check-runs')).map((r) => r.route),
      [
        'POST /repos/{owner}/{repo}/check-runs',
        'PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}',
        'GET /repos/{owner}/{repo}/check-runs/{check_run_id}',
        'GET /repos/{owner}/{repo}/commits/{ref}/check-runs',
      ],
    );
  });
});
