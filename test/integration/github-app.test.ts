import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BuildRecord } from '../../src/store/store.js';
import { examplePayload } from '../support/deliveries.js';
import type { GitRepo } from '../support/git-repo.js';
import { startHarness, type Harness } from '../support/harness.js';
import { until } from '../support/wait.js';

const OWNER = 'app-org';
const PUBLIC_URL = 'https://dockhook.example.com';

/** GitHub's check_run.rerequested delivery for one of dockhook's check runs (the "Re-run" button). */
function rerequested(h: Harness, name: string, sha: string, branch = 'main') {
  const p = examplePayload('check_run', 'rerequested');
  p.action = 'rerequested';
  Object.assign(p.check_run, { name, head_sha: sha });
  Object.assign(p.check_run.check_suite, { head_sha: sha, head_branch: branch });
  Object.assign(p.repository, { name: 'widget', full_name: `${OWNER}/widget`, html_url: `https://github.com/${OWNER}/widget`, default_branch: 'main' });
  Object.assign(p.repository.owner, { login: OWNER });
  p.installation = { id: h.installations.get(OWNER)!, node_id: 'x' };
  return p;
}

describe('GitHub App mode: installation tokens, check runs, Re-run, the PR comment (real engine, real registry)', () => {
  let h: Harness;
  let repo: GitRepo;
  let pr = 40;

  before(async () => {
    h = await startHarness({ app: { slug: 'dockhook-test' }, env: { PUBLIC_URL, PR_COMMENT: 'true' } });
    repo = await h.createRepo(OWNER, 'widget', {
      'dockerInfo.json': JSON.stringify({ service_name: 'app-widget', version: '1.0' }),
      // The sleep gives the test time to expire the token while the build runs.
      Dockerfile: 'FROM busybox:latest\nCOPY hello.txt /hello.txt\nRUN sleep 2\nCMD ["cat", "/hello.txt"]\n',
      'hello.txt': 'hello from an App\n',
    });
  });
  after(async () => {
    await h?.close();
  });

  const runsOf = (sha: string, name = 'dockhook') => h.github.checkRunsFor(OWNER, 'widget', sha).filter((r) => r.name === name);
  async function finished(answer: { status: number; body: Record<string, unknown> }): Promise<BuildRecord> {
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    return h.waitForBuild(answer.body.build as number);
  }
  async function completedRun(sha: string, buildId: number) {
    return until(`check run of build ${buildId} completed`, async () => runsOf(sha).find((r) => r.external_id === String(buildId) && r.status === 'completed'), 30_000);
  }

  it('a merge is built with installation tokens, and a token that expires mid-build is replaced', async () => {
    const sha = repo.head();
    const answer = await h.merge(OWNER, 'widget', sha, { number: ++pr });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const id = answer.body.build as number;
    // Once the build is in progress (its check run says so), GitHub revokes every token issued so far.
    await until('the check run in progress', async () => runsOf(sha).find((r) => r.status === 'in_progress'), 60_000);
    const before = h.github.issuedTokens().length;
    h.github.expireInstallationTokens();
    const build = await h.waitForBuild(id);
    assert.equal(build.state, 'succeeded', build.failure);
    const run = await completedRun(sha, id);
    assert.equal(run.conclusion, 'success');
    assert.ok(h.github.issuedTokens().length > before, 'a new token was asked for after the old one was refused');
    assert.ok(h.github.issuedTokens().every((t) => t.installationId === h.installations.get(OWNER)));
    assert.deepEqual(h.github.statusesFor(sha), [], 'App mode reports check runs, not commit statuses');
    // The tokens never reach the log.
    const log = await h.logText();
    for (const t of h.github.issuedTokens()) assert.ok(!log.includes(t.token), 'an installation token is in the log');
    assert.ok(!(await h.service.logs.read(id)).includes('ghs_'));
  });

  it('the check run goes queued → in progress → completed, with tags, digests, pull lines and the build page', async () => {
    const sha = repo.head();
    const [build] = await h.service.store.list({ repo: `${OWNER}/widget`, limit: 1 });
    const run = await completedRun(sha, build!.id);
    assert.deepEqual(
      run.updates.map((u: { status?: string }) => u.status).filter((s: string | undefined, i: number, all: (string | undefined)[]) => s && s !== all[i - 1]),
      ['queued', 'in_progress', 'completed'],
    );
    assert.equal(run.details_url, `${PUBLIC_URL}/builds/${build!.id}`);
    assert.match(run.output.title ?? '', /pushed .*app-widget:1\.0/);
    const summary = run.output.summary as string;
    for (const p of build!.pushed) {
      assert.ok(summary.includes(`docker pull ${p.ref}`), `no pull line for ${p.ref}:\n${summary}`);
      assert.ok(summary.includes(p.digest), `no digest for ${p.tag}`);
    }
    assert.match(summary, /took \d+ s/);
    assert.match(summary, /layers from cache: \d+ of \d+/);
  });

  it('Re-run rebuilds the image, forced, in a new check run', async () => {
    const sha = repo.head();
    const answer = await h.deliver(rerequested(h, 'dockhook', sha), { event: 'check_run' });
    const build = await finished(answer);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal(build.force, true);
    assert.equal(build.trigger, 'rerun');
    const run = await completedRun(sha, build.id);
    assert.equal(run.conclusion, 'success');
    assert.equal(runsOf(sha).length, 2, 'the first run and the re-run');
  });

  it('the PR comment is one comment, edited in place by the re-run', async () => {
    const comments = h.github.commentsOn(OWNER, 'widget', pr);
    assert.equal(comments.length, 1, JSON.stringify(comments.map((c: { body: string }) => c.body)));
    const [comment] = comments;
    assert.equal(comment!.user.login, 'dockhook-test[bot]');
    assert.match(comment!.body, /^<!-- dockhook -->/);
    assert.match(comment!.body, /docker pull .*app-widget:1\.0/);
    assert.ok(comment!.updated_at >= comment!.created_at);
  });

  it('a failed build: conclusion failure, the reason as title, the last log lines as text', async () => {
    await repo.commit({ Dockerfile: 'FROM busybox:latest\nRUN echo "the-last-words `x`" && exit 3\n', 'dockerInfo.json': JSON.stringify({ service_name: 'app-widget', version: '1.1' }) }, 'break it');
    const sha = repo.head();
    // Someone else's comment with dockhook's marker is not dockhook's: it is left alone.
    h.github.addComment(OWNER, 'widget', pr + 1, { login: 'mallory', body: '<!-- dockhook -->\nnot from dockhook' });
    const build = await finished(await h.merge(OWNER, 'widget', sha, { number: ++pr }));
    assert.equal(build.state, 'failed');
    const run = await completedRun(sha, build.id);
    assert.equal(run.conclusion, 'failure');
    assert.match(run.output.title ?? '', /exit code 3|returned a non-zero code: 3|exit/i);
    assert.match(run.output.text ?? '', /the-last-words/);
    assert.ok((run.output.text ?? '').length <= 65535);
    const comments = await until('dockhook commented', async () => (h.github.commentsOn(OWNER, 'widget', pr).length === 2 ? h.github.commentsOn(OWNER, 'widget', pr) : undefined), 30_000);
    assert.equal(comments[0]!.body, '<!-- dockhook -->\nnot from dockhook');
    assert.equal(comments[0]!.edits.length, 0);
    const comment = comments[1]!;
    assert.equal(comment.user.login, 'dockhook-test[bot]');
    assert.match(comment.body, /failed/);
    assert.match(comment.body, new RegExp(`\\(${PUBLIC_URL.replace(/\./g, '\\.')}/builds/${build.id}\\)`));
  });

  it('a multi-image merge: one check run per image, the merge\'s own run names them, and Re-run all rebuilds every image', async () => {
    const mono = await h.createRepo(OWNER, 'mono', {
      'dockerInfo.json': JSON.stringify({ images: [{ service_name: 'app-one', version: '1.0', context: 'one' }, { service_name: 'app-two', version: '1.0', context: 'two', depends_on: ['app-one'] }] }),
      'one/Dockerfile': 'FROM busybox:latest\nCOPY one.txt /one.txt\n',
      'one/one.txt': 'one\n',
      'two/Dockerfile': 'FROM busybox:latest\nCOPY two.txt /two.txt\n',
      'two/two.txt': 'two\n',
    });
    const sha = mono.head();
    const monoRuns = (name: string) => h.github.checkRunsFor(OWNER, 'mono', sha).filter((r) => r.name === name);
    const head = await finished(await h.merge(OWNER, 'mono', sha, { number: ++pr }));
    const images = await until('both images final', async () => {
      const list = await h.service.store.listGroup(head.id);
      return list.length === 2 && list.every((b) => b.state === 'succeeded' && !h.service.worker?.isRunning(b.id)) ? list : undefined;
    }, 120_000);
    for (const name of ['dockhook/app-one', 'dockhook/app-two']) {
      const run = await until(`${name} completed`, async () => monoRuns(name).find((r) => r.status === 'completed'), 30_000);
      assert.equal(run.conclusion, 'success');
      assert.match(run.output.summary ?? '', /docker pull /);
    }
    const own = await until('the merge\'s run completed', async () => monoRuns('dockhook').find((r) => r.status === 'completed'), 30_000);
    assert.match(own.output.summary ?? '', /dockhook\/app-one.*dockhook\/app-two|dockhook\/app-two.*dockhook\/app-one/);

    const suite = examplePayload('check_suite');
    suite.action = 'rerequested';
    Object.assign(suite.check_suite, { head_sha: sha, head_branch: 'main' });
    Object.assign(suite.repository, { name: 'mono', full_name: `${OWNER}/mono`, html_url: `https://github.com/${OWNER}/mono`, default_branch: 'main' });
    Object.assign(suite.repository.owner, { login: OWNER });
    suite.installation = { id: h.installations.get(OWNER)!, node_id: 'x' };
    const again = await finished(await h.deliver(suite, { event: 'check_suite' }));
    const rebuilt = await until('both images rebuilt', async () => {
      const list = await h.service.store.listGroup(again.id);
      return list.length === 2 && list.every((b) => b.state === 'succeeded' && !h.service.worker?.isRunning(b.id)) ? list : undefined;
    }, 120_000);
    assert.ok(rebuilt.every((b) => b.force), 'forced: unchanged images are built again');
    assert.ok(rebuilt.every((b) => !images.some((i) => i.id === b.id)));
    await until('a second completed run per image', async () => ['dockhook/app-one', 'dockhook/app-two'].every((n) => monoRuns(n).filter((r) => r.status === 'completed').length === 2) || undefined, 30_000);
  });
});
