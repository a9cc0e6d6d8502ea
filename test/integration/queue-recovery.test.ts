import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { BuildRecord } from '../../src/store/store.js';
import { createRegistryClient } from '../../src/registry/client.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { mergedPullRequestPayload, postDelivery } from '../support/deliveries.js';
import { spawnDockhook } from '../support/dockhook-process.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { dockhookEnv, SECRET, TOKEN } from '../support/harness.js';
import { until } from '../support/wait.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

const OWNER = 'crash-org';
const slowRepo = (name: string, seconds: number) => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }),
  Dockerfile: `FROM busybox:latest\nCOPY marker.txt /marker.txt\nRUN sleep ${seconds}\n`,
  // Unique per run: a cached RUN layer would make the "slow" build instant.
  'marker.txt': `${name} ${randomUUID()}\n`,
});


describe('nothing acknowledged is lost across a crash or a stop (real processes)', () => {
  let github: FakeGitHub;
  let registry: TestRegistry;
  const repos: GitRepo[] = [];
  const dirs: string[] = [];
  before(async () => {
    await ensureBusyboxImage();
    github = await startFakeGitHub({ token: TOKEN });
    registry = await startRegistry();
  });
  after(async () => {
    await github?.close();
    await registry?.close();
    await Promise.all(repos.map((r) => r.cleanup()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  async function setup(names: string[], seconds: number) {
    const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-crash-'));
    dirs.push(dataDir);
    const shas: string[] = [];
    for (const name of names) {
      const repo = await createGitRepo(slowRepo(name, seconds));
      repos.push(repo);
      github.addRepo(OWNER, name, repo);
      shas.push(repo.head());
    }
    return { dataDir, shas };
  }

  it('SIGKILL while a build runs and more are queued: after a restart every acknowledged build is pushed, none twice', async () => {
    const names = ['crash-a', 'crash-b', 'crash-c'];
    const { dataDir, shas } = await setup(names, 3);
    const env = dockhookEnv(github, registry, dataDir, { BUILD_CONCURRENCY: '1', LOG_LEVEL: 'info' });
    const first = await spawnDockhook(env);
    const ids: number[] = [];
    for (const [i, name] of names.entries()) {
      const res = await postDelivery(`${first.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: name, sha: shas[i]! }));
      assert.equal(res.status, 202);
      ids.push(res.body.build);
    }
    // The first build is running once GitHub has been told "pending".
    await until('the first build to start', () => github.statusesFor(shas[0]!).some((s) => s.state === 'pending'));
    first.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');

    const peek = new SqliteStore(dataDir);
    assert.deepEqual(
      await Promise.all(ids.map(async (id) => (await peek.get(id))!.state)),
      ['running', 'queued', 'queued'],
      'the store shows the crash as it happened',
    );

    const second = await spawnDockhook(env);
    try {
      const done = await until('all builds to finish', async () => {
        const builds = await Promise.all(ids.map(async (id) => (await peek.get(id))!));
        return builds.every((b) => b.state === 'succeeded' || b.state === 'failed') ? builds : undefined;
      }, 120_000);
      for (const b of done) assert.equal(b.state, 'succeeded', b.failure);
      assert.equal(done[0]!.attempts, 2, 'the interrupted build ran again');
      assert.equal((await peek.list({ limit: 100 })).length, 3, 'no build was added or duplicated');
      assert.ok(second.lines.some((l) => l.msg === 'builds interrupted by the last stop are queued again' && l.recovered === 1));
      const client = createRegistryClient({ url: registry.url });
      for (const [i, name] of names.entries()) {
        const tags = await client.listTags(name);
        assert.ok(tags.includes('1.0.0') && tags.includes(`sha-${shas[i]!.slice(0, 7)}`), `${name}: ${tags.join(',')}`);
        await until(`${name}'s success status`, () => github.statusesFor(shas[i]!).some((s) => s.state === 'success'));
        const successes = github.statusesFor(shas[i]!).filter((s) => s.state === 'success');
        assert.equal(successes.length, 1, `${name} reported success exactly once`);
      }
    } finally {
      second.kill('SIGTERM');
      await second.exited;
      await peek.close();
    }
  });

  it('SIGTERM: refuses new deliveries with 503, lets the running build finish within the grace period, exits 0', async () => {
    const { dataDir, shas } = await setup(['graceful'], 3);
    const env = dockhookEnv(github, registry, dataDir, { SHUTDOWN_GRACE_SECONDS: '60', LOG_LEVEL: 'info' });
    const proc = await spawnDockhook(env);
    const res = await postDelivery(`${proc.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'graceful', sha: shas[0]! }));
    assert.equal(res.status, 202);
    await until('the build to start', () => github.statusesFor(shas[0]!).some((s) => s.state === 'pending'));
    proc.kill('SIGTERM');
    await until('the stop to begin', () => proc.lines.some((l) => l.msg === 'signal received'));
    const refused = await postDelivery(`${proc.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'graceful', sha: 'd'.repeat(40) })).catch(() => ({ status: 503, body: { error: 'dockhook is shutting down' } }));
    assert.equal(refused.status, 503);
    assert.match(refused.body.error, /shutting down/);
    const { code } = await proc.exited;
    assert.equal(code, 0);
    const store = new SqliteStore(dataDir);
    assert.equal((await store.get(res.body.build))!.state, 'succeeded');
    await store.close();
  });

  it('SIGTERM with a grace period too short: the unfinished build is queued and runs at the next start', async () => {
    const { dataDir, shas } = await setup(['short-grace'], 8);
    const env = dockhookEnv(github, registry, dataDir, { SHUTDOWN_GRACE_SECONDS: '1', LOG_LEVEL: 'info' });
    const proc = await spawnDockhook(env);
    const res = await postDelivery(`${proc.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'short-grace', sha: shas[0]! }));
    await until('the build to start', () => github.statusesFor(shas[0]!).some((s) => s.state === 'pending'));
    proc.kill('SIGTERM');
    assert.equal((await proc.exited).code, 0);
    const store = new SqliteStore(dataDir);
    const interrupted: BuildRecord = (await store.get(res.body.build))!;
    assert.equal(interrupted.state, 'queued');
    assert.equal(github.statusesFor(shas[0]!).filter((s) => s.state === 'failure').length, 0, 'an interrupted build is not a failure');

    const again = await spawnDockhook(env);
    try {
      const done = await until('the build to finish after restart', async () => {
        const b = (await store.get(res.body.build))!;
        return b.state === 'succeeded' || b.state === 'failed' ? b : undefined;
      });
      assert.equal(done.state, 'succeeded', done.failure);
    } finally {
      again.kill('SIGTERM');
      await again.exited;
      await store.close();
    }
  });
});
