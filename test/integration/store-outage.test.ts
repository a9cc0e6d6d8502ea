import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PgStore } from '../../src/store/postgres/pg-store.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { mergedPullRequestPayload, postDelivery, signDelivery } from '../support/deliveries.js';
import { spawnDockhook, type DockhookProcess } from '../support/dockhook-process.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { dockhookEnv, SECRET, TOKEN } from '../support/harness.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { until } from '../support/wait.js';

const OWNER = 'outage-org';
const PASSWORD = 'secret-pw'; // test/support/postgres.ts's role password: it must never show

describe('PostgreSQL goes away and comes back (real processes, real PostgreSQL)', () => {
  let github: FakeGitHub;
  let registry: TestRegistry;
  let pg: TestPostgres;
  let databaseUrl: string;
  let dataDir: string;
  let receiver: DockhookProcess;
  let worker: DockhookProcess;
  const repos: GitRepo[] = [];

  before(async () => {
    await ensureBusyboxImage();
    github = await startFakeGitHub({ token: TOKEN });
    registry = await startRegistry();
    pg = await startPostgres();
    databaseUrl = await pg.createDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'dockhook-outage-'));
    const env = (extra: Record<string, string>) => dockhookEnv(github, registry, dataDir, { DATABASE_URL: databaseUrl, LEASE_SECONDS: '30', LOG_LEVEL: 'info', ...extra });
    receiver = await spawnDockhook(env({ ROLE: 'receiver' }));
    worker = await spawnDockhook(env({ ROLE: 'worker', WORKER_NAME: 'outage-worker' }));
  });

  after(async () => {
    for (const p of [receiver, worker]) p?.kill('SIGKILL');
    await Promise.all([receiver, worker].map((p) => p?.exited));
    await github?.close();
    await registry?.close();
    await pg?.destroy();
    await Promise.all(repos.map((r) => r.cleanup()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function newRepo(name: string, seconds: number): Promise<GitRepo> {
    const repo = await createGitRepo({
      'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }),
      Dockerfile: `FROM busybox:latest\nCOPY v.txt /v.txt\nRUN echo started; sleep ${seconds}; echo slept\n`,
      'v.txt': `${name} ${randomUUID()}\n`,
    });
    repos.push(repo);
    github.addRepo(OWNER, name, repo);
    return repo;
  }

  it('a worker and a receiver only serve health routes and the API respectively', async () => {
    assert.equal((await fetch(`${worker.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${worker.url}/api/builds`)).status, 404, 'a worker serves no API');
    assert.equal((await fetch(`${worker.url}/webhook`, { method: 'POST' })).status, 404, 'nor webhooks');
    const ready = await (await fetch(`${receiver.url}/readyz`)).json();
    assert.deepEqual(Object.keys(ready.checks).sort(), ['registry', 'store'], 'a receiver builds nothing, so needs no engine');
    const workerReady = await (await fetch(`${worker.url}/readyz`)).json();
    assert.deepEqual(Object.keys(workerReady.checks).sort(), ['docker', 'registry', 'store']);
  });

  it('a store that cannot be opened stops the start, naming DATABASE_URL without its password; so does a schema from a newer dockhook', async () => {
    const env = (url: string) => dockhookEnv(github, registry, dataDir, { DATABASE_URL: url, ROLE: 'receiver' });
    const closed = `postgres://dockhook:${PASSWORD}@127.0.0.1:1/dockhook`;
    await assert.rejects(spawnDockhook(env(closed)), (err: Error) => {
      assert.match(err.message, /exited \(1\)/);
      assert.match(err.message, /cannot start: cannot open the store at DATABASE_URL=postgres:\/\/dockhook:\*\*\*@127\.0\.0\.1:1\/dockhook/);
      assert.match(err.message, /check that PostgreSQL runs/);
      assert.ok(!err.message.includes(PASSWORD), 'no password');
      return true;
    });
    const newer = await pg.createDatabase();
    const migrated = await PgStore.open(newer, pino({ level: 'silent' }));
    await migrated.pool.query('UPDATE schema_version SET version = 99');
    await migrated.close();
    await assert.rejects(spawnDockhook(env(newer)), (err: Error) => {
      assert.match(err.message, /schema version 99/);
      assert.match(err.message, /run a dockhook release that knows schema version 99/);
      assert.ok(!err.message.includes(PASSWORD));
      return true;
    });
  });

  it('while it is down: 503 with Retry-After, /readyz names the store, the running build goes on; once back, nothing is lost', async () => {
    const running = await newRepo('during', 6);
    const first = await postDelivery(`${receiver.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'during', sha: running.head(), number: 1 }));
    assert.equal(first.status, 202);
    const firstId = first.body.build as number;
    await until('the build to start', () => worker.lines.some((l) => l.msg === 'build started' && l.build === firstId), 60_000);

    await pg.stop();
    const later = await newRepo('later', 0);
    const payload = mergedPullRequestPayload({ owner: OWNER, repo: 'later', sha: later.head(), number: 2 });
    const refused = await fetch(`${receiver.url}/webhook`, {
      method: 'POST',
      ...(await signDelivery(SECRET, payload, { id: 'outage-delivery-1' })),
    });
    const refusedText = await refused.text();
    assert.equal(refused.status, 503, refusedText);
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After is set');
    assert.match(refusedText, /store/);
    assert.ok(!refusedText.includes(PASSWORD), 'no password in the answer');

    for (const p of [receiver, worker]) {
      const res = await fetch(`${p.url}/readyz`);
      const body = await res.json();
      assert.equal(res.status, 503);
      assert.ok(body.failed.includes('store'), JSON.stringify(body));
      assert.match(body.checks.store, /PostgreSQL at postgres:\/\/dockhook:\*\*\*@127\.0\.0\.1/);
      assert.ok(!JSON.stringify(body).includes(PASSWORD));
    }
    assert.equal((await fetch(`${receiver.url}/api/builds`)).status, 503, 'the API says the store is away too');
    await new Promise((r) => setTimeout(r, 7000)); // the running build's last steps and pushes happen during the outage

    await pg.start();
    const redelivered = await fetch(`${receiver.url}/webhook`, {
      method: 'POST',
      ...(await signDelivery(SECRET, payload, { id: 'outage-delivery-1' })),
    });
    assert.equal(redelivered.status, 202, await redelivered.clone().text());
    const laterId = ((await redelivered.json()) as { build: number }).build;

    const peek = await PgStore.open(databaseUrl, pino({ level: 'silent' }));
    try {
      for (const id of [firstId, laterId]) {
        const done = await until(`build ${id} to finish`, async () => {
          const b = await peek.get(id);
          return b && (b.state === 'succeeded' || b.state === 'failed') ? b : undefined;
        }, 120_000, 250);
        assert.equal(done.state, 'succeeded', done.failure);
        assert.equal(done.attempts, 1, `build ${id} ran once`);
      }
      const log = await (await fetch(`${receiver.url}/api/builds/${firstId}/log`)).text();
      assert.match(log, /slept/, 'the lines written during the outage were kept');
      assert.match(log, /pushed .*during:1\.0\.0/);
      assert.equal((await peek.list({ limit: 10 })).length, 2, 'nothing lost, nothing doubled');
      await until('both success statuses', () => [running.head(), later.head()].every((sha) => github.statusesFor(sha).some((s) => s.state === 'success')), 60_000);
      assert.equal((await fetch(`${worker.url}/readyz`)).status, 200, 'the worker is ready again');
    } finally {
      await peek.close();
    }
  });
});

