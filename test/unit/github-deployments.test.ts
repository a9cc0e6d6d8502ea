import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGitHubClient, type GitHubClient } from '../../src/github.js';
import {
  createDeployment,
  DeploymentApiError,
  setDeploymentStatus,
  toDeploymentDescription,
} from '../../src/github/deployments.js';
import { createLogger } from '../../src/log.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';

const TOKEN = 'ghp_fake_token_for_deployments';
const OWNER = 'acme';
const NAME = 'widget';

async function rejection(p: Promise<unknown>): Promise<DeploymentApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DeploymentApiError, `expected a DeploymentApiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

const codePoints = (s: string) => Array.from(s).length;

describe('GitHub deployments client, against the fake GitHub', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let octokit: GitHubClient;
  let older: string;
  let head: string;

  before(async () => {
    repo = await createGitRepo({ 'app.txt': 'v1\n' });
    older = repo.head();
    head = await repo.commit({ 'app.txt': 'v2\n' }, 'v2');
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(OWNER, NAME, repo);
    // dockhook's own client: retry and throttling plugins included.
    octokit = createGitHubClient({ token: TOKEN, baseUrl: gh.apiUrl, log: createLogger('silent') });
  });

  after(async () => {
    await gh.close();
    await repo.cleanup();
  });

  test('createDeployment: the built SHA, even behind the default branch and with a failing status; GitHub defaults kept', async () => {
    // GitHub's defaults would refuse both: auto_merge (the SHA is behind main) and the status check.
    await octokit.rest.repos.createCommitStatus({ owner: OWNER, repo: NAME, sha: older, context: 'ci', state: 'failure' });
    const created = await createDeployment(octokit, {
      owner: OWNER,
      repo: NAME,
      sha: older,
      description: 'dockhook: api 1.4.1 (rollback)',
      payload: { service: 'api', version: '1.4.1', build: 12 },
    });
    assert.equal(created.sha, older);
    assert.equal(created.environment, 'production');
    assert.equal(created.url, `${gh.apiUrl}/repos/${OWNER}/${NAME}/deployments/${created.id}`);

    const [recorded] = gh.deploymentsFor(OWNER, NAME);
    assert.equal(recorded.id, created.id);
    assert.equal(recorded.ref, older);
    assert.equal(recorded.auto_merge, false);
    assert.deepEqual(recorded.required_contexts, []);
    assert.equal(recorded.production_environment, true);
    assert.equal(recorded.description, 'dockhook: api 1.4.1 (rollback)');
    assert.deepEqual(recorded.payload, { service: 'api', version: '1.4.1', build: 12 });

    const staging = await createDeployment(octokit, { owner: OWNER, repo: NAME, sha: head, environment: 'staging' });
    assert.equal(staging.environment, 'staging');
    assert.equal(gh.deploymentsFor(OWNER, NAME)[1].production_environment, false);
  });

  test('setDeploymentStatus: in_progress then success with the build page as log_url; a long description is cut to 140 characters', async () => {
    const { id } = await createDeployment(octokit, { owner: OWNER, repo: NAME, sha: head });
    const logUrl = 'https://dockhook.example/builds/12';
    const first = await setDeploymentStatus(octokit, { owner: OWNER, repo: NAME, id, state: 'in_progress', logUrl, description: 'Deploying api' });
    // 🧑‍💻 is three code points joined (ZWJ): 150 characters' worth, so the cut falls inside a sequence.
    const long = `Deployed ${'🧑‍💻'.repeat(50)}`;
    const second = await setDeploymentStatus(octokit, {
      owner: OWNER,
      repo: NAME,
      id,
      state: 'success',
      logUrl,
      environmentUrl: 'http://host.example:8080/',
      description: long,
    });
    assert.notEqual(first, second);

    const statuses = gh.deploymentStatuses(id);
    assert.deepEqual(statuses.map((s) => [s.id, s.state, s.log_url, s.target_url]), [
      [first, 'in_progress', logUrl, logUrl],
      [second, 'success', logUrl, logUrl],
    ]);
    assert.equal(statuses[0].description, 'Deploying api');
    assert.equal(statuses[1].environment_url, 'http://host.example:8080/');
    const cut = statuses[1].description;
    assert.ok(codePoints(cut) <= 140, `${codePoints(cut)} characters`);
    assert.ok(cut.endsWith('🧑‍💻…'), cut);
    assert.ok(long.startsWith(cut.slice(0, -1)));
  });

  test('errors: a 403 or 404 names the permission to grant, for an App or a token', async () => {
    const { id } = await createDeployment(octokit, { owner: OWNER, repo: NAME, sha: head });
    gh.requests.length = 0;
    gh.failNext(
      { method: 'POST', pathIncludes: '/deployments' },
      { status: 403, body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' } },
    );
    const app = await rejection(createDeployment(octokit, { owner: OWNER, repo: NAME, sha: head, authKind: 'app' }));
    assert.equal(app.status, 403);
    assert.match(app.message, /^Could not create a deployment of [0-9a-f]{12} in acme\/widget \(GitHub: 403 Resource not accessible by integration\)/);
    assert.match(app.message, /GitHub App needs the repository permission "Deployments: Read and write"/);
    assert.doesNotMatch(app.message, /repo_deployment/);

    gh.failNext({ method: 'POST', pathIncludes: '/statuses' }, { status: 404, body: { message: 'Not Found' } });
    const token = await rejection(setDeploymentStatus(octokit, { owner: OWNER, repo: NAME, id, state: 'success', authKind: 'token' }));
    assert.equal(token.status, 404);
    assert.match(token.message, /^Could not set deployment \d+ of acme\/widget to success \(GitHub: 404 Not Found\)/);
    assert.match(token.message, /"repo" or "repo_deployment" scope/);
    assert.match(token.message, /does not exist/);

    // A real 404 from the fake: a deployment that is not there. Auth kind unknown: both are named.
    const unknown = await rejection(setDeploymentStatus(octokit, { owner: OWNER, repo: NAME, id: 987654321, state: 'failure' }));
    assert.equal(unknown.status, 404);
    assert.match(unknown.message, /with a GitHub App, .*"Deployments: Read and write".*; with a token, .*repo_deployment/);

    const missingRepo = await rejection(createDeployment(octokit, { owner: OWNER, repo: 'ghost', sha: head, authKind: 'token' }));
    assert.equal(missingRepo.status, 404);
    assert.match(missingRepo.message, /acme\/ghost/);

    const badToken = createGitHubClient({ token: 'nope', baseUrl: gh.apiUrl, log: createLogger('silent') });
    const unauthorized = await rejection(createDeployment(badToken, { owner: OWNER, repo: NAME, sha: head }));
    assert.equal(unauthorized.status, 401);
    assert.match(unauthorized.message, /Bad credentials\): GitHub does not accept the credentials/);
    assert.ok(unauthorized.cause);

    const badRef = await rejection(createDeployment(octokit, { owner: OWNER, repo: NAME, sha: 'f'.repeat(40) }));
    assert.equal(badRef.status, 422);
    assert.match(badRef.message, /No ref found for: f{40}/);
    assert.equal(gh.deploymentStatuses(id).length, 0);
    // None of these is retried: each was one request.
    assert.equal(gh.requestCount({ route: 'POST /repos/{owner}/{repo}/deployments' }), 4);
    assert.equal(gh.requestCount({ route: 'POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses' }), 2);
  });
});

describe('toDeploymentDescription', () => {
  test('short text is kept, whitespace folded to one line', () => {
    assert.equal(toDeploymentDescription('  Deployed\n api\t1.4.1  '), 'Deployed api 1.4.1');
    assert.equal(toDeploymentDescription('x'.repeat(140)), 'x'.repeat(140));
  });

  test('longer text is cut to 140 characters with an ellipsis, never inside a character or a cluster', () => {
    assert.equal(toDeploymentDescription('x'.repeat(141)), `${'x'.repeat(139)}…`);
    // Astral characters: 140 fit (280 UTF-16 units); 141 are cut to 139 and '…'.
    assert.equal(toDeploymentDescription('🐳'.repeat(140)), '🐳'.repeat(140));
    assert.equal(toDeploymentDescription('🐳'.repeat(141)), `${'🐳'.repeat(139)}…`);
    // e + combining acute: two code points per cluster; 139 leaves room for 69 clusters.
    const accents = toDeploymentDescription('e\u0301'.repeat(100));
    assert.equal(accents, `${'e\u0301'.repeat(69)}…`);
    const spaced = toDeploymentDescription(`${'a'.repeat(138)} bcd`);
    assert.equal(spaced, `${'a'.repeat(138)}…`); // no space left before the ellipsis
  });
});
