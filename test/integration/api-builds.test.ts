import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { FileBuildLogs } from '../../src/logs/file-logs.js';
import { buildsApiRouter } from '../../src/http/api-builds.js';
import { toBuildView } from '../../src/http/build-view.js';
import { completeLines } from '../../src/logs/build-logs.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { BuildRecord } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';
import { readEvents, type SseEvent } from '../support/sse.js';

const OWNER = 'octo-org';
// The engine caches a RUN step with the same text on the same parent, and a cached step prints nothing: each run's steps are new.
const NONCE = `${process.pid}-${Date.now()}`;

const repoFiles = (name: string, version: string, dockerfile: string) => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version }),
  Dockerfile: dockerfile,
});

const get = (h: Harness, path: string, headers: Record<string, string> = {}) => fetch(`${h.url}${path}`, { headers });
const getJson = async (h: Harness, path: string) => {
  const res = await get(h, path);
  return { status: res.status, body: (await res.json()) as any };
};

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('builds API (real engine, real registry)', () => {
  let h: Harness;
  const ids = { good: 0, bad: 0, other: 0 };
  let goodSha = '';

  before(async () => {
    h = await startHarness();
    const good = await h.createRepo(OWNER, 'good', repoFiles('good', '1.0.0', `FROM busybox:latest\nRUN printf '\\033[31mred\\033[0m built\\n' && echo ${NONCE}\n`));
    const bad = await h.createRepo(OWNER, 'bad', repoFiles('bad', '0.1.0', 'FROM busybox:latest\nRUN echo about to fail && exit 3\n'));
    const other = await h.createRepo(OWNER, 'other', repoFiles('other', '2.0.0', 'FROM busybox:latest\n'));
    goodSha = good.head();
    // One after the other, so ids follow this order.
    ids.good = (await h.merge(OWNER, 'good', good.head(), { number: 11 })).body.build;
    ids.bad = (await h.merge(OWNER, 'bad', bad.head(), { number: 12 })).body.build;
    ids.other = (await h.merge(OWNER, 'other', other.head(), { number: 13 })).body.build;
    await Promise.all(Object.values(ids).map((id) => h.waitForBuild(id)));
  });
  after(async () => {
    await h?.close();
  });

  it('lists builds newest first, with filters', async () => {
    const all = await getJson(h, '/api/builds');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.builds.map((b: any) => b.id), [ids.other, ids.bad, ids.good]);
    assert.equal(all.body.next, null);

    const failed = await getJson(h, '/api/builds?state=failed');
    assert.deepEqual(failed.body.builds.map((b: any) => b.id), [ids.bad]);
    const good = await getJson(h, `/api/builds?repo=${OWNER}/good`);
    assert.deepEqual(good.body.builds.map((b: any) => b.id), [ids.good]);
    const both = await getJson(h, `/api/builds?repo=${OWNER}/good&state=failed`);
    assert.deepEqual(both.body.builds, []);
    const running = await getJson(h, '/api/builds?state=running');
    assert.deepEqual(running.body, { builds: [], next: null });
  });

  it('paginates with limit and before, keeping the filters in next', async () => {
    const seen: number[] = [];
    let path: string | null = '/api/builds?limit=1';
    const nexts: string[] = [];
    while (path) {
      const page = await getJson(h, path);
      assert.equal(page.status, 200);
      assert.ok(page.body.builds.length <= 1);
      seen.push(...page.body.builds.map((b: any) => b.id));
      path = page.body.next;
      if (path) nexts.push(path);
    }
    assert.deepEqual(seen, [ids.other, ids.bad, ids.good]);
    assert.deepEqual(nexts, [`/api/builds?limit=1&before=${ids.other}`, `/api/builds?limit=1&before=${ids.bad}`]);

    const filtered = await getJson(h, '/api/builds?state=succeeded&limit=1');
    assert.equal(filtered.body.next, `/api/builds?state=succeeded&limit=1&before=${ids.other}`);
    const rest = await getJson(h, filtered.body.next);
    assert.deepEqual(rest.body.builds.map((b: any) => b.id), [ids.good]);
    assert.equal(rest.body.next, null);
  });

  it('answers 400 naming the parameter for bad query values', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /limit/],
      ['limit=201', /limit must be a whole number from 1 to 200/],
      ['limit=ten', /limit/],
      ['before=-3', /before/],
      ['before=1.5', /before/],
      ['state=done', /state must be one of queued, running, succeeded, failed/],
      ['repo=justaname', /repo must be owner\/name/],
      ['state=failed&state=queued', /state may be given once/],
      ['status=failed', /unknown query parameter status/],
    ];
    for (const [query, message] of cases) {
      const res = await getJson(h, `/api/builds?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(res.body.error, message, query);
    }
  });

  it('answers 404 for an unknown build and 400 for a non-numeric id', async () => {
    const missing = await getJson(h, '/api/builds/99999');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /build 99999 not found/);
    assert.equal((await getJson(h, '/api/builds/99999/log')).status, 404);
    const bad = await getJson(h, '/api/builds/abc');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /build id must be a positive whole number/);
    assert.equal((await getJson(h, '/api/builds/0')).status, 400);
  });

  it('shows one build with everything a person needs', async () => {
    const { status, body: b } = await getJson(h, `/api/builds/${ids.good}`);
    assert.equal(status, 200);
    assert.equal(b.id, ids.good);
    assert.equal(b.state, 'succeeded');
    assert.deepEqual(b.repository, { owner: OWNER, name: 'good', fullName: `${OWNER}/good`, url: `https://github.com/${OWNER}/good` });
    assert.equal(b.sha, goodSha);
    assert.equal(b.shortSha, goodSha.slice(0, 7));
    assert.equal(b.branch, 'main');
    assert.equal(b.pullRequest.number, 11);
    assert.equal(b.pullRequest.url, `https://github.com/${OWNER}/good/pull/11`);
    assert.equal(typeof b.pullRequest.title, 'string');
    assert.equal(b.image, `${h.registry.host}/good`);
    assert.equal(b.version, '1.0.0');
    assert.deepEqual(b.pushed.map((p: any) => p.tag).sort(), ['1.0.0', 'latest', `sha-${goodSha.slice(0, 7)}`]);
    for (const p of b.pushed) {
      assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
      assert.equal(p.ref, `${h.registry.host}/good:${p.tag}`);
    }
    assert.deepEqual(b.pull, b.pushed.map((p: any) => `docker pull ${p.ref}`));
    assert.equal(b.latest, true);
    assert.equal(b.attempts, 1);
    for (const field of ['createdAt', 'startedAt', 'finishedAt']) assert.equal(new Date(b[field]).toISOString(), b[field], field);
    assert.equal(b.durationMs, Date.parse(b.finishedAt) - Date.parse(b.startedAt));
    assert.equal(b.failure, null);
    assert.deepEqual(b.links, {
      page: `/builds/${ids.good}`,
      log: `/api/builds/${ids.good}/log`,
      commit: `https://github.com/${OWNER}/good/commit/${goodSha}`,
    });

    const { body: f } = await getJson(h, `/api/builds/${ids.bad}`);
    assert.equal(f.state, 'failed');
    assert.match(f.failure, /returned a non-zero code: 3|exit code: 3/);
    assert.deepEqual(f.pushed, []);
    assert.deepEqual(f.pull, []);
    assert.equal(f.latest, false);
  });

  it('serves the whole log as text, raw or without ANSI codes', async () => {
    const res = await get(h, `/api/builds/${ids.bad}/log`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; charset=utf-8/);
    const text = await res.text();
    assert.equal(text, await h.service.logs.read(ids.bad));
    assert.match(text, /about to fail/);
    assert.match(text, /failed: docker build failed/);

    const raw = await (await get(h, `/api/builds/${ids.good}/log`)).text();
    assert.match(raw, /\u001b\[31mred\u001b\[0m built/);
    const plain = await (await get(h, `/api/builds/${ids.good}/log?ansi=strip`)).text();
    assert.match(plain, /^\S+ red built$/m);
    assert.doesNotMatch(plain, /\u001b/);
    assert.equal((await get(h, `/api/builds/${ids.good}/log?ansi=maybe`)).status, 400);
  });

  it('streams a finished build: every line, then end at once', async () => {
    const res = await get(h, `/api/builds/${ids.bad}/log`, { accept: 'text/event-stream' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = await readEvents(res);
    const lines = events.filter((e) => e.event === 'message');
    assert.deepEqual(lines.map((e) => e.data), completeLines(await h.service.logs.read(ids.bad)));
    assert.deepEqual(lines.map((e) => e.id), lines.map((_e, i) => String(i + 1)));
    const end = events.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(JSON.parse(end.data).state, 'failed');
    assert.match(JSON.parse(end.data).failure, /non-zero code: 3|exit code: 3/);

    // Resuming after line 3 (as EventSource does with Last-Event-ID) sends the rest only.
    const resumed = await readEvents(await get(h, `/api/builds/${ids.bad}/log`, { accept: 'text/event-stream', 'last-event-id': '3' }));
    assert.deepEqual(resumed.filter((e) => e.event === 'message').map((e) => e.data), lines.slice(3).map((e) => e.data));
  });

  it('follows a running build live until it ends, missing and repeating nothing', async () => {
    const repo = await h.createRepo(OWNER, 'slow', repoFiles('slow', '1.0.0', `FROM busybox:latest\nRUN echo start && sleep 3 && echo finish && echo ${NONCE}\n`));
    const id = (await h.merge(OWNER, 'slow', repo.head())).body.build as number;
    // Connect while it runs, once it has said something (so the file holds history to join).
    await waitFor('the build to start', async () => ((await h.service.logs.read(id)).includes('dockerInfo.json') ? true : undefined));
    const res = await get(h, `/api/builds/${id}/log`, { accept: 'text/event-stream' });
    assert.notEqual((await h.service.store.get(id))!.state, 'succeeded', 'the stream must start while the build runs');
    const events = await readEvents(res);
    await h.waitForBuild(id);

    const lines = events.filter((e) => e.event === 'message').map((e) => e.data);
    assert.ok(lines.some((l) => / start$/.test(l)), 'saw start');
    assert.ok(lines.some((l) => / finish$/.test(l)), 'saw finish');
    assert.equal(new Set(lines).size, lines.length, 'no line twice');
    // Exactly the log file, in order: nothing lost between reading the file and following.
    assert.deepEqual(lines, completeLines(await h.service.logs.read(id)));
    const end = events.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(JSON.parse(end.data).state, 'succeeded');
  });

  it('stops following when the client goes away', async () => {
    const repo = await h.createRepo(OWNER, 'leave', repoFiles('leave', '1.0.0', `FROM busybox:latest\nRUN sleep 2 && echo ${NONCE}\n`));
    const id = (await h.merge(OWNER, 'leave', repo.head())).body.build as number;
    const controller = new AbortController();
    const res = await fetch(`${h.url}/api/builds/${id}/log`, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
    // Peeks at BuildLogs' emitter: the only way to see a leaked subscription from outside.
    const live = (h.service.logs as unknown as { live: import('node:events').EventEmitter }).live;
    await waitFor('the subscription', () => (live.listenerCount(`line:${id}`) > 0 ? true : undefined));
    await readEvents(res, () => true).catch(() => []);
    controller.abort();
    await waitFor('the unsubscription', () => (live.listenerCount(`line:${id}`) === 0 && live.listenerCount(`end:${id}`) === 0 ? true : undefined), 5_000);
    await h.waitForBuild(id);
  });
});

describe('builds API with API_TOKEN_READS=true', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { API_TOKEN: 'reads-need-this-token', API_TOKEN_READS: 'true' } });
  });
  after(async () => {
    await h?.close();
  });

  it('answers reads (API and pages) only with the token', async () => {
    for (const path of ['/api/builds', '/api/builds/1', '/api/builds/1/log', '/', '/builds/1']) {
      const res = await get(h, path);
      assert.equal(res.status, 401, path);
      assert.match(((await res.json()) as any).error, /missing bearer token/);
    }
    const ok = await get(h, '/api/builds', { authorization: 'Bearer reads-need-this-token' });
    assert.equal(ok.status, 200);
    assert.equal((await get(h, '/', { authorization: 'Bearer reads-need-this-token' })).status, 200);
    assert.equal((await get(h, '/api/builds', { authorization: 'Bearer wrong' })).status, 401);
  });
});

