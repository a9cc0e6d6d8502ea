import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { examplePayload } from '../support/deliveries.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { GitRepo } from '../support/git-repo.js';
import { until } from '../support/wait.js';

const OWNER = 'push-org';
const NAME = 'config';

/** A `push` delivery of `sha` to `branch`, GitHub's own example re-pointed at the repository. */
function pushPayload(o: { sha: string; branch?: string; deleted?: boolean; forced?: boolean; pushedAt?: number }) {
  const p = examplePayload('push');
  const branch = o.branch ?? 'main';
  p.ref = `refs/heads/${branch}`;
  p.before = '0'.repeat(40);
  p.after = o.deleted ? '0'.repeat(40) : o.sha;
  p.deleted = o.deleted ?? false;
  p.forced = o.forced ?? false;
  Object.assign(p.repository, { name: NAME, full_name: `${OWNER}/${NAME}`, html_url: `https://github.com/${OWNER}/${NAME}`, default_branch: 'main', pushed_at: o.pushedAt ?? Math.floor(Date.now() / 1000) });
  Object.assign(p.repository.owner, { name: OWNER, login: OWNER });
  return p;
}

describe('TRIGGER_PUSH: pushes to build branches are built (real engine, real registry)', () => {
  let h: Harness;
  let repo: GitRepo;

  before(async () => {
    h = await startHarness({ env: { TRIGGER_PUSH: 'true', PR_COMMENT: 'true' } });
    repo = await h.createRepo(OWNER, NAME, {
      'dockerInfo.json': JSON.stringify({ service_name: 'pushed-app', version: '1.0' }),
      Dockerfile: 'FROM busybox:latest\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n',
      'hello.txt': 'pushed v1\n',
    });
  });
  after(async () => {
    await h?.close();
  });

  it('builds the pushed commit, and the merge of the same commit makes no second build', async () => {
    const sha = repo.head();
    const answer = await h.deliver(pushPayload({ sha }), { event: 'push' });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const build = await h.waitForBuild(answer.body.build as number);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal(build.trigger, 'push');
    assert.equal(build.sha, sha);
    assert.ok(build.pushed.some((p) => p.tag === 'latest'), 'a push to the default branch moves latest');
    assert.equal(h.github.statusesFor(sha).at(-1)?.state, 'success');

    const merge = await h.merge(OWNER, NAME, sha, { number: 7 });
    assert.equal(merge.status, 200);
    assert.deepEqual(merge.body, { duplicate: build.id });
  });

  it('a merge first, then its push: still one build', async () => {
    await repo.commit({ 'hello.txt': 'pushed v2\n', 'dockerInfo.json': JSON.stringify({ service_name: 'pushed-app', version: '1.1' }) }, 'v2');
    const sha = repo.head();
    const merge = await h.merge(OWNER, NAME, sha, { number: 8 });
    assert.equal(merge.status, 202);
    const push = await h.deliver(pushPayload({ sha }), { event: 'push' });
    assert.equal(push.status, 200);
    assert.deepEqual(push.body, { duplicate: merge.body.build });
    const build = await h.waitForBuild(merge.body.build as number);
    assert.equal(build.state, 'succeeded');
    // PR_COMMENT in token mode: the comment is the token user's, with the pull lines.
    const comments = await until('the PR comment', async () => (h.github.commentsOn(OWNER, NAME, 8).length ? h.github.commentsOn(OWNER, NAME, 8) : undefined), 30_000);
    assert.equal(comments.length, 1);
    assert.equal(comments[0]!.user.login, 'dockhook-bot');
    for (const p of build.pushed) assert.ok(comments[0]!.body.includes(`docker pull ${p.ref}`), comments[0]!.body);
  });

  it('says why a deleted branch, a tag or another branch is not built', async () => {
    const deleted = await h.deliver(pushPayload({ sha: repo.head(), deleted: true }), { event: 'push' });
    assert.equal(deleted.status, 200);
    assert.match(String(deleted.body.ignored), /deleted branch main/);
    const other = await h.deliver(pushPayload({ sha: repo.head(), branch: 'feature/x' }), { event: 'push' });
    assert.match(String(other.body.ignored), /branch feature\/x is not a build branch/);
    const tag = pushPayload({ sha: repo.head() });
    tag.ref = 'refs/tags/v1';
    assert.match(String((await h.deliver(tag, { event: 'push' })).body.ignored), /tags are not built/);
  });

  it("a forced push is built and moves latest; a forced push back to a built commit is that commit's build", async () => {
    const v2 = repo.head();
    await repo.commit({ 'hello.txt': 'pushed v3\n', 'dockerInfo.json': JSON.stringify({ service_name: 'pushed-app', version: '1.2' }) }, 'v3 (a rewritten history)');
    const forced = await h.deliver(pushPayload({ sha: repo.head(), forced: true, pushedAt: Math.floor(Date.now() / 1000) + 1 }), { event: 'push' });
    assert.equal(forced.status, 202, JSON.stringify(forced.body));
    const build = await h.waitForBuild(forced.body.build as number);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.ok(build.latestPushed, 'pushed later than every earlier build: latest moves');
    const back = await h.deliver(pushPayload({ sha: v2, forced: true, pushedAt: Math.floor(Date.now() / 1000) + 5 }), { event: 'push' });
    assert.equal(back.status, 200);
    assert.ok('duplicate' in back.body, JSON.stringify(back.body));
  });
});
