import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient } from '../../src/registry/client.js';
import { until } from '../support/wait.js';
import { processArgs } from '../support/processes.js';
import { startEngineProxy } from '../support/engine-proxy.js';
import { startHarness, type Harness } from '../support/harness.js';

const OWNER = 'rules-org';
const repoFiles = (name: string, version: string, run = 'true') => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version }),
  Dockerfile: `FROM busybox:latest\nCOPY nonce.txt /nonce.txt\nRUN ${run}\n`,
  'nonce.txt': randomUUID(),
});


describe('queue rules (real engine, real registry, real SQLite)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { BUILD_CONCURRENCY: '2', RETRY_INITIAL_DELAY_SECONDS: '0.5', RETRY_WINDOW_SECONDS: '30' } });
  });
  after(async () => {
    await h?.close();
  });

  it('deduplicates: the same delivery redelivered, and the same commit from a second hook, make one build', async () => {
    const repo = await h.createRepo(OWNER, 'dedup', repoFiles('dedup', '1.0.0'));
    const first = await h.merge(OWNER, 'dedup', repo.head(), { id: 'delivery-dedup-1' });
    const secondHook = await h.merge(OWNER, 'dedup', repo.head(), { id: 'delivery-dedup-2' });
    assert.equal(first.status, 202);
    assert.deepEqual([secondHook.status, secondHook.body], [200, { duplicate: first.body.build }]);
    const build = await h.waitForBuild(first.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    const redelivered = await h.merge(OWNER, 'dedup', repo.head(), { id: 'delivery-dedup-1' });
    assert.deepEqual([redelivered.status, redelivered.body], [200, { duplicate: first.body.build }]);
    assert.equal((await h.service.store.list({ repo: `${OWNER}/dedup`, limit: 10 })).length, 1);
  });

  it('redelivering a delivery whose build failed starts a new attempt', async () => {
    const sha = 'e'.repeat(40);
    const first = await h.merge(OWNER, 'late-repo', sha, { id: 'delivery-redeliver' });
    const failed = await h.waitForBuild(first.body.build);
    assert.equal(failed.state, 'failed');
    // The repository shows up (say the token got access): GitHub's Redeliver keeps the delivery ID.
    const repo = await h.createRepo(OWNER, 'late-repo', repoFiles('late-repo', '1.0.0'));
    const again = await h.merge(OWNER, 'late-repo', repo.head(), { id: 'delivery-redeliver' });
    assert.equal(again.status, 202);
    assert.notEqual(again.body.build, first.body.build);
    assert.equal((await h.waitForBuild(again.body.build)).state, 'succeeded');
  });

  it('retries GitHub 502s and waits out a rate limit, then succeeds', async () => {
    const repo = await h.createRepo(OWNER, 'flaky-github', repoFiles('flaky-github', '1.0.0'));
    h.github.failNext({ method: 'GET', pathIncludes: '/contents/dockerInfo.json' }, { status: 502, body: { message: 'Server Error' } }, { status: 502, body: { message: 'Server Error' } });
    const reset = String(Math.ceil(Date.now() / 1000) + 1);
    h.github.failNext(
      { method: 'GET', pathIncludes: '/tarball/' },
      { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '5000', 'x-ratelimit-reset': reset }, body: { message: 'API rate limit exceeded for user ID 1.' } },
    );
    const res = await h.merge(OWNER, 'flaky-github', repo.head());
    const build = await h.waitForBuild(res.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    const contents = h.github.requests.filter((r) => r.path.endsWith(`/repos/${OWNER}/flaky-github/contents/dockerInfo.json`));
    assert.equal(contents.length, 3, 'two 502s, then served');
    const tarballs = h.github.requests.filter((r) => r.path.includes(`/repos/${OWNER}/flaky-github/tarball/`));
    assert.equal(tarballs.length, 2, 'rate limited once, then served after the reset');
  });

  it('latest never goes backwards: an earlier merge delivered last leaves latest on the later merge', async () => {
    const repo = await h.createRepo(OWNER, 'ordered', repoFiles('ordered', '1.0.0'));
    const earlier = repo.head();
    const later = await repo.commit(repoFiles('ordered', '1.1.0'), 'second merge');
    // GitHub delivers the later merge first (deliveries are not ordered).
    const b = await h.merge(OWNER, 'ordered', later, { mergedAt: '2026-11-22T10:05:00Z', number: 2 });
    const bBuild = await h.waitForBuild(b.body.build);
    const a = await h.merge(OWNER, 'ordered', earlier, { mergedAt: '2026-11-22T10:00:00Z', number: 1 });
    const aBuild = await h.waitForBuild(a.body.build);
    assert.equal(bBuild.state, 'succeeded', bBuild.failure);
    assert.equal(aBuild.state, 'succeeded', aBuild.failure);
    assert.ok(bBuild.latestPushed);
    assert.ok(!aBuild.latestPushed);
    assert.match(await h.service.logs.read(aBuild.id), /latest stays: a later merge of this image already pushed it/);
    const client = createRegistryClient({ url: h.registry.url });
    const latest = await client.describeTag('ordered', 'latest');
    assert.equal(latest?.revision, later);
    assert.equal((await client.describeTag('ordered', '1.0.0'))?.revision, earlier, 'the earlier merge still gets its own version');
  });

  it('version tags are immutable: a re-merge from another commit is refused and the tag is unchanged', async () => {
    const repo = await h.createRepo(OWNER, 'immutable', repoFiles('immutable', '2.0.0'));
    const first = repo.head();
    const ok = await h.waitForBuild((await h.merge(OWNER, 'immutable', first)).body.build);
    assert.equal(ok.state, 'succeeded', ok.failure);
    const client = createRegistryClient({ url: h.registry.url });
    const before = await client.getManifestDigest('immutable', '2.0.0');

    const second = await repo.commit({ 'nonce.txt': randomUUID() }, 'change without a version bump');
    const refused = await h.waitForBuild((await h.merge(OWNER, 'immutable', second)).body.build);
    assert.equal(refused.state, 'failed');
    assert.equal(refused.failure, `tag 2.0.0 already holds ${first.slice(0, 7)}; bump version in dockerInfo.json`);
    assert.equal(h.github.statusesFor(second).at(-1)?.description, refused.failure);
    assert.equal(await client.getManifestDigest('immutable', '2.0.0'), before);
    assert.equal((await client.describeTag('immutable', '2.0.0'))?.revision, first);
  });

  it('re-running a commit whose version tag already holds it is a success with nothing to do', async () => {
    const repo = await h.createRepo(OWNER, 'rerun', repoFiles('rerun', '3.0.0'));
    const first = await h.waitForBuild((await h.merge(OWNER, 'rerun', repo.head(), { id: 'rerun-1' })).body.build);
    assert.equal(first.state, 'succeeded');
    // Force a second build of the same commit through the store, as a crash after the push would.
    const again = await h.service.store.enqueue({ ...first, deliveryId: 'rerun-2', sha: repo.head() });
    assert.equal(again.outcome, 'duplicate', 'the store refuses a second live build of a built commit');
  });

  it('20 merges at once: all acknowledged at once, never more than BUILD_CONCURRENCY running, all pushed', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    const shas: string[] = [];
    for (const name of names) shas.push((await h.createRepo(OWNER, name, repoFiles(name, '1.0.0', 'sleep 1'))).head());
    let maxRunning = 0;
    const sampler = setInterval(() => {
      void h.service.store.countByState().then((counts) => (maxRunning = Math.max(maxRunning, counts.running, h.service.worker!.activeCount)));
    }, 20);
    const started = Date.now();
    const answers = await Promise.all(names.map((name, i) => h.merge(OWNER, name, shas[i]!)));
    const ackMs = Date.now() - started;
    assert.deepEqual(answers.map((a) => a.status), Array(20).fill(202));
    const builds = await Promise.all(answers.map((a) => h.waitForBuild(a.body.build, 240_000)));
    clearInterval(sampler);
    for (const b of builds) assert.equal(b.state, 'succeeded', b.failure);
    assert.ok(maxRunning <= 2, `at most 2 running, saw ${maxRunning}`);
    assert.equal(maxRunning, 2, 'the two slots were used');
    const client = createRegistryClient({ url: h.registry.url });
    for (const name of names) assert.ok((await client.listTags(name)).includes('1.0.0'));
    console.log(`# 20 deliveries acknowledged in ${ackMs} ms`);
  });
});

