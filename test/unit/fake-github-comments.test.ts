import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeApp, type FakeGitHub } from '../support/fake-github.js';
import { quiet, rejection } from '../support/octokit-rejection.js';

const TOKEN = 'ghp_fake_token_for_tests';

describe('fake GitHub: issue comments', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let app: FakeApp;
  let asApp: Octokit;
  let asUser: Octokit;
  const owner = 'acme';
  const name = 'widget';

  before(async () => {
    repo = await createGitRepo({ Dockerfile: 'FROM busybox\n' });
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(owner, name, repo);
    app = gh.createApp({ slug: 'dockhook-test' });
    const { installationId } = gh.installApp(app.appId, { account: owner, repositories: [name] });
    asApp = new Octokit({ authStrategy: createAppAuth, auth: { appId: app.appId, privateKey: app.privateKey, installationId }, baseUrl: gh.apiUrl, log: quiet });
    asUser = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl, log: quiet });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('create: 201; the author is the App\'s bot with an installation token, dockhook-bot with the token', async () => {
    const byApp = await asApp.rest.issues.createComment({ owner, repo: name, issue_number: 7, body: '<!-- dockhook -->\nbuilt' });
    assert.equal(byApp.status, 201);
    assert.deepEqual([byApp.data.user?.login, byApp.data.user?.type], ['dockhook-test[bot]', 'Bot']);
    assert.equal(byApp.data.performed_via_github_app?.slug, 'dockhook-test');
    assert.equal(byApp.data.html_url, `https://github.com/acme/widget/issues/7#issuecomment-${byApp.data.id}`);
    const byUser = await asUser.rest.issues.createComment({ owner, repo: name, issue_number: 7, body: 'from the token' });
    assert.deepEqual([byUser.data.user?.login, byUser.data.user?.type], ['dockhook-bot', 'User']);
    assert.equal(byUser.data.performed_via_github_app, null);

    const recorded = gh.commentsOn('ACME', name, 7);
    assert.deepEqual(recorded.map((c) => [c.user.login, c.body]), [
      ['dockhook-test[bot]', '<!-- dockhook -->\nbuilt'],
      ['dockhook-bot', 'from the token'],
    ]);
    assert.deepEqual(gh.commentsOn(owner, name, 8), []);
  });

  test('update and get: the body changes in place, updated_at moves, the edit is recorded with its author', async () => {
    const { data } = await asApp.rest.issues.createComment({ owner, repo: name, issue_number: 9, body: 'first' });
    await new Promise((r) => setTimeout(r, 1100)); // GitHub's times have whole seconds
    const edited = await asApp.rest.issues.updateComment({ owner, repo: name, comment_id: data.id, body: 'second' });
    assert.equal(edited.data.id, data.id);
    assert.equal(edited.data.body, 'second');
    assert.ok(edited.data.updated_at > edited.data.created_at);
    assert.equal((await asApp.rest.issues.getComment({ owner, repo: name, comment_id: data.id })).data.body, 'second');
    const [c] = gh.commentsOn(owner, name, 9);
    assert.deepEqual(c!.edits.map((e) => [e.by.login, e.body]), [['dockhook-test[bot]', 'second']]);
  });

  test('list: oldest first, paged, since; another person\'s comment is listed with its author', async () => {
    const other = gh.addComment(owner, name, 11, { login: 'octocat', body: 'looks good <!-- dockhook -->' });
    assert.equal(other.user.type, 'User');
    for (let i = 0; i < 4; i++) await asApp.rest.issues.createComment({ owner, repo: name, issue_number: 11, body: `c${i}` });
    const page = await asApp.rest.issues.listComments({ owner, repo: name, issue_number: 11, per_page: 2 });
    assert.deepEqual(page.data.map((c) => c.body), ['looks good <!-- dockhook -->', 'c0']);
    assert.equal(page.data[0]!.user?.login, 'octocat');
    assert.match(page.headers.link ?? '', /rel="next"/);
    const all = await asApp.paginate(asApp.rest.issues.listComments, { owner, repo: name, issue_number: 11, per_page: 2 });
    assert.equal(all.length, 5);
    const future = await asApp.rest.issues.listComments({ owner, repo: name, issue_number: 11, since: new Date(Date.now() + 60_000).toISOString() });
    assert.deepEqual(future.data, []);
    const past = await asApp.rest.issues.listComments({ owner, repo: name, issue_number: 11, since: '2000-01-01T00:00:00Z' });
    assert.equal(past.data.length, 5);
  });

  test('refusals: missing or too long a body is 422; unknown comment is 404; no issues permission is 403', async () => {
    const request = asApp.request as unknown as (route: string, params: Record<string, unknown>) => Promise<unknown>;
    const noBody = await rejection(request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo: name, issue_number: 3 }));
    assert.deepEqual([noBody.status, noBody.response?.data.message], [422, 'Invalid request.\n\n"body" wasn\'t supplied.']);
    const long = await rejection(asApp.rest.issues.createComment({ owner, repo: name, issue_number: 3, body: 'x'.repeat(65537) }));
    assert.equal(long.status, 422);
    assert.equal(long.response?.data.errors[0].message, 'Body is too long (maximum is 65536 characters)');
    await asApp.rest.issues.createComment({ owner, repo: name, issue_number: 3, body: 'x'.repeat(65536) });
    assert.equal((await rejection(asApp.rest.issues.updateComment({ owner, repo: name, comment_id: 1, body: 'x' }))).status, 404);

    const mute = gh.createApp({ slug: 'mute' });
    const { installationId } = gh.installApp(mute.appId, { account: owner, repositories: 'all', permissions: { metadata: 'read', pull_requests: 'read' } });
    const muted = new Octokit({ authStrategy: createAppAuth, auth: { appId: mute.appId, privateKey: mute.privateKey, installationId }, baseUrl: gh.apiUrl, log: quiet });
    assert.equal((await muted.rest.issues.listComments({ owner, repo: name, issue_number: 11 })).data.length, 5, 'pull_requests read reads');
    const denied = await rejection(muted.rest.issues.createComment({ owner, repo: name, issue_number: 11, body: 'hi' }));
    assert.deepEqual([denied.status, denied.response?.data.message], [403, 'Resource not accessible by integration']);
    assert.equal(denied.response?.headers['x-accepted-github-permissions'], 'issues=write; pull_requests=write');
  });

  test('request log: the comment routes have names', async () => {
    gh.requests.length = 0;
    const { data } = await asUser.rest.issues.createComment({ owner, repo: name, issue_number: 5, body: 'x' });
    await asUser.rest.issues.updateComment({ owner, repo: name, comment_id: data.id, body: 'y' });
    await asUser.rest.issues.listComments({ owner, repo: name, issue_number: 5 });
    assert.deepEqual(gh.requests.map((r) => r.route), [
      'POST /repos/{owner}/{repo}/issues/{issue_number}/comments',
      'PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}',
      'GET /repos/{owner}/{repo}/issues/{issue_number}/comments',
    ]);
    assert.equal(gh.requestCount({ route: 'PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', params: { comment_id: String(data.id) } }), 1);
  });
});
