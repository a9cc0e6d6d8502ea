import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createRegistryClient } from '../../src/registry/client.js';
import { PgStore } from '../../src/store/postgres/pg-store.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { mergedPullRequestPayload, postDelivery } from '../support/deliveries.js';
import { spawnDockhook, type DockhookProcess } from '../support/dockhook-process.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { dockhookEnv, SECRET, TOKEN } from '../support/harness.js';
import { sharedPostgres } from '../support/postgres.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { ensureSecondEngine } from '../support/second-engine.js';
import { readEvents } from '../support/sse.js';
import { until } from '../support/wait.js';

const OWNER = 'scale-org';
const LEASE_SECONDS = 5;
const silent = pino({ level: 'silent' });
const run = promisify(execFile);

/** Two receivers and two workers, each worker on its own Docker engine, sharing one PostgreSQL database. */
describe('past one machine: receivers and workers on PostgreSQL, two engines (real processes)', () => {
  let github: FakeGitHub;
  let registry: TestRegistry;
  let databaseUrl: string;
  let peek: PgStore;
  let dataDir: string;
  const repos: GitRepo[] = [];
  const procs: DockhookProcess[] = [];
  let receivers: DockhookProcess[];
  let workers: DockhookProcess[];
  let workerEnvs: Record<string, string>[];

  before(async () => {
    const engine2 = await ensureSecondEngine();
    await ensureBusyboxImage();
    github = await startFakeGitHub({ token: TOKEN });
    registry = await startRegistry();
    databaseUrl = await (await sharedPostgres()).createDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'dockhook-scale-'));
    const base = (extra: Record<string, string>) =>
      dockhookEnv(github, registry, dataDir, { DATABASE_URL: databaseUrl, LEASE_SECONDS: String(LEASE_SECONDS), LOG_LEVEL: 'info', ...extra });
    // Receivers first: they migrate the database (under the advisory lock, so starting all four at once is fine too).
    receivers = await Promise.all([1, 2].map((n) => spawnDockhook(base({ ROLE: 'receiver', WORKER_NAME: `receiver-${n}` }))));
    workerEnvs = [
      base({ ROLE: 'worker', WORKER_NAME: 'worker-1', BUILD_CONCURRENCY: '2' }),
      base({ ROLE: 'worker', WORKER_NAME: 'worker-2', BUILD_CONCURRENCY: '2', DOCKER_HOST: engine2.dockerHost }),
    ];
    workers = await Promise.all(workerEnvs.map((env) => spawnDockhook(env)));
    procs.push(...receivers, ...workers);
    peek = await PgStore.open(databaseUrl, silent);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await peek?.close();
    await github?.close();
    await registry?.close();
    await Promise.all(repos.map((r) => r.cleanup()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function newRepo(name: string, dockerfile: string): Promise<GitRepo> {
    const repo = await createGitRepo({
      'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }),
      Dockerfile: dockerfile,
      'v.txt': `${name} 0 ${randomUUID()}\n`,
    });
    repos.push(repo);
    github.addRepo(OWNER, name, repo);
    return repo;
  }

  const workerOf = (w: DockhookProcess, id: number) => w.lines.some((l) => l.msg === 'build started' && l.build === id);

  it('40 merges of 4 repositories through both receivers: each built once, one at a time per repository, in merge order, on both engines', async () => {
    const names = ['alpha', 'bravo', 'charlie', 'delta'];
    const merges: { name: string; sha: string; version: string; mergedAt: string }[] = [];
    const t0 = Date.parse('2026-12-01T00:00:00Z');
    for (const [r, name] of names.entries()) {
      const repo = await newRepo(name, 'FROM busybox:latest\nCOPY v.txt /v.txt\n');
      for (let i = 1; i <= 10; i++) {
        const version = `1.0.${i}`;
        const sha = await repo.commit({ 'dockerInfo.json': JSON.stringify({ service_name: name, version }), 'v.txt': `${name} ${i}\n` });
        merges.push({ name, sha, version, mergedAt: new Date(t0 + i * 60_000 + r * 1000).toISOString() });
      }
    }
    // Delivered in merge order, alternately to the two receivers.
    merges.sort((a, b) => a.mergedAt.localeCompare(b.mergedAt));
    const ids: number[] = [];
    for (const [i, m] of merges.entries()) {
      const payload = mergedPullRequestPayload({ owner: OWNER, repo: m.name, sha: m.sha, number: i + 1, mergedAt: m.mergedAt });
      const answer = await postDelivery(`${receivers[i % 2]!.url}/webhook`, SECRET, payload);
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      ids.push(answer.body.build as number);
    }
    const builds = await until(
      'all 40 builds to finish',
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await peek.get(id))!));
        return all.every((b) => b.state === 'succeeded' || b.state === 'failed') ? all : undefined;
      },
      300_000,
      250,
    );
    for (const b of builds) assert.equal(b.state, 'succeeded', `${b.repo}@${b.sha.slice(0, 7)}: ${b.failure}`);
    assert.equal((await peek.list({ limit: 100 })).length, 40, 'no build was added or duplicated');
    for (const b of builds) assert.equal(b.attempts, 1, `build ${b.id} ran once`);

    for (const name of names) {
      const mine = builds.filter((b) => b.repo === name);
      const byStart = [...mine].sort((a, b) => a.startedAt! - b.startedAt!);
      assert.deepEqual(byStart.map((b) => b.mergedAt), [...mine].map((b) => b.mergedAt).sort(), `${name} built in merge order`);
      for (let i = 1; i < byStart.length; i++) {
        assert.ok(byStart[i]!.startedAt! >= byStart[i - 1]!.finishedAt!, `${name}: build ${byStart[i]!.id} started before ${byStart[i - 1]!.id} ended`);
      }
      const tags = await createRegistryClient({ url: registry.url }).listTags(name);
      for (const m of merges.filter((x) => x.name === name)) assert.ok(tags.includes(m.version), `${name}:${m.version} pushed (${tags.join(',')})`);
    }
    const ran = ids.map((id) => workers.filter((w) => workerOf(w, id)).length);
    assert.ok(ran.every((n) => n === 1), 'each build started on exactly one worker');
    assert.ok(ids.some((id) => workerOf(workers[0]!, id)) && ids.some((id) => workerOf(workers[1]!, id)), 'both workers (both engines) built');
    // GitHub writes are spaced out by the throttling plugin: the last statuses land a little after the builds end.
    await until('every success status', () => merges.every((m) => github.statusesFor(m.sha).some((s) => s.state === 'success')), 120_000, 250);
    for (const m of merges) assert.equal(github.statusesFor(m.sha).filter((s) => s.state === 'success').length, 1, `${m.name} ${m.version}: one success status`);
  });

  it("a build's log is followed live through the receiver that did not queue it", async () => {
    const repo = await newRepo('echo', 'FROM busybox:latest\nCOPY v.txt /v.txt\nRUN for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done\n');
    const queued = await postDelivery(`${receivers[0]!.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'echo', sha: repo.head(), number: 100 }));
    assert.equal(queued.status, 202);
    const id = queued.body.build as number;
    await until('the build to start', async () => ((await peek.get(id))?.state === 'running' ? true : undefined), 60_000);
    const res = await fetch(`${receivers[1]!.url}/api/builds/${id}/log`, { headers: { accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    const events = await readEvents(res);
    const end = events.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(JSON.parse(end.data).state, 'succeeded');
    const streamed = events.filter((e) => e.event === 'message');
    assert.ok(streamed.some((e) => e.data.includes('tick 6')), 'live lines arrived');
    const stored = (await (await fetch(`${receivers[0]!.url}/api/builds/${id}/log`)).text()).trimEnd().split('\n');
    assert.equal(streamed.length, stored.length, 'every line once, none missing');
    assert.deepEqual(streamed.map((e) => Number(e.id)), stored.map((_, i) => i + 1), 'numbered 1..n in order');
  });

  it('a one-line change built on the engine that never built the image reuses the unchanged layers from the registry', async () => {
    // Unique per run: the second engine keeps its data between runs, and must never have built this step.
    const slow = `RUN sleep 3 && echo ${randomUUID()} > /base`;
    // The base from the registry, as from Docker Hub: both engines then hold the same layers (each engine's own busybox import differs).
    const baseRef = `${registry.host}/scale-base/busybox:1`;
    await run('docker', ['tag', 'busybox:latest', baseRef]);
    await run('docker', ['push', '-q', baseRef]);
    const repo = await newRepo('cachey', `FROM ${baseRef}\n${slow}\nCOPY v.txt /v.txt\n`);
    const waitDone = (id: number) =>
      until(`build ${id} to finish`, async () => {
        const b = await peek.get(id);
        return b && (b.state === 'succeeded' || b.state === 'failed') ? b : undefined;
      }, 120_000);
    const first = await postDelivery(`${receivers[0]!.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'cachey', sha: repo.head(), number: 300 }));
    const firstId = first.body.build as number;
    assert.equal((await waitDone(firstId)).state, 'succeeded');
    const builder = workers.findIndex((w) => workerOf(w, firstId));
    // Only the other worker is left to take the next merge: its engine has never seen this Dockerfile.
    workers[builder]!.kill('SIGTERM');
    await workers[builder]!.exited;
    try {
      const sha = await repo.commit({ 'dockerInfo.json': JSON.stringify({ service_name: 'cachey', version: '1.0.1' }), 'v.txt': 'one line changed\n' });
      const second = await postDelivery(`${receivers[1]!.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'cachey', sha, number: 301 }));
      const secondId = second.body.build as number;
      assert.equal((await waitDone(secondId)).state, 'succeeded');
      assert.ok(workerOf(workers[1 - builder]!, secondId), 'the other engine built it');
      // The last lines (after the final state) reach the store once the worker closes the log, after the GitHub status.
      const log = await until('the whole log', async () => {
        const text = await (await fetch(`${receivers[0]!.url}/api/builds/${secondId}/log`)).text();
        return /succeeded: /.test(text) ? text : undefined;
      }, 30_000);
      assert.match(log, /cached: .*RUN sleep 3/, `the slow step came from the registry cache:\n${log}`);
      assert.doesNotMatch(log, /cached: .*COPY v\.txt/, 'the changed file was not');
    } finally {
      const again = await spawnDockhook(workerEnvs[builder]!);
      procs.push(again);
      workers[builder] = again;
    }
  });

  it('SIGKILL a worker mid-build: the other takes the build over once the lease runs out, runs it from the start, pushes each tag once', async () => {
    const repo = await newRepo('victim', `FROM busybox:latest\nCOPY v.txt /v.txt\nRUN sleep 6\n`);
    const queued = await postDelivery(`${receivers[1]!.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'victim', sha: repo.head(), number: 200 }));
    const id = queued.body.build as number;
    const victim = await until('a worker to start the build', () => workers.find((w) => workerOf(w, id)), 60_000);
    const survivor = workers.find((w) => w !== victim)!;
    await until('the build step to run', async () => ((await peek.get(id))?.state === 'running' ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500));
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    await until('the other worker to take it over', () => survivor.lines.some((l) => l.msg === 'build started' && l.build === id && l.attempt === 2), (LEASE_SECONDS + 5) * 1000, 100);
    assert.ok(Date.now() - killedAt <= (LEASE_SECONDS + 5) * 1000, 'taken over within LEASE_SECONDS + 5 s');
    const done = await until('the build to finish', async () => {
      const b = await peek.get(id);
      return b && (b.state === 'succeeded' || b.state === 'failed') ? b : undefined;
    }, 120_000);
    assert.equal(done.state, 'succeeded', done.failure);
    assert.equal(done.attempts, 2);
    const tags = done.pushed.map((p) => p.tag).sort();
    assert.deepEqual(tags, [...new Set(tags)], `each tag pushed once: ${tags.join(',')}`);
    assert.ok(tags.includes('1.0.0') && tags.includes('latest'));
    await until('the success status', () => github.statusesFor(repo.head()).some((s) => s.state === 'success'), 60_000);
    assert.equal(github.statusesFor(repo.head()).filter((s) => s.state === 'success').length, 1);
  });
});