describe('registry outages and build timeouts', () => {
  it('a registry down for a moment: the push is retried and the build succeeds', async () => {
    const h = await startHarness({ env: { RETRY_INITIAL_DELAY_SECONDS: '0.5', RETRY_WINDOW_SECONDS: '60' } });
    try {
      // The RUN step gives a window: the registry goes away after the version-tag check, before the push.
      const repo = await h.createRepo(OWNER, 'outage', repoFiles('outage', '1.0.0', 'sleep 2'));
      const res = await h.merge(OWNER, 'outage', repo.head());
      for (let i = 0; i < 200 && !/ builder$/m.test(await h.service.logs.read(res.body.build)); i++) await new Promise((r) => setTimeout(r, 25));
      await h.registry.stop();
      await until('a retry to be scheduled', () => h.github.statusesFor(repo.head()).some((s) => /retrying/.test(s.description ?? '')));
      await h.registry.start();
      const build = await h.waitForBuild(res.body.build);
      assert.equal(build.state, 'succeeded', build.failure);
      assert.ok(build.attempts >= 2);
      assert.match(await h.service.logs.read(build.id), /attempt 1 failed: registry .*unreachable.*retrying in/);
      assert.match(await h.service.logs.read(build.id), /attempt 1 failed: registry unreachable while pushing /, 'it was the push that failed and was retried');
      assert.equal(h.github.statusesFor(repo.head()).at(-1)?.state, 'success');
    } finally {
      await h.close();
    }
  });

  it('a registry that stays down: the build fails with the reason once the retry window is over', async () => {
    const h = await startHarness({ env: { RETRY_INITIAL_DELAY_SECONDS: '0.5', RETRY_WINDOW_SECONDS: '3' } });
    try {
      const repo = await h.createRepo(OWNER, 'gone', repoFiles('gone', '1.0.0'));
      await h.registry.stop();
      const build = await h.waitForBuild((await h.merge(OWNER, 'gone', repo.head())).body.build);
      assert.equal(build.state, 'failed');
      assert.match(build.failure ?? '', /registry .*unreachable.*gave up after \d+ attempts/);
      const last = h.github.statusesFor(repo.head()).at(-1)!;
      assert.equal(last.state, 'failure');
      assert.match(last.description ?? '', /unreachable/);
    } finally {
      await h.registry.start();
      await h.close();
    }
  });

  it('a Docker engine that cannot be reached for a moment: the build is retried and succeeds', async () => {
    const engine = await startEngineProxy();
    const h = await startHarness({ dockerSocket: engine.socketPath, env: { RETRY_INITIAL_DELAY_SECONDS: '0.5', RETRY_WINDOW_SECONDS: '60' } });
    try {
      const repo = await h.createRepo(OWNER, 'engine-blip', repoFiles('engine-blip', '1.0.0'));
      await engine.down();
      const res = await h.merge(OWNER, 'engine-blip', repo.head());
      await until('a retry to be scheduled', () => h.github.statusesFor(repo.head()).some((s) => /retrying.*Docker engine unreachable/.test(s.description ?? '')));
      await engine.up();
      const build = await h.waitForBuild(res.body.build);
      assert.equal(build.state, 'succeeded', build.failure);
      assert.ok(build.attempts >= 2);
      assert.match(await h.service.logs.read(build.id), /attempt 1 failed: Docker engine unreachable while \w[\w ]* \((ENOENT|ECONNREFUSED)\): check DOCKER_HOST/);
    } finally {
      await h.close();
      await engine.close();
    }
  });

  // Both builders: the classic one runs RUN steps in containers, BuildKit in its own runc processes; both are host processes.
  for (const builder of ['buildkit', 'classic'] as const) {
    it(`BUILD_TIMEOUT_SECONDS ends a build that runs too long, and the engine stops building it (${builder})`, async () => {
      const h = await startHarness({ env: { BUILD_TIMEOUT_SECONDS: '3', BUILDER: builder } });
      try {
        const nonce = randomUUID();
        const repo = await h.createRepo(OWNER, 'slow', repoFiles('slow', '1.0.0', `sleep 120; echo ${nonce}`));
        const answer = await h.merge(OWNER, 'slow', repo.head());
        // A command list keeps `sh -c` (and so the nonce) in the process table; a lone command would be exec'd.
        const stepRunning = async () => (await processArgs()).some((args) => args.includes(nonce));
        let seen = false;
        for (let i = 0; i < 60 && !seen; i++) {
          seen = await stepRunning();
          if (!seen) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(seen, 'the RUN step was seen running before the timeout');
        const build = await h.waitForBuild(answer.body.build);
        assert.equal(build.state, 'failed');
        assert.match(build.failure ?? '', /build timed out after 3 s; raise BUILD_TIMEOUT_SECONDS/);
        assert.equal(build.attempts, 1, 'a timeout is not retried');
        const deadline = Date.now() + 30_000;
        while ((await stepRunning()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
        assert.ok(!(await stepRunning()), 'the engine still runs the aborted RUN step');
      } finally {
        await h.close();
      }
    });
  }
});
