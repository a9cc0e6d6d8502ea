import { sign } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeApp, type FakeGitHub } from '../support/fake-github.js';
import { quiet, rejection } from '../support/octokit-rejection.js';

const TOKEN = 'ghp_fake_token_for_tests';

/** A JWT as an App signs it; `claims` override iat/exp/iss. */
function jwt(app: FakeApp, claims: Record<string, unknown> = {}, key = app.privateKey): string {
  const nowS = Math.floor(Date.now() / 1000);
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iat: nowS - 60, exp: nowS + 540, iss: app.appId, ...claims })}`;
  return `${head}.${sign('sha256', Buffer.from(head), key).toString('base64url')}`;
}

describe('fake GitHub: Apps', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let app: FakeApp;
  let installationId: number;
  const appOctokit = (a: FakeApp) =>
    new Octokit({ authStrategy: createAppAuth, auth: { appId: a.appId, privateKey: a.privateKey }, baseUrl: gh.apiUrl, log: quiet });
  const installationOctokit = (a: FakeApp, id: number) =>
    new Octokit({ authStrategy: createAppAuth, auth: { appId: a.appId, privateKey: a.privateKey, installationId: id }, baseUrl: gh.apiUrl, log: quiet });
  const withToken = (token: string) => new Octokit({ auth: token, baseUrl: gh.apiUrl, log: quiet });
  // @octokit/auth-token sends a three-part token as "bearer", anything else as "token".
  const withJwt = withToken;

  before(async () => {
    repo = await createGitRepo({ Dockerfile: 'FROM busybox\n' });
    gh = await startFakeGitHub({ token: TOKEN });
    for (const name of ['widget', 'gadget', 'private']) gh.addRepo('acme', name, repo);
    gh.addRepo('someone-else', 'widget', repo);
    app = gh.createApp({ name: 'dockhook test' });
    ({ installationId } = gh.installApp(app.appId, { account: 'acme', repositories: ['widget', 'gadget'] }));
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('createApp: a PKCS#1 key like GitHub downloads; GET /app answers for the JWT auth-app signs', async () => {
    assert.match(app.privateKey, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.match(app.publicKey, /^-----BEGIN PUBLIC KEY-----\n/);
    const { data } = await appOctokit(app).rest.apps.getAuthenticated();
    assert.equal(data!.id, app.appId);
    assert.equal(data!.slug, 'dockhook');
    assert.equal(data!.name, 'dockhook test');
    assert.equal(data!.owner && 'login' in data!.owner ? data!.owner.login : undefined, 'dockhook-dev');
    assert.deepEqual({ ...data!.permissions }, {
      contents: 'read', metadata: 'read', statuses: 'write', checks: 'write',
      pull_requests: 'write', deployments: 'write', repository_hooks: 'read',
    });
    assert.deepEqual(data!.events, ['check_run', 'check_suite', 'pull_request', 'push']);
    assert.equal(data!.installations_count, 1);
    // The client ID is an issuer too.
    assert.equal((await withJwt(jwt(app, { iss: app.clientId })).rest.apps.getAuthenticated()).data!.id, app.appId);
    assert.equal(gh.createApp().slug, 'dockhook-' + (app.appId + 1), 'a second App gets its own slug');
  });

  test('installations: listed, fetched, and found from a repository; not installed is 404 Not Found', async () => {
    const octokit = appOctokit(app);
    const list = await octokit.rest.apps.listInstallations();
    assert.deepEqual(list.data.map((i) => [i.id, i.account && 'login' in i.account ? i.account.login : null, i.repository_selection]), [
      [installationId, 'acme', 'selected'],
    ]);
    const one = await octokit.rest.apps.getInstallation({ installation_id: installationId });
    assert.equal(one.data.app_id, app.appId);
    assert.equal(one.data.access_tokens_url, `${gh.apiUrl}/app/installations/${installationId}/access_tokens`);
    assert.deepEqual({ ...one.data.permissions }.checks, 'write');

    const found = await octokit.rest.apps.getRepoInstallation({ owner: 'ACME', repo: 'widget' });
    assert.equal(found.data.id, installationId);
    for (const [owner, name] of [['acme', 'private'], ['someone-else', 'widget'], ['acme', 'ghost']]) {
      const missing = await rejection(octokit.rest.apps.getRepoInstallation({ owner: owner!, repo: name! }));
      assert.equal(missing.status, 404, `${owner}/${name}`);
      assert.equal(missing.response?.data.message, 'Not Found');
    }
    assert.equal((await octokit.rest.apps.getOrgInstallation({ org: 'acme' })).data.id, installationId);
    assert.equal((await rejection(octokit.rest.apps.getInstallation({ installation_id: 1 }))).status, 404);
  });

  test('access tokens: 201 ghs_ token expiring in an hour, usable on the installation\'s repositories only', async () => {
    const before = gh.issuedTokens().length;
    const created = await withJwt(jwt(app)).rest.apps.createInstallationAccessToken({ installation_id: installationId });
    assert.equal(created.status, 201);
    assert.match(created.data.token, /^ghs_[A-Za-z0-9]{36}$/);
    const expires = Date.parse(created.data.expires_at);
    assert.ok(Math.abs(expires - (Date.now() + 3600_000)) < 5000, created.data.expires_at);
    assert.match(created.data.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(created.data.repository_selection, 'selected');
    assert.equal('repositories' in created.data, false, 'documented: no repositories key unless asked for');
    assert.deepEqual(gh.issuedTokens().slice(before).map((t) => [t.installationId, t.token]), [[installationId, created.data.token]]);

    const octokit = installationOctokit(app, installationId);
    const { data } = await octokit.rest.repos.getContent({ owner: 'acme', repo: 'widget', path: 'Dockerfile', mediaType: { format: 'raw' } });
    assert.equal(data as unknown, 'FROM busybox\n');
    await octokit.rest.repos.get({ owner: 'acme', repo: 'gadget' });
    for (const [owner, name] of [['acme', 'private'], ['someone-else', 'widget']]) {
      const hidden = await rejection(withToken(created.data.token).rest.repos.get({ owner: owner!, repo: name! }));
      assert.equal(hidden.status, 404, `${owner}/${name}`);
      assert.equal(hidden.response?.data.message, 'Not Found');
    }
  });

  test('access tokens: restricted to repositories and permissions asked for; more than the installation has is 422', async () => {
    const octokit = withJwt(jwt(app));
    const created = await octokit.rest.apps.createInstallationAccessToken({
      installation_id: installationId,
      repositories: ['gadget'],
      permissions: { contents: 'read' },
    });
    assert.deepEqual(created.data.permissions, { contents: 'read' });
    assert.deepEqual(created.data.repositories?.map((r) => r.full_name), ['acme/gadget']);
    assert.equal((await rejection(withToken(created.data.token).rest.repos.get({ owner: 'acme', repo: 'widget' }))).status, 404);
    const denied = await rejection(withToken(created.data.token).rest.repos.createCommitStatus({ owner: 'acme', repo: 'gadget', sha: repo.head(), state: 'success' }));
    assert.equal(denied.status, 403);

    const notInstalled = await rejection(octokit.rest.apps.createInstallationAccessToken({ installation_id: installationId, repositories: ['private'] }));
    assert.equal(notInstalled.status, 422);
    assert.equal(notInstalled.response?.data.message, 'There is at least one repository that does not exist or is not accessible to the parent installation.');
    const tooMuch = await rejection(octokit.rest.apps.createInstallationAccessToken({ installation_id: installationId, permissions: { administration: 'write' } }));
    assert.equal(tooMuch.status, 422);
    assert.equal(tooMuch.response?.data.message, 'The permissions requested are not granted to this installation.');
  });

  test('expiry: tokenTtlSeconds sets expires_at; expireInstallationTokens makes every token so far 401 Bad credentials', async () => {
    const shortLived = gh.createApp({ slug: 'short-lived', tokenTtlSeconds: 120 });
    const { installationId: id } = gh.installApp(shortLived.appId, { account: 'acme', repositories: 'all' });
    const first = await withJwt(jwt(shortLived)).rest.apps.createInstallationAccessToken({ installation_id: id });
    assert.ok(Math.abs(Date.parse(first.data.expires_at) - (Date.now() + 120_000)) < 5000);
    assert.equal(first.data.repository_selection, 'all');
    await withToken(first.data.token).rest.repos.get({ owner: 'acme', repo: 'private' });

    gh.expireInstallationTokens();
    const refused = await rejection(withToken(first.data.token).rest.repos.get({ owner: 'acme', repo: 'private' }));
    assert.equal(refused.status, 401);
    assert.equal(refused.response?.data.message, 'Bad credentials');
    const issued = gh.issuedTokens().find((t) => t.token === first.data.token)!;
    assert.ok(Date.parse(issued.expiresAt) <= Date.now());

    const second = await withJwt(jwt(shortLived)).rest.apps.createInstallationAccessToken({ installation_id: id });
    assert.notEqual(second.data.token, first.data.token);
    await withToken(second.data.token).rest.repos.get({ owner: 'acme', repo: 'private' });
  });

  test('JWT: refused with GitHub\'s messages', async () => {
    const other = gh.createApp({ slug: 'other-app' });
    const nowS = Math.floor(Date.now() / 1000);
    const cases: [string, string, number, string][] = [
      ['not a JWT', 'not-a-jwt', 401, 'A JSON web token could not be decoded'],
      ['signed with another App\'s key', jwt(app, {}, other.privateKey), 401, 'A JSON web token could not be decoded'],
      ['expired', jwt(app, { iat: nowS - 700, exp: nowS - 10 }), 401,
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"],
      ['exp missing', jwt(app, { exp: undefined }), 401,
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"],
      ['exp over 10 minutes away', jwt(app, { iat: nowS, exp: nowS + 660 }), 401, "'Expiration time' claim ('exp') is too far in the future"],
      ['iat in the future', jwt(app, { iat: nowS + 120, exp: nowS + 300 }), 401,
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"],
      ['unknown App ID', jwt(app, { iss: 999 }), 404, 'Integration not found'],
      ['unknown client ID', jwt(app, { iss: 'Iv23linope' }), 401, "'Issuer' claim ('iss') must be an Integer"],
      ['the personal token', TOKEN, 401, 'A JSON web token could not be decoded'],
    ];
    for (const [what, token, status, message] of cases) {
      const err = await rejection(withJwt(token).rest.apps.getAuthenticated());
      assert.equal(err.status, status, what);
      assert.equal(err.response?.data.message, message, what);
    }
    // iss as a string of digits, iat 60 s ahead (GitHub's allowed skew) and exp 10 minutes away are fine.
    await withJwt(jwt(app, { iss: String(app.appId), iat: nowS + 50, exp: nowS + 600 })).rest.apps.getAuthenticated();

    // An installation token is no JWT either, not even on GET /repos/{o}/{r}/installation.
    const { token } = (await withJwt(jwt(app)).rest.apps.createInstallationAccessToken({ installation_id: installationId })).data;
    const onApp = await rejection(withToken(token).rest.apps.getRepoInstallation({ owner: 'acme', repo: 'widget' }));
    assert.deepEqual([onApp.status, onApp.response?.data.message], [401, 'A JSON web token could not be decoded']);
    // A JWT is no credential on repository endpoints.
    const onRepo = await rejection(withJwt(jwt(app)).rest.repos.get({ owner: 'acme', repo: 'widget' }));
    assert.deepEqual([onRepo.status, onRepo.response?.data.message], [401, 'Bad credentials']);
  });

  test('permissions: an installation without them is refused with 403 Resource not accessible by integration', async () => {
    const { installationId: narrow } = gh.installApp(app.appId, {
      account: 'someone-else',
      repositories: 'all',
      permissions: { metadata: 'read', statuses: 'read' },
    });
    const octokit = installationOctokit(app, narrow);
    await octokit.rest.repos.get({ owner: 'someone-else', repo: 'widget' });
    await octokit.rest.repos.listCommitStatusesForRef({ owner: 'someone-else', repo: 'widget', ref: repo.head() });
    const write = await rejection(octokit.rest.repos.createCommitStatus({ owner: 'someone-else', repo: 'widget', sha: repo.head(), state: 'success' }));
    assert.equal(write.status, 403);
    assert.equal(write.response?.data.message, 'Resource not accessible by integration');
    assert.equal(write.response?.headers['x-accepted-github-permissions'], 'statuses=write');
    const contents = await rejection(octokit.rest.repos.getContent({ owner: 'someone-else', repo: 'widget', path: 'Dockerfile' }));
    assert.equal(contents.status, 403);
    assert.equal(contents.response?.headers['x-accepted-github-permissions'], 'contents=read');
    assert.equal(gh.statusesFor(repo.head()).length, 0);
  });

  test('GET /user with an installation token is 403, as GitHub answers; the personal token is unchanged', async () => {
    const err = await rejection(installationOctokit(app, installationId).rest.users.getAuthenticated());
    assert.equal(err.status, 403);
    assert.equal(err.response?.data.message, 'Resource not accessible by integration');
    assert.equal((await withToken(TOKEN).rest.users.getAuthenticated()).data.login, 'dockhook-bot');
    await withToken(TOKEN).rest.repos.get({ owner: 'acme', repo: 'private' });
  });

  test('GET /installation/repositories lists what the token reaches', async () => {
    const { data } = await installationOctokit(app, installationId).rest.apps.listReposAccessibleToInstallation();
    assert.equal(data.total_count, 2);
    assert.deepEqual(data.repositories.map((r) => r.full_name).sort(), ['acme/gadget', 'acme/widget']);
  });

  test('request log: the App routes have names', async () => {
    gh.requests.length = 0;
    const octokit = appOctokit(app);
    await octokit.rest.apps.getAuthenticated();
    await octokit.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'widget' });
    await installationOctokit(app, installationId).rest.repos.get({ owner: 'acme', repo: 'widget' });
    assert.deepEqual(gh.requests.map((r) => r.route), [
      'GET /app',
      'GET /repos/{owner}/{repo}/installation',
      'POST /app/installations/{installation_id}/access_tokens',
      'GET /repos/{owner}/{repo}',
    ]);
    assert.equal(gh.requestCount({ route: 'POST /app/installations/{installation_id}/access_tokens', params: { installation_id: String(installationId) } }), 1);
  });
});
