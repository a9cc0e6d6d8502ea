import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { BuildRequest } from '../../src/intake.js';
import type { PgStore } from '../../src/store/postgres/pg-store.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { BuildRecord, Lease, Store } from '../../src/store/store.js';
import { until } from '../support/wait.js';

/**
 * The behaviour every Store implementation owes (see src/store/store.ts).
 * test/contract/store.test.ts runs it against SQLite and PostgreSQL; each
 * case gets a fresh, empty store from `open`.
 */
export interface OpenedStore {
  store: Store;
  /** Another store on the same database or file (the caller's cleanup closes it too). */
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

let seq = 0;
const BASE = Date.UTC(2026, 0, 1);
/** A merge time `s` seconds after a fixed instant: ISO strings that sort as the times do. */
export const mergedAt = (s: number) => new Date(BASE + s * 1000).toISOString();

/** A delivery of a merged pull request; every call is a new delivery of a new commit unless told otherwise. */
export function request(overrides: Partial<BuildRequest> = {}): BuildRequest {
  const n = ++seq;
  const owner = overrides.owner ?? 'acme';
  const repo = overrides.repo ?? 'app';
  return {
    deliveryId: `delivery-${process.pid}-${n}`,
    trigger: 'merge',
    owner,
    repo,
    repoUrl: `https://github.com/${owner}/${repo}`,
    defaultBranch: 'main',
    branch: 'main',
    sha: (process.pid * 1_000_000 + n).toString(16).padStart(40, '0'),
    mergedAt: mergedAt(n),
    ...overrides,
  };
}

const W1: Lease = { owner: 'worker-1', ms: 60_000 };
const W2: Lease = { owner: 'worker-2', ms: 60_000 };

async function queued(store: Store, r: BuildRequest): Promise<BuildRecord> {
  const result = await store.enqueue(r);
  assert.equal(result.outcome, 'queued', `${r.deliveryId} should be queued`);
  return result.build;
}

/** Claims exactly this build (the test set the queue up so it is next). */
async function claim(store: Store, id: number, lease: Lease = W1): Promise<BuildRecord> {
  const build = await store.claimNext(lease);
  assert.equal(build?.id, id, `claimNext should take build ${id}`);
  return build!;
}

async function finish(store: Store, build: BuildRecord, how: 'succeeded' | 'failed'): Promise<void> {
  const running = await store.get(build.id);
  if (running?.state !== 'running') await claim(store, build.id);
  const owner = (await store.get(build.id))!.leaseOwner!;
  assert.ok(how === 'succeeded' ? await store.markSucceeded(build.id, owner) : await store.markFailed(build.id, 'it broke', owner));
}

async function schemaVersion(store: Store): Promise<number> {
  if (store.kind === 'sqlite') return (store as SqliteStore).db.pragma('user_version', { simple: true }) as number;
  const { rows } = await (store as PgStore).pool.query<{ version: number }>('SELECT version FROM schema_version');
  assert.equal(rows.length, 1, 'schema_version has one row');
  return rows[0]!.version;
}

async function setSchemaVersion(store: Store, version: number): Promise<void> {
  if (store.kind === 'sqlite') (store as SqliteStore).db.pragma(`user_version = ${version}`);
  else await (store as PgStore).pool.query('UPDATE schema_version SET version = $1', [version]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeContract(name: string, open: () => Promise<OpenedStore>): void {
  /** One case: a fresh store, cleaned up whatever happens. */
  const test = (title: string, body: (store: Store, opened: OpenedStore, t: TestContext) => Promise<void>) =>
    it(title, async (t) => {
      const opened = await open();
      try {
        await body(opened.store, opened, t);
      } finally {
        await opened.cleanup();
      }
    });

  describe(name, () => {
    describe('enqueue', () => {
      test('queues a build and returns it with every field of the request, as get() does', async (store) => {
        const before = Date.now();
        const r = request({
          trigger: 'manual',
          owner: 'Acme-Org',
          repo: 'web.app',
          repoUrl: 'https://github.com/Acme-Org/web.app',
          defaultBranch: 'trunk',
          branch: 'release/1.x',
          mergedAt: '2026-03-04T05:06:07.123Z',
          pullRequest: { number: 4711, title: `Fix "quotes" and 'apostrophes' — ünïcödé ✓`, url: 'https://github.com/Acme-Org/web.app/pull/4711' },
        });
        const result = await store.enqueue(r);
        assert.equal(result.outcome, 'queued');
        const b = result.build;
        assert.ok(Number.isInteger(b.id) && b.id > 0);
        assert.deepEqual(
          {
            deliveryId: b.deliveryId, trigger: b.trigger, owner: b.owner, repo: b.repo, repoUrl: b.repoUrl, defaultBranch: b.defaultBranch,
            branch: b.branch, sha: b.sha, mergedAt: b.mergedAt, pullRequest: b.pullRequest,
          },
          r,
        );
        assert.equal(b.state, 'queued');
        assert.equal(b.attempts, 0);
        assert.deepEqual(b.pushed, []);
        assert.deepEqual(b.notes, []);
        assert.equal(b.latestPushed, false);
        for (const field of ['firstStartedAt', 'startedAt', 'finishedAt', 'image', 'version', 'failure', 'leaseOwner', 'leaseUntil'] as const) {
          assert.equal(b[field], undefined, `${field} is unset on a new build`);
        }
        assert.ok(b.runAfter <= Date.now(), 'claimable now');
        assert.ok(b.createdAt >= before - 1000 && b.createdAt <= Date.now() + 1000, 'createdAt is now');
        assert.deepEqual(await store.get(b.id), b);
        assert.equal(await store.get(b.id + 1000), undefined);
      });

      test('a build without a pull request has no pullRequest', async (store) => {
        const b = await queued(store, request({ trigger: 'manual' }));
        assert.equal(b.pullRequest, undefined);
        assert.equal((await store.get(b.id))!.pullRequest, undefined);
      });

      test('the same delivery again is a duplicate of its build', async (store) => {
        const r = request();
        const first = await queued(store, r);
        const again = await store.enqueue(r);
        assert.equal(again.outcome, 'duplicate');
        assert.equal(again.build.id, first.id);
        assert.equal((await store.list({ limit: 10 })).length, 1);
      });

      test('another delivery of the same commit is a duplicate, and that delivery now names the build', async (store) => {
        const first = await queued(store, request());
        const other = request({ sha: first.sha, owner: first.owner, repo: first.repo });
        const dup = await store.enqueue(other);
        assert.equal(dup.outcome, 'duplicate');
        assert.equal(dup.build.id, first.id);
        // Seen once, the delivery id answers with its build whatever it carries.
        const again = await store.enqueue({ ...other, sha: 'f'.repeat(40) });
        assert.equal(again.outcome, 'duplicate');
        assert.equal(again.build.id, first.id);
        assert.equal((await store.list({ limit: 10 })).length, 1);
      });

      test('the same commit in another repository is a build of its own', async (store) => {
        const first = await queued(store, request());
        const other = await queued(store, request({ sha: first.sha, repo: 'elsewhere' }));
        assert.notEqual(other.id, first.id);
      });

      test('a delivery whose build failed queues a fresh build when redelivered; one whose build succeeded stays a duplicate', async (store) => {
        const r = request();
        const failed = await queued(store, r);
        await finish(store, failed, 'failed');
        const retry = await store.enqueue(r);
        assert.equal(retry.outcome, 'queued');
        assert.ok(retry.build.id > failed.id, 'a new build');
        assert.equal(retry.build.attempts, 0);
        assert.equal(retry.build.failure, undefined);
        assert.equal((await store.get(failed.id))!.state, 'failed', 'the failed one stays as it was');
        const again = await store.enqueue(r);
        assert.equal(again.outcome, 'duplicate');
        assert.equal(again.build.id, retry.build.id, 'the delivery now names the fresh build');

        await finish(store, retry.build, 'succeeded');
        const afterSuccess = await store.enqueue(r);
        assert.equal(afterSuccess.outcome, 'duplicate');
        assert.equal(afterSuccess.build.id, retry.build.id);
        const otherDelivery = await store.enqueue(request({ sha: r.sha }));
        assert.equal(otherDelivery.outcome, 'duplicate', 'a succeeded commit is not built again');
        assert.equal(otherDelivery.build.id, retry.build.id);
      });

      test('another delivery of a commit whose build failed queues a fresh build', async (store) => {
        const failed = await queued(store, request());
        await finish(store, failed, 'failed');
        const fresh = await store.enqueue(request({ sha: failed.sha }));
        assert.equal(fresh.outcome, 'queued');
        assert.notEqual(fresh.build.id, failed.id);
      });

      test('enqueueMany answers in request order and dedupes within the batch', async (store) => {
        const existingRequest = request();
        const existing = await queued(store, existingRequest);
        const a = request();
        const b = request();
        const results = await store.enqueueMany([a, b, a, request({ sha: b.sha }), existingRequest, request()]);
        assert.deepEqual(
          results.map((r) => r.outcome),
          ['queued', 'queued', 'duplicate', 'duplicate', 'duplicate', 'queued'],
        );
        assert.equal(results[0]!.build.deliveryId, a.deliveryId);
        assert.equal(results[1]!.build.deliveryId, b.deliveryId);
        assert.equal(results[2]!.build.id, results[0]!.build.id);
        assert.equal(results[3]!.build.id, results[1]!.build.id);
        assert.equal(results[4]!.build.id, existing.id);
        assert.ok(results[5]!.build.id > results[1]!.build.id);
        assert.deepEqual(await store.enqueueMany([]), []);
        assert.equal((await store.countByState()).queued, 4);
      });
    });

    describe('reading', () => {
      test('list gives the newest first, filters by repository and state, and pages with before', async (store) => {
        const ids: number[] = [];
        for (let i = 0; i < 7; i++) ids.push((await queued(store, request({ repo: i % 2 ? 'odd' : 'even' }))).id);
        assert.deepEqual((await store.list({ limit: 100 })).map((b) => b.id), [...ids].reverse());
        assert.deepEqual((await store.list({ limit: 3 })).map((b) => b.id), ids.slice(4).reverse());
        const evens = ids.filter((_, i) => i % 2 === 0).reverse();
        assert.deepEqual((await store.list({ repo: 'acme/even', limit: 100 })).map((b) => b.id), evens);
        assert.deepEqual((await store.list({ repo: 'other/even', limit: 100 })).map((b) => b.id), [], 'the owner counts');

        // keyset paging: page 2 starts below page 1's last id, and a build arriving meanwhile shifts nothing
        const page1 = await store.list({ repo: 'acme/even', limit: 2 });
        await queued(store, request({ repo: 'even' }));
        const page2 = await store.list({ repo: 'acme/even', limit: 2, before: page1.at(-1)!.id });
        assert.deepEqual([...page1, ...page2].map((b) => b.id), evens);
        assert.deepEqual(await store.list({ limit: 10, before: ids[0]! }), []);

        // the first merge of each repository is the one claimNext takes: finish those
        await finish(store, (await store.get(ids[0]!))!, 'failed');
        await finish(store, (await store.get(ids[1]!))!, 'succeeded');
        assert.deepEqual((await store.list({ state: 'failed', limit: 10 })).map((b) => b.id), [ids[0]]);
        assert.deepEqual((await store.list({ state: 'succeeded', repo: 'acme/odd', limit: 10 })).map((b) => b.id), [ids[1]]);
        assert.deepEqual((await store.list({ state: 'succeeded', repo: 'acme/even', limit: 10 })).map((b) => b.id), []);
        assert.deepEqual((await store.list({ state: 'queued', limit: 10, before: ids[4]! })).map((b) => b.id), [ids[3], ids[2]]);
      });

      test('countByState counts every state, zero included', async (store) => {
        assert.deepEqual(await store.countByState(), { queued: 0, running: 0, succeeded: 0, failed: 0 });
        const builds: BuildRecord[] = [];
        for (let i = 0; i < 5; i++) builds.push(await queued(store, request({ repo: `r${i}` })));
        await finish(store, builds[0]!, 'succeeded');
        await finish(store, builds[1]!, 'failed');
        await finish(store, builds[2]!, 'failed');
        await claim(store, builds[3]!.id);
        assert.deepEqual(await store.countByState(), { queued: 1, running: 1, succeeded: 1, failed: 2 });
      });
    });

    describe('claiming', () => {
      test('claimNext takes the earlier merge of a repository first, ties broken by id', async (store) => {
        const late = await queued(store, request({ mergedAt: mergedAt(500) }));
        const early = await queued(store, request({ mergedAt: mergedAt(100) }));
        const tie = await queued(store, request({ mergedAt: mergedAt(100) }));
        for (const expected of [early, tie, late]) {
          const b = await claim(store, expected.id);
          assert.ok(await store.markSucceeded(b.id, W1.owner));
        }
        assert.equal(await store.claimNext(W1), undefined, 'nothing left');
      });

      test('claimNext never runs two builds of one repository, and runs different repositories at once', async (store) => {
        const a1 = await queued(store, request({ repo: 'a', mergedAt: mergedAt(1) }));
        const a2 = await queued(store, request({ repo: 'a', mergedAt: mergedAt(2) }));
        const b1 = await queued(store, request({ repo: 'b', mergedAt: mergedAt(3) }));
        await claim(store, a1.id, W1);
        await claim(store, b1.id, W2);
        assert.equal(await store.claimNext(W1), undefined, 'a2 waits for a1');
        assert.equal(await store.claimNext(W2), undefined);
        assert.deepEqual((await store.list({ state: 'running', limit: 10 })).map((b) => b.id).sort(), [a1.id, b1.id].sort());
        assert.ok(await store.markFailed(a1.id, 'boom', W1.owner));
        const next = await claim(store, a2.id, W2);
        assert.equal(next.leaseOwner, W2.owner);
      });

      test('claimNext records the lease, counts attempts and keeps the first start time', async (store) => {
        const b = await queued(store, request());
        const t0 = Date.now();
        const first = await claim(store, b.id, { owner: 'w-first', ms: 60_000 });
        assert.equal(first.state, 'running');
        assert.equal(first.attempts, 1);
        assert.equal(first.leaseOwner, 'w-first');
        assert.ok(first.firstStartedAt !== undefined && first.startedAt !== undefined);
        assert.ok(first.leaseUntil! >= t0 + 60_000 - 1000 && first.leaseUntil! <= Date.now() + 60_000 + 1000, 'leaseUntil is now + ms');
        assert.deepEqual(await store.get(b.id), first);
        await sleep(20);
        assert.ok(await store.requeue(b.id, 0, 'registry down', 'w-first'));
        const second = await claim(store, b.id, W2);
        assert.equal(second.attempts, 2);
        assert.equal(second.firstStartedAt, first.firstStartedAt, 'firstStartedAt is set once');
        assert.ok(second.startedAt! > first.startedAt!, 'startedAt is this attempt');
        assert.equal(second.leaseOwner, W2.owner);
      });

      test('a requeued build waits out its delay, and holds back the later merges of its repository meanwhile', async (store) => {
        const first = await queued(store, request({ mergedAt: mergedAt(1) }));
        const later = await queued(store, request({ mergedAt: mergedAt(2) }));
        await claim(store, first.id);
        const requeuedAt = Date.now();
        assert.ok(await store.requeue(first.id, 300, 'try again', W1.owner));
        const waiting = (await store.get(first.id))!;
        assert.equal(waiting.state, 'queued');
        assert.equal(waiting.failure, 'try again');
        assert.equal(waiting.leaseOwner, undefined);
        assert.ok(waiting.runAfter >= requeuedAt + 300 - 50);
        const got = await until('the requeued build is claimable', async () => (await store.claimNext(W1)) ?? false, 10_000, 20);
        assert.equal(got.id, first.id, 'the later merge never went first');
        assert.ok(Date.now() - requeuedAt >= 300, 'not before its delay');
        assert.equal(got.attempts, 2);
        assert.equal((await store.get(later.id))!.state, 'queued');
      });

      test('renewLease extends the lease for its owner only, and not after the build ended', async (store) => {
        const b = await queued(store, request());
        const claimed = await claim(store, b.id, { owner: 'w1', ms: 1000 });
        assert.equal(await store.renewLease(b.id, { owner: 'w1', ms: 60_000 }), true);
        const renewed = (await store.get(b.id))!;
        assert.ok(renewed.leaseUntil! > claimed.leaseUntil! + 30_000, 'the lease now runs longer');
        assert.equal(await store.renewLease(b.id, { owner: 'w2', ms: 60_000 }), false);
        assert.equal((await store.get(b.id))!.leaseUntil, renewed.leaseUntil, "another owner's renew changes nothing");
        assert.ok(await store.markSucceeded(b.id, 'w1'));
        assert.equal(await store.renewLease(b.id, { owner: 'w1', ms: 60_000 }), false, 'a finished build has no lease');
        assert.equal(await store.renewLease(b.id + 1000, { owner: 'w1', ms: 60_000 }), false);
      });

      test("a lease that ran out is taken over by another worker's claim, and the old owner's writes then change nothing", async (store) => {
        const b = await queued(store, request());
        const claimedAt = Date.now();
        await claim(store, b.id, { owner: 'old', ms: 200 });
        const taken = await until('the lapsed lease is taken over', async () => (await store.claimNext({ owner: 'new', ms: 60_000 })) ?? false, 10_000, 20);
        assert.ok(Date.now() - claimedAt >= 200, 'not before the lease ran out');
        assert.equal(taken.id, b.id);
        assert.equal(taken.state, 'running');
        assert.equal(taken.attempts, 2);
        assert.equal(taken.leaseOwner, 'new');
        const snapshot = (await store.get(b.id))!;
        assert.equal(await store.markSucceeded(b.id, 'old'), false);
        assert.equal(await store.markFailed(b.id, 'old worker gave up', 'old'), false);
        assert.equal(await store.requeue(b.id, 0, 'old worker stopping', 'old'), false);
        assert.equal(await store.renewLease(b.id, { owner: 'old', ms: 60_000 }), false);
        assert.deepEqual(await store.get(b.id), snapshot, 'nothing changed');
        assert.ok(await store.markSucceeded(b.id, 'new'));
      });

      test('a worker never takes its own lapsed lease back (the build is still running there)', async (store) => {
        const b = await queued(store, request());
        await claim(store, b.id, { owner: 'self', ms: 100 });
        await sleep(250);
        assert.equal(await store.claimNext({ owner: 'self', ms: 60_000 }), undefined);
        assert.equal((await store.get(b.id))!.attempts, 1, 'not counted as another attempt');
        assert.ok(await store.renewLease(b.id, { owner: 'self', ms: 60_000 }), 'its owner may still renew it while nobody took it');
      });

      test('nextWakeAt ignores a due build that waits for its repository, so idle workers do not spin', async (store) => {
        const first = await queued(store, request());
        await queued(store, request());
        await claim(store, first.id, { owner: 'w', ms: 60_000 });
        const wake = (await store.nextWakeAt())!;
        assert.ok(wake > Date.now() + 30_000, 'the running lease end, not "now"');
      });

      test('nextWakeAt is the earliest retry delay or lease end, and undefined when nothing waits', async (store) => {
        assert.equal(await store.nextWakeAt(), undefined);
        const retried = await queued(store, request({ repo: 'retried' }));
        const leased = await queued(store, request({ repo: 'leased' }));
        await claim(store, retried.id);
        const t0 = Date.now();
        assert.ok(await store.requeue(retried.id, 20_000, 'later', W1.owner));
        const t1 = Date.now();
        await claim(store, leased.id, { owner: 'w', ms: 5_000 });
        const t2 = Date.now();
        const lease = (await store.nextWakeAt())!;
        assert.ok(lease >= t1 + 5_000 - 1000 && lease <= t2 + 5_000 + 1000, `the lease's end (${lease - t2} ms from now)`);
        assert.ok(await store.markSucceeded(leased.id, 'w'));
        const retry = (await store.nextWakeAt())!;
        assert.ok(retry >= t0 + 20_000 - 1000 && retry <= t1 + 20_000 + 1000, `the retry delay's end once the lease is gone (${retry - t1} ms from now)`);
      });

      test('markSucceeded, markFailed and requeue set the state, the failure text and finishedAt', async (store) => {
        const ok = await queued(store, request({ repo: 'ok' }));
        const bad = await queued(store, request({ repo: 'bad' }));
        await claim(store, ok.id);
        assert.ok(await store.requeue(ok.id, 0, 'registry was down', W1.owner));
        const requeued = (await store.get(ok.id))!;
        assert.equal(requeued.state, 'queued');
        assert.equal(requeued.failure, 'registry was down');
        assert.equal(requeued.finishedAt, undefined);
        assert.equal(requeued.leaseOwner, undefined);
        assert.equal(requeued.leaseUntil, undefined);
        await claim(store, ok.id);
        const t0 = Date.now();
        assert.ok(await store.markSucceeded(ok.id, W1.owner));
        const succeeded = (await store.get(ok.id))!;
        assert.equal(succeeded.state, 'succeeded');
        assert.equal(succeeded.failure, undefined, 'success clears the last failure');
        assert.ok(succeeded.finishedAt! >= t0 - 1000 && succeeded.finishedAt! <= Date.now() + 1000);
        assert.equal(succeeded.leaseOwner, undefined);
        assert.equal(succeeded.leaseUntil, undefined);

        await claim(store, bad.id);
        const reason = `docker build failed: "RUN make" exited 2 — ünïcödé\nsecond line`;
        assert.ok(await store.markFailed(bad.id, reason, W1.owner));
        const failed = (await store.get(bad.id))!;
        assert.equal(failed.state, 'failed');
        assert.equal(failed.failure, reason);
        assert.ok(failed.finishedAt !== undefined);
        assert.equal(failed.leaseOwner, undefined);

        assert.equal(await store.requeue(bad.id, 0, undefined, W1.owner), false, 'a finished build is not requeued');
        assert.equal(await store.markSucceeded(bad.id, W1.owner), false, 'nor finished twice');
        assert.equal((await store.get(bad.id))!.state, 'failed');

        const plain = await queued(store, request({ repo: 'plain' }));
        assert.equal(await store.markSucceeded(plain.id, W1.owner), false, 'a queued build is not finished');
        await claim(store, plain.id);
        assert.ok(await store.requeue(plain.id, 0, undefined, W1.owner));
        assert.equal((await store.get(plain.id))!.failure, undefined, 'a requeue without a reason leaves no failure');
      });
    });

    describe('what a build records', () => {
      test('addNote appends notes in order, quotes and unicode intact', async (store) => {
        const b = await queued(store, request());
        const notes = [`it's "quoted"`, 'ünïcödé ✓ 🐳 日本語', '[1, {"json": true}]', '', 'back\\slash'];
        for (const n of notes) await store.addNote(b.id, n);
        assert.deepEqual((await store.get(b.id))!.notes, notes);
      });

      test('recordPush appends each push, and latestPushed stays true once set', async (store) => {
        const b = await queued(store, request());
        const pushes = [
          { ref: 'registry.test/app:1.0.0', tag: '1.0.0', digest: `sha256:${'a'.repeat(64)}` },
          { ref: 'registry.test/app:latest', tag: 'latest', digest: `sha256:${'a'.repeat(64)}` },
          { ref: 'registry.test/app:abc1234', tag: 'abc1234', digest: `sha256:${'b'.repeat(64)}` },
        ];
        await store.recordPush(b.id, pushes[0]!, false);
        assert.equal((await store.get(b.id))!.latestPushed, false);
        await store.recordPush(b.id, pushes[1]!, true);
        await store.recordPush(b.id, pushes[2]!, false);
        const after = (await store.get(b.id))!;
        assert.deepEqual(after.pushed, pushes);
        assert.equal(after.latestPushed, true);
      });

      test('setImage records the image and version', async (store) => {
        const b = await queued(store, request());
        await store.setImage(b.id, 'registry.test/acme/app', '1.2.3');
        const after = (await store.get(b.id))!;
        assert.equal(after.image, 'registry.test/acme/app');
        assert.equal(after.version, '1.2.3');
      });
    });

    describe('tags', () => {
      test('claimLatest: a later merge takes latest, after which an earlier merge may not and hasLaterLatest says so', async (store) => {
        const image = 'registry.test/acme/app';
        const [early, late, same] = [await queued(store, request()), await queued(store, request()), await queued(store, request())];
        assert.equal(await store.hasLaterLatest(image, mergedAt(10), early.id), false, 'nobody holds latest yet');
        assert.equal(await store.claimLatest(image, mergedAt(10), early.id), true);
        assert.equal(await store.claimLatest(image, mergedAt(10), early.id), true, 'the holder may claim again');
        assert.equal(await store.claimLatest(image, mergedAt(20), late.id), true, 'a later merge takes it');
        assert.equal(await store.hasLaterLatest(image, mergedAt(10), early.id), true);
        assert.equal(await store.claimLatest(image, mergedAt(10), early.id), false, 'the earlier merge leaves latest alone');
        assert.equal(await store.hasLaterLatest(image, mergedAt(20), late.id), false, 'not later than itself');
        assert.equal(await store.claimLatest(image, mergedAt(20), late.id), true, 'the same build again');
        assert.equal(await store.hasLaterLatest(image, mergedAt(20), same.id), false, 'an equal merge time is not later');
        assert.equal(await store.claimLatest(image, mergedAt(20), same.id), true, 'an equal merge time may claim');
        assert.equal(await store.claimLatest('registry.test/acme/other', mergedAt(1), early.id), true, 'per image');
        assert.equal(await store.claimLatest(image, mergedAt(1), early.id), false);
      });

      test("claimVersion binds a version to the first commit, refuses others while its build is live, and hands it over once that build is over", async (store) => {
        const image = 'registry.test/acme/app';
        const first = await queued(store, request());
        const second = await queued(store, request());
        await store.setImage(first.id, image, '1.0.0');
        await store.setImage(second.id, image, '1.0.0');
        assert.equal(await store.claimVersion(image, '1.0.0', first.sha), first.sha, 'the first commit binds');
        assert.equal(await store.claimVersion(image, '1.0.0', first.sha), first.sha, 'and may claim again');
        assert.equal(await store.claimVersion(image, '1.0.0', second.sha), first.sha, 'queued: the first commit keeps it');
        await claim(store, first.id);
        assert.equal(await store.claimVersion(image, '1.0.0', second.sha), first.sha, 'running: the first commit keeps it');
        assert.equal(await store.claimVersion('registry.test/acme/other', '1.0.0', second.sha), second.sha, 'per image');
        assert.equal(await store.claimVersion(image, '1.0.1', second.sha), second.sha, 'per version');
        assert.ok(await store.markFailed(first.id, 'push failed', W1.owner));
        assert.equal(await store.claimVersion(image, '1.0.0', second.sha), second.sha, "the first commit's build is over: taken over");
        assert.equal(await store.claimVersion(image, '1.0.0', first.sha), second.sha, 'now bound to the second commit');
      });

      test('releaseVersion lets the version name another commit', async (store) => {
        const image = 'registry.test/acme/app';
        const first = await queued(store, request());
        await store.setImage(first.id, image, '2.0.0');
        assert.equal(await store.claimVersion(image, '2.0.0', first.sha), first.sha);
        assert.equal(await store.claimVersion(image, '2.0.0', 'c'.repeat(40)), first.sha);
        await store.releaseVersion(image, '2.0.0');
        assert.equal(await store.claimVersion(image, '2.0.0', 'c'.repeat(40)), 'c'.repeat(40));
        await store.releaseVersion(image, '9.9.9'); // nothing bound: nothing to do
      });

      test('claimRetention is true exactly once per build', async (store) => {
        const a = await queued(store, request());
        const b = await queued(store, request());
        assert.deepEqual(await Promise.all([store.claimRetention(a.id), store.claimRetention(a.id), store.claimRetention(a.id)]).then((r) => r.filter(Boolean).length), 1);
        assert.equal(await store.claimRetention(a.id), false);
        assert.equal(await store.claimRetention(b.id), true);
      });
    });

    describe('process life', () => {
      test('recoverInterrupted: SQLite queues again what was running (it owns the file); PostgreSQL returns 0 and leaves running builds to their leases', async (store) => {
        const running = await queued(store, request({ repo: 'one' }));
        const alsoRunning = await queued(store, request({ repo: 'two' }));
        const waiting = await queued(store, request({ repo: 'three' }));
        await claim(store, running.id);
        await claim(store, alsoRunning.id);
        const recovered = await store.recoverInterrupted();
        if (store.kind === 'sqlite') {
          assert.equal(recovered, 2);
          for (const id of [running.id, alsoRunning.id]) {
            const b = (await store.get(id))!;
            assert.equal(b.state, 'queued');
            assert.equal(b.leaseOwner, undefined);
            assert.ok(b.runAfter <= Date.now(), 'claimable at once');
          }
          assert.equal((await store.claimNext(W2))?.attempts, 2, 'runs again from the start');
        } else {
          assert.equal(recovered, 0);
          for (const id of [running.id, alsoRunning.id]) assert.equal((await store.get(id))!.state, 'running');
          assert.equal((await store.get(running.id))!.leaseOwner, W1.owner);
        }
        assert.equal((await store.get(waiting.id))!.state, 'queued', 'queued builds are not touched');
      });

      test('checkWritable resolves, again and again', async (store) => {
        await store.checkWritable();
        await store.checkWritable();
      });

      test('onQueued fires after an enqueue and a requeue (PostgreSQL: made by another store instance on the same database), until unsubscribed', async (store, { reopen }, t) => {
        if (!reopen) return t.skip('no reopen');
        let calls = 0;
        const unsubscribe = store.onQueued(() => calls++);
        if (store.kind === 'postgres') await (store as PgStore).notifier.ready();
        // PostgreSQL's wake-up must cross hosts: another instance enqueues. SQLite's is in-process.
        const writer = store.kind === 'postgres' ? await reopen() : store;
        const b = await queued(writer, request());
        await until('onQueued after enqueue', () => calls >= 1, 10_000, 10);
        await claim(writer, b.id);
        assert.ok(await writer.requeue(b.id, 0, undefined, W1.owner));
        await until('onQueued after requeue', () => calls >= 2, 10_000, 10);
        await writer.enqueueMany([request(), request()]);
        await until('onQueued after enqueueMany', () => calls >= 3, 10_000, 10);
        unsubscribe();
        const before = calls;
        let second = 0;
        store.onQueued(() => second++);
        await queued(writer, request());
        await until('another listener still hears', () => second >= 1, 10_000, 10);
        assert.equal(calls, before, 'the unsubscribed listener hears nothing');
      });

      test('reopening the same database keeps the data and does not migrate again', async (store, { reopen }, t) => {
        if (!reopen) return t.skip('no reopen');
        const b = await queued(store, request());
        await store.addNote(b.id, 'kept');
        const version = await schemaVersion(store);
        assert.ok(version >= 1);
        await store.close();
        const again = await reopen();
        assert.equal(await schemaVersion(again), version);
        const kept = (await again.get(b.id))!;
        assert.deepEqual(kept.notes, ['kept']);
        assert.equal((await again.enqueue(request({ sha: b.sha }))).outcome, 'duplicate', 'the rules survive too');
        const third = await reopen();
        assert.equal((await third.list({ limit: 10 })).length, 1);
      });

      test('a database at a schema version newer than this code knows refuses to open, naming the version', async (store, { reopen }, t) => {
        if (!reopen) return t.skip('no reopen');
        await queued(store, request());
        await setSchemaVersion(store, 99);
        await assert.rejects(reopen(), (err: Error) => {
          assert.match(err.message, /schema version 99/);
          assert.match(err.message, /knows versions up to \d+/);
          assert.doesNotMatch(err.message, /secret-pw/);
          return true;
        });
        assert.equal(await schemaVersion(store), 99, 'the refusing open wrote nothing');
      });
    });
  });
}
