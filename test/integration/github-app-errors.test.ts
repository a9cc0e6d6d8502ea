import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { checkGitHub } from '../../src/cli/doctor-checks.js';
import { loadConfig } from '../../src/config.js';
import { createGitHubAccess } from '../../src/github/access.js';
import { createLogger } from '../../src/log.js';
import type { FakeApp } from '../support/fake-github-app.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';

const log = createLogger('silent');
const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

describe('GitHub App mode: bad keys, a wrong App ID and a missing installation, each with its clear error', () => {
  let gh: FakeGitHub;
  let app: FakeApp;
  let repo: GitRepo;
  let installed: number;

  before(async () => {
    gh = await startFakeGitHub({ token: 'ghp_unused_in_app_mode' });
    repo = await createGitRepo({ 'README.md': 'x\n' });
    gh.addRepo('installed-org', 'widget', repo);
    gh.addRepo('elsewhere', 'gadget', repo);
    app = gh.createApp({ slug: 'dockhook-errors' });
    installed = gh.installApp(app.appId, { account: 'installed-org', repositories: 'all', permissions: { contents: 'read', metadata: 'read', statuses: 'write' } }).installationId;
  });
  after(async () => {
    await gh?.close();
    await repo?.cleanup();
  });

  const access = (appId: number, privateKey: string) => createGitHubAccess({ auth: { mode: 'app', appId, privateKey }, baseUrl: gh.apiUrl, log });
  const config = (appId: number, key: string) => loadConfig({ WEBHOOK_SECRET: 'x'.repeat(20), REGISTRY: 'localhost:5000', GITHUB_API_URL: gh.apiUrl, APP_ID: String(appId), PRIVATE_KEY: key });

  it('reads an installed repository with an installation token', async () => {
    const octokit = await access(app.appId, app.privateKey).forRepo('installed-org', 'widget');
    const { data } = await octokit.rest.repos.get({ owner: 'installed-org', repo: 'widget' });
    assert.equal(data.full_name, 'installed-org/widget');
  });

  it('keeps a token until 5 minutes before its expires_at, then asks for a new one', async () => {
    const tokens = () => gh.issuedTokens().filter((t) => t.installationId === installed).length;
    const octokit = await access(app.appId, app.privateKey).forRepo('installed-org', 'widget');
    const first = tokens();
    await octokit.rest.repos.get({ owner: 'installed-org', repo: 'widget' });
    await octokit.rest.repos.get({ owner: 'installed-org', repo: 'widget' });
    assert.equal(tokens(), first + 1, 'one token for both requests');
    // An App whose tokens live 4 minutes: each is already inside the renewal margin.
    const shortLived = gh.createApp({ slug: 'short-lived', tokenTtlSeconds: 240 });
    const id = gh.installApp(shortLived.appId, { account: 'installed-org', repositories: 'all', permissions: { contents: 'read', metadata: 'read' } }).installationId;
    const client = await access(shortLived.appId, shortLived.privateKey).forRepo('installed-org', 'widget');
    await client.rest.repos.get({ owner: 'installed-org', repo: 'widget' });
    await client.rest.repos.get({ owner: 'installed-org', repo: 'widget' });
    assert.equal(gh.issuedTokens().filter((t) => t.installationId === id).length, 2);
  });

  it('a repository the App is not installed on: says so and how to install it', async () => {
    await assert.rejects(access(app.appId, app.privateKey).forRepo('elsewhere', 'gadget'), (err: Error & { hint?: string; status?: number }) => {
      assert.equal(err.message, `the GitHub App ${app.appId} is not installed on elsewhere/gadget`);
      assert.match(err.hint ?? '', /install the App on elsewhere/);
      assert.equal(err.status, 404);
      return true;
    });
  });

  it("a key that is not the App's, and an App ID GitHub does not know: names APP_ID and PRIVATE_KEY", async () => {
    for (const [id, key] of [[app.appId, otherKey], [app.appId + 999, app.privateKey]] as const) {
      await assert.rejects(access(id, key).forRepo('installed-org', 'widget'), (err: Error & { hint?: string }) => {
        assert.match(err.message, /GitHub refused the App's credentials|GitHub knows no App/);
        assert.match(err.hint ?? '', /APP_ID/);
        assert.ok(!`${err.message} ${err.hint}`.includes('PRIVATE KEY'), 'the key is not printed');
        return true;
      });
    }
  });

  it('doctor: the App is accepted and names the permissions an installation lacks', async () => {
    const results = await checkGitHub(config(app.appId, app.privateKey), [], false);
    assert.equal(results[0]?.level, 'ok', JSON.stringify(results));
    assert.match(results[0]!.message, /dockhook-errors/);
    const inst = results.find((r) => r.message.includes('installed-org'));
    assert.equal(inst?.level, 'FAIL', JSON.stringify(results));
    assert.match(inst!.message, /lacks checks: write/);
  });

  it('doctor: a wrong key and a wrong App ID FAIL with what to fix', async () => {
    const wrongKey = await checkGitHub(config(app.appId, otherKey), [], false);
    assert.equal(wrongKey[0]?.level, 'FAIL');
    assert.match(wrongKey[0]!.fix ?? '', /PRIVATE_KEY/);
    const wrongId = await checkGitHub(config(app.appId + 999, app.privateKey), [], false);
    assert.equal(wrongId[0]?.level, 'FAIL');
    assert.match(`${wrongId[0]!.message} ${wrongId[0]!.fix}`, /APP_ID/);
  });
});