describe('log stream joins the file and the live lines under load (no engine)', () => {
  it('gives every client exactly the log file, wherever it connects, across a retry', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-sse-'));
    const store = new SqliteStore(dataDir);
    const logs = new FileBuildLogs(dataDir);
    const app = express();
    app.use(buildsApiRouter({ config: { registry: 'localhost:5000', apiTokenReads: false }, store, logs, isStopping: () => false }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { build } = await store.enqueue({
        deliveryId: 'd-1', trigger: 'merge', owner: 'o', repo: 'r', repoUrl: 'https://github.com/o/r', defaultBranch: 'main',
        branch: 'main', sha: 'a'.repeat(40), mergedAt: new Date().toISOString(),
      });
      const clients: Promise<SseEvent[]>[] = [];
      const connect = () => clients.push(fetch(`${base}/api/builds/${build.id}/log`, { headers: { accept: 'text/event-stream' } }).then((res) => readEvents(res)));
      let n = 0;
      // Bursts of several lines per call with no pause between calls: the file lags the live lines most here.
      const attempt = async (bursts: number) => {
        await store.claimNext({ owner: 'test', ms: 60_000 });
        const writer = logs.writer(build.id);
        for (let b = 0; b < bursts; b++) {
          for (let k = 0; k < 5; k++) writer.line([1, 2, 3].map(() => `line ${++n} ${'x'.repeat(n % 300)}`).join('\n'));
          if (b % 3 === 0) connect();
          await new Promise((r) => setImmediate(r));
          if (b % 7 === 0) await new Promise((r) => setTimeout(r, 3));
        }
        return writer;
      };
      connect(); // before the first line
      const first = await attempt(40);
      await store.requeue(build.id, 0, 'registry down', 'test');
      await first.close();
      connect(); // between attempts
      const second = await attempt(40);
      await store.markSucceeded(build.id, 'test');
      await second.close();
      connect(); // after the end

      const file = completeLines(await logs.read(build.id));
      assert.equal(file.length, n);
      for (const [i, client] of clients.entries()) {
        const events = await client;
        assert.deepEqual(events.filter((e) => e.event === 'message').map((e) => e.data), file, `client ${i}`);
        assert.equal(events.at(-1)!.event, 'end');
        assert.equal(JSON.parse(events.at(-1)!.data).state, 'succeeded');
      }
    } finally {
      server.closeAllConnections();
      server.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('toBuildView (pure)', () => {
  const record: BuildRecord = {
    id: 7, deliveryId: 'd', trigger: 'merge', owner: 'o', repo: 'r', repoUrl: 'https://github.com/o/r/', defaultBranch: 'main',
    branch: 'main', sha: 'b'.repeat(40), mergedAt: '2024-05-01T10:00:00Z', state: 'running', attempts: 2, runAfter: 0,
    createdAt: Date.parse('2024-05-01T10:00:01Z'), firstStartedAt: Date.parse('2024-05-01T10:00:02Z'), startedAt: Date.parse('2024-05-01T10:00:30Z'),
    image: 'api', version: '1.4.2', latestPushed: false, failure: 'registry down', notes: [], needs: [], force: false, platforms: [], artifacts: [],
    pushed: [
      { ref: 'reg:5000/api:sha-bbbbbbb', tag: 'sha-bbbbbbb', digest: 'sha256:1' },
      { ref: 'reg:5000/api:1.4.2', tag: '1.4.2', digest: 'sha256:1' },
    ],
  };

  it('makes links absolute under PUBLIC_URL, puts the version tag first, and leaves open facts null', () => {
    const view = toBuildView(record, { registry: 'reg:5000', publicUrl: 'https://dockhook.example.com' });
    assert.deepEqual(view.links, {
      page: 'https://dockhook.example.com/builds/7',
      log: 'https://dockhook.example.com/api/builds/7/log',
      commit: `https://github.com/o/r/commit/${'b'.repeat(40)}`,
    });
    assert.equal(view.image, 'reg:5000/api');
    assert.deepEqual(view.pull, ['docker pull reg:5000/api:1.4.2', 'docker pull reg:5000/api:sha-bbbbbbb']);
    assert.equal(view.startedAt, '2024-05-01T10:00:02.000Z', 'the first attempt, not the current one');
    assert.equal(view.finishedAt, null);
    assert.equal(view.durationMs, null);
    assert.equal(view.pullRequest, null);
    assert.equal(view.failure, 'registry down');
    assert.deepEqual(JSON.parse(JSON.stringify(view)), view, 'plain JSON');
  });

  it('shows a multi-image merge with its images, and each image with its merge', () => {
    const head: BuildRecord = { ...record, id: 7, image: undefined, version: undefined, pushed: [], failure: undefined, state: 'succeeded' };
    const api: BuildRecord = { ...record, id: 9, groupId: 7, service: 'api', needs: ['base'], fingerprint: 'sha256:f', state: 'failed', pushed: [], failure: 'not built: base (which api depends on) failed' };
    const base: BuildRecord = { ...record, id: 8, groupId: 7, service: 'base', image: 'base', version: '1.2', state: 'succeeded', failure: undefined, pushed: [{ ref: 'reg:5000/base:1.2', tag: '1.2', digest: 'sha256:2' }] };
    const view = toBuildView(head, { registry: 'reg:5000' }, [base, api]);
    assert.equal(view.group, null);
    assert.deepEqual(view.images, [
      { id: 8, service: 'base', state: 'succeeded', image: 'reg:5000/base', version: '1.2', needs: [], ref: 'reg:5000/base:1.2', digest: 'sha256:2', failure: null, page: '/builds/8' },
      { id: 9, service: 'api', state: 'failed', image: 'reg:5000/api', version: '1.4.2', needs: ['base'], ref: null, digest: null, failure: 'not built: base (which api depends on) failed', page: '/builds/9' },
    ]);
    const one = toBuildView(api, { registry: 'reg:5000', publicUrl: 'https://d.example' });
    assert.deepEqual([one.service, one.group, one.needs, one.fingerprint, one.images], ['api', { id: 7, page: 'https://d.example/builds/7' }, ['base'], 'sha256:f', null]);
    assert.equal(toBuildView(record, { registry: 'reg:5000' }).images, null, 'a single-image build has no images list');
  });
});
