import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { BuildRequest } from '../../src/intake.js';
import type { PgStore } from '../../src/store/postgres/pg-store.js';
import { MIGRATIONS as PG_MIGRATIONS } from '../../src/store/postgres/schema.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/store/sqlite/schema.js';
import type { BuildRecord, Lease, PlannedImage, Store } from '../../src/store/store.js';
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

/** Claims `head` (it must be next) and plans its images under that lease. */
async function expand(store: Store, head: BuildRecord, images: PlannedImage[], lease: Lease = W1): Promise<BuildRecord[]> {
  await claim(store, head.id, lease);
  const planned = await store.expandGroup(head.id, images, `queued ${images.map((i) => i.service).join(', ')}`, lease.owner);
  assert.ok(planned, 'expandGroup under the lease queues the images');
  return planned;
}

const image = (service: string, needs: string[] = [], fingerprint?: string): PlannedImage => ({ service, needs, fingerprint });
const requestOf = (b: BuildRecord) => ({
  deliveryId: b.deliveryId, trigger: b.trigger, owner: b.owner, repo: b.repo, repoUrl: b.repoUrl, defaultBranch: b.defaultBranch,
  branch: b.branch, sha: b.sha, mergedAt: b.mergedAt, pullRequest: b.pullRequest,
});

/**
 * Replaces the store's database with one at the schema version before this
 * code's newest, holding a succeeded build (with its delivery and a push)
 * and a queued one, written with that version's SQL. The store is closed;
 * reopen() migrates it.
 */
async function previousSchemaWithRows(store: Store, rows: { succeeded: BuildRequest; queued: BuildRequest }): Promise<number> {
  const columns = 'delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, state, created_at, image, version, pushed';
  const values = (r: BuildRequest, state: string) => [
    r.deliveryId, r.trigger, r.owner, r.repo, r.repoUrl, r.defaultBranch, r.branch, r.sha, r.mergedAt, r.pullRequest?.number ?? null, r.pullRequest?.title ?? null,
    r.pullRequest?.url ?? null, state, Date.now(), state === 'succeeded' ? 'app' : null, state === 'succeeded' ? '1.0.0' : null,
    JSON.stringify(state === 'succeeded' ? [{ ref: 'registry.test/app:1.0.0', tag: '1.0.0', digest: `sha256:${'a'.repeat(64)}` }] : []),
  ];
  if (store.kind === 'sqlite') {
    const file = (store as SqliteStore).db.name;
    await store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    const previous = SQLITE_MIGRATIONS.length - 1;
    const db = new Database(file);
    for (const step of SQLITE_MIGRATIONS.slice(0, previous)) db.exec(step);
    db.pragma(`user_version = ${previous}`);
    const insert = db.prepare(`INSERT INTO builds (${columns}) VALUES (${columns.split(',').map(() => '?').join(', ')}) RETURNING id`);
    const done = insert.get(...values(rows.succeeded, 'succeeded')) as { id: number };
    db.prepare('INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES (?, ?, ?)').run(rows.succeeded.deliveryId, done.id, Date.now());
    insert.run(...values(rows.queued, 'queued'));
    db.close();
    return previous;
  }
  const pool = (store as PgStore).pool;
  const previous = PG_MIGRATIONS.length - 1;
  const { rows: tables } = await pool.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  await pool.query(`DROP TABLE ${tables.map((t) => `"${t.tablename}"`).join(', ')} CASCADE`);
  for (const step of PG_MIGRATIONS.slice(0, previous)) await pool.query(step);
  await pool.query('CREATE TABLE schema_version (version INTEGER NOT NULL)');
  await pool.query('INSERT INTO schema_version (version) VALUES ($1)', [previous]);
  const insert = `INSERT INTO builds (${columns}) VALUES (${columns.split(',').map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`;
  const done = await pool.query<{ id: number }>(insert, values(rows.succeeded, 'succeeded'));
  await pool.query('INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES ($1, $2, $3)', [rows.succeeded.deliveryId, done.rows[0]!.id, Date.now()]);
  await pool.query(insert, values(rows.queued, 'queued'));
  await store.close();
  return previous;
}

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
        assert.deepEqual(b.needs, []);
        assert.equal(b.force, false);
        for (const field of ['firstStartedAt', 'startedAt', 'finishedAt', 'image', 'version', 'failure', 'leaseOwner', 'leaseUntil', 'groupId', 'service', 'fingerprint', 'images'] as const) {
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

    describe('deployments', () => {
      const newDeployment = (buildId: number, service = 'api', version = '1.0.0') => ({
        service, version, sha: 'd'.repeat(40), digest: `sha256:${'e'.repeat(64)}`, buildId, trigger: 'merge' as const, environment: 'production',
      });

      test('one deploy per service at a time; finished ones are listed newest first with their log', async (store) => {
        const b = await queued(store, request());
        const first = (await store.createDeployment(newDeployment(b.id)))!;
        assert.equal(first.state, 'in_progress');
        assert.deepEqual(first.log, []);
        assert.equal(await store.createDeployment(newDeployment(b.id, 'api', '1.0.1')), undefined, 'a second deploy of api while one runs');
        const web = await store.createDeployment(newDeployment(b.id, 'web'));
        assert.ok(web, 'another service deploys meanwhile');
        await store.setDeploymentGithubId(first.id, 4242);
        await store.finishDeployment(first.id, 'failure', 'api-0123456 is not healthy', ['created api-0123456', 'line "quoted" ✓']);
        await store.finishDeployment(first.id, 'failure', 'api-0123456 is not healthy', ['one more']);
        const got = (await store.getDeployment(first.id))!;
        assert.equal(got.state, 'failure');
        assert.equal(got.reason, 'api-0123456 is not healthy');
        assert.equal(got.githubId, 4242);
        assert.deepEqual(got.log, ['created api-0123456', 'line "quoted" ✓', 'one more']);
        assert.ok(got.finishedAt);
        const again = await store.createDeployment(newDeployment(b.id, 'api', '1.0.1'));
        assert.ok(again, 'once the first is final, api deploys again');
        assert.deepEqual((await store.listDeployments({ service: 'api', limit: 10 })).map((d) => d.id), [again.id, first.id]);
        assert.deepEqual((await store.listDeployments({ limit: 1 })).map((d) => d.id), [again.id]);
        assert.deepEqual((await store.listDeployments({ buildId: b.id, limit: 10 })).map((d) => d.id).sort((x, y) => x - y), [first.id, web.id, again.id]);
        const skipped = await store.createDeployment({ ...newDeployment(b.id, 'worker'), state: 'skipped', reason: 'not in DEPLOY_IMAGES' });
        assert.equal(skipped!.state, 'skipped');
        assert.ok(skipped!.finishedAt);
      });

      test('buildOfVersion finds the newest succeeded build that pushed service:version', async (store) => {
        assert.equal(await store.buildOfVersion('api', '1.0.0'), undefined);
        const b = await queued(store, request());
        await claim(store, b.id);
        await store.setImage(b.id, 'api', '1.0.0');
        await store.recordPush(b.id, { ref: 'r/api:1.0.0', tag: '1.0.0', digest: `sha256:${'a'.repeat(64)}` }, false);
        assert.equal(await store.buildOfVersion('api', '1.0.0'), undefined, 'not while it runs');
        assert.ok(await store.markSucceeded(b.id, W1.owner));
        assert.equal((await store.buildOfVersion('api', '1.0.0'))?.id, b.id);
        assert.equal(await store.buildOfVersion('api', '1.0.1'), undefined);
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

      test('recordPlatform keeps one image per platform, sorted, the last recorded winning', async (store) => {
        const b = await queued(store, request());
        assert.deepEqual((await store.get(b.id))!.platforms, []);
        const d = (c: string) => `sha256:${c.repeat(64)}`;
        await store.recordPlatform(b.id, { platform: 'linux/arm64', digest: d('a'), tag: '_platform-abc1234-linux-arm64' });
        await store.recordPlatform(b.id, { platform: 'linux/amd64', digest: d('b'), tag: '_platform-abc1234-linux-amd64' });
        await store.recordPlatform(b.id, { platform: 'linux/arm64', digest: d('c'), tag: '_platform-abc1234-linux-arm64' });
        const expected = [
          { platform: 'linux/amd64', digest: d('b'), tag: '_platform-abc1234-linux-amd64' },
          { platform: 'linux/arm64', digest: d('c'), tag: '_platform-abc1234-linux-arm64' },
        ];
        assert.deepEqual((await store.get(b.id))!.platforms, expected);
        assert.deepEqual((await store.list({ limit: 10 })).find((x) => x.id === b.id)!.platforms, expected);
      });

      test('recordArtifact keeps one per name and platform, sorted by name then platform', async (store) => {
        const b = await queued(store, request());
        assert.deepEqual((await store.get(b.id))!.artifacts, []);
        const art = (name: string, platform: string | undefined, c: string) => ({
          name, ...(platform ? { platform } : {}), path: `/out/${name}`, repository: 'app', tag: `_artifact-abc1234-${name}`,
          digest: `sha256:${c.repeat(64)}`, layerDigest: `sha256:${c.repeat(63)}0`, size: 42,
        });
        await store.recordArtifact(b.id, art('dist', 'linux/arm64', 'a'));
        await store.recordArtifact(b.id, art('docs', undefined, 'b'));
        await store.recordArtifact(b.id, art('dist', 'linux/amd64', 'c'));
        await store.recordArtifact(b.id, art('dist', 'linux/arm64', 'd'));
        await store.recordArtifact(b.id, art('docs', undefined, 'e'));
        const expected = [art('dist', 'linux/amd64', 'c'), art('dist', 'linux/arm64', 'd'), art('docs', undefined, 'e')];
        assert.deepEqual((await store.get(b.id))!.artifacts, expected);
        assert.deepEqual((await store.list({ limit: 10 })).find((x) => x.id === b.id)!.artifacts, expected);
      });

      test('platforms and artifacts belong to their build and survive reopening the database', async (store, { reopen }, t) => {
        if (!reopen) return t.skip('no reopen');
        const b = await queued(store, request());
        const other = await queued(store, request());
        const platform = { platform: 'linux/arm64', digest: `sha256:${'a'.repeat(64)}`, tag: '_platform-abc1234-linux-arm64' };
        const artifact = {
          name: 'dist', path: '/app/dist', repository: 'app', tag: '_artifact-abc1234-dist',
          digest: `sha256:${'b'.repeat(64)}`, layerDigest: `sha256:${'c'.repeat(64)}`, size: 7,
        };
        await store.recordPlatform(b.id, platform);
        await store.recordArtifact(b.id, artifact);
        await store.close();
        const again = await reopen();
        const kept = (await again.get(b.id))!;
        assert.deepEqual([kept.platforms, kept.artifacts], [[platform], [artifact]]);
        assert.equal('platform' in kept.artifacts[0]!, false, 'an artifact without a platform reads back without the key');
        assert.deepEqual([kept.pushed, kept.notes], [[], []], 'the other lists are untouched');
        const untouched = (await again.list({ limit: 10 })).find((x) => x.id === other.id)!;
        assert.deepEqual([untouched.platforms, untouched.artifacts], [[], []]);
      });

      test('setImage records the image and version, and the fingerprint when given', async (store) => {
        const b = await queued(store, request());
        await store.setImage(b.id, 'registry.test/acme/app', '1.2.3');
        const after = (await store.get(b.id))!;
        assert.equal(after.image, 'registry.test/acme/app');
        assert.equal(after.version, '1.2.3');
        assert.equal(after.fingerprint, undefined);
        await store.setImage(b.id, 'registry.test/acme/app', '1.2.4', 'sha256:f1');
        assert.equal((await store.get(b.id))!.fingerprint, 'sha256:f1');
        await store.setImage(b.id, 'registry.test/acme/app', '1.2.5');
        const kept = (await store.get(b.id))!;
        assert.deepEqual([kept.version, kept.fingerprint], ['1.2.5', 'sha256:f1'], 'no fingerprint given: the one recorded stays');
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

      test('versionsOf lists the bound versions of one image', async (store) => {
        const image = `registry.test/acme/versions-${Math.random().toString(36).slice(2, 8)}`;
        const first = await queued(store, request());
        await store.claimVersion(image, '2.0.0', first.sha);
        await store.claimVersion(image, '10.0.0', first.sha);
        await store.claimVersion(`${image}-other`, '3.0.0', first.sha);
        assert.deepEqual(await store.versionsOf(image), ['10.0.0', '2.0.0']);
        await store.releaseVersion(image, '2.0.0');
        assert.deepEqual(await store.versionsOf(image), ['10.0.0']);
        assert.deepEqual(await store.versionsOf('registry.test/nothing'), []);
      });

      test('claimRetention is true exactly once per build', async (store) => {
        const a = await queued(store, request());
        const b = await queued(store, request());
        assert.deepEqual(await Promise.all([store.claimRetention(a.id), store.claimRetention(a.id), store.claimRetention(a.id)]).then((r) => r.filter(Boolean).length), 1);
        assert.equal(await store.claimRetention(a.id), false);
        assert.equal(await store.claimRetention(b.id), true);
      });
    });


    describe('forced builds', () => {
      test('a forced request for a commit with a succeeded build is queued; another forced one while it is live is a duplicate; an unforced one stays a duplicate of the success', async (store) => {
        const done = await queued(store, request({ trigger: 'manual' }));
        await finish(store, done, 'succeeded');
        const unforced = await store.enqueue(request({ trigger: 'manual', sha: done.sha }));
        assert.equal(unforced.outcome, 'duplicate');
        assert.equal(unforced.build.id, done.id);

        const forcedRequest = request({ trigger: 'manual', sha: done.sha, force: true, images: ['api', 'web'] });
        const forced = await queued(store, forcedRequest);
        assert.notEqual(forced.id, done.id);
        assert.equal(forced.force, true);
        assert.deepEqual(forced.images, ['api', 'web']);
        assert.deepEqual(await store.get(forced.id), forced);

        const second = request({ trigger: 'manual', sha: done.sha, force: true });
        const dup = await store.enqueue(second);
        assert.equal(dup.outcome, 'duplicate', 'a forced build of the commit is queued already');
        assert.equal(dup.build.id, forced.id);
        assert.equal((await store.enqueue({ ...second, sha: 'f'.repeat(40) })).build.id, forced.id, 'that delivery now names the forced build');
        const stillUnforced = await store.enqueue(request({ sha: done.sha }));
        assert.equal(stillUnforced.outcome, 'duplicate', 'forcing changes nothing for unforced requests');
        assert.equal(stillUnforced.build.id, done.id);

        await claim(store, forced.id);
        const whileRunning = await store.enqueue(request({ trigger: 'manual', sha: done.sha, force: true }));
        assert.equal(whileRunning.outcome, 'duplicate', 'running is live too');
        assert.equal(whileRunning.build.id, forced.id);
        assert.ok(await store.markSucceeded(forced.id, W1.owner));
        const again = await queued(store, request({ trigger: 'manual', sha: done.sha, force: true }));
        assert.ok(again.id > forced.id, 'once the forced build is over, forcing builds again');
        assert.deepEqual(await store.enqueueMany([request({ sha: done.sha }), request({ sha: done.sha, force: true })]).then((r) => r.map((x) => [x.outcome, x.build.id])), [
          ['duplicate', done.id],
          ['duplicate', again.id],
        ]);
      });

      test("a forced head's image builds are forced too", async (store) => {
        const head = await queued(store, request({ trigger: 'manual', force: true, images: ['api'] }));
        const [api] = await expand(store, head, [image('api')]);
        assert.equal(api!.force, true);
        assert.equal(api!.images, undefined, "the head's selection is the head's: it planned only those images");
      });
    });

    describe('multi-image merges', () => {
      test('expandGroup queues one build per image with the head\'s request, its needs and fingerprint, and marks the head succeeded with the note', async (store) => {
        const head = await queued(store, request({ repo: 'mono', pullRequest: { number: 7, title: 'three images', url: 'https://github.com/acme/mono/pull/7' } }));
        await claim(store, head.id);
        const plan = [image('base', [], 'sha256:base'), image('web'), image('api', ['web', 'base'], 'sha256:api')];
        assert.equal(await store.expandGroup(head.id, plan, 'not mine', W2.owner), undefined, "another worker's lease: refused");
        assert.deepEqual(await store.listGroup(head.id), [], 'and nothing written');
        const untouched = (await store.get(head.id))!;
        assert.deepEqual([untouched.state, untouched.notes, untouched.leaseOwner], ['running', [], W1.owner]);

        const t0 = Date.now();
        const images = (await store.expandGroup(head.id, plan, 'dockerInfo.json lists 3 images', W1.owner))!;
        assert.deepEqual(images.map((b) => b.service), ['base', 'web', 'api'], 'in the order given');
        for (const b of images) {
          assert.deepEqual(requestOf(b), requestOf(head), `${b.service} carries the head's request`);
          assert.equal(b.groupId, head.id);
          assert.equal(b.state, 'queued');
          assert.equal(b.attempts, 0);
          assert.equal(b.force, false);
          assert.equal(b.images, undefined);
          assert.deepEqual([b.pushed, b.notes, b.latestPushed, b.leaseOwner, b.image, b.failure], [[], [], false, undefined, undefined, undefined]);
          assert.ok(b.createdAt >= t0 - 1000 && b.createdAt <= Date.now() + 1000, 'created now');
          assert.ok(b.id > head.id);
          assert.deepEqual(await store.get(b.id), b);
        }
        const [base, web, api] = images as [BuildRecord, BuildRecord, BuildRecord];
        assert.deepEqual([base.needs, web.needs, api.needs], [[], [], ['base', 'web']], 'needs by service name, sorted');
        assert.deepEqual([base.fingerprint, web.fingerprint, api.fingerprint], ['sha256:base', undefined, 'sha256:api']);
        assert.deepEqual(await store.listGroup(head.id), [...images].sort((a, b) => a.id - b.id));
        assert.deepEqual(await store.listGroup(base.id), [], 'an image build is no group');

        const after = (await store.get(head.id))!;
        assert.equal(after.state, 'succeeded');
        assert.deepEqual(after.notes, ['dockerInfo.json lists 3 images']);
        assert.deepEqual([after.leaseOwner, after.leaseUntil, after.failure, after.groupId], [undefined, undefined, undefined, undefined]);
        assert.ok(after.finishedAt! >= t0 - 1000);
        assert.equal(await store.expandGroup(head.id, plan, 'again', W1.owner), undefined, 'a finished head is not planned twice');
        assert.equal((await store.listGroup(head.id)).length, 3);
        assert.equal(await store.markSucceeded(head.id, W1.owner), false, 'the head is finished already');

        const redelivered = await store.enqueue(request({ repo: 'mono', sha: head.sha }));
        assert.equal(redelivered.outcome, 'duplicate', 'the image builds do not make the commit buildable again');
        assert.equal(redelivered.build.id, head.id);
        assert.deepEqual((await store.list({ repo: 'acme/mono', limit: 10 })).map((b) => b.id), [head.id, ...images.map((b) => b.id)].sort((a, b) => b - a));
        assert.equal((await store.list({ limit: 10 })).find((b) => b.id === api.id)!.needs.length, 2, 'list reads needs too');
      });

      test('expandGroup refuses a plan whose need names no image of the plan, and writes nothing', async (store) => {
        const head = await queued(store, request());
        await claim(store, head.id);
        await assert.rejects(store.expandGroup(head.id, [image('api', ['bsae']), image('base')], 'n', W1.owner), /bsae/);
        await assert.rejects(store.expandGroup(head.id, [image('api'), image('api')], 'n', W1.owner), /api/);
        assert.deepEqual(await store.listGroup(head.id), []);
        assert.equal((await store.get(head.id))!.state, 'running');
        assert.deepEqual(await store.expandGroup(head.id, [], 'nothing to build', W1.owner), [], 'an empty plan just ends the head');
        assert.equal((await store.get(head.id))!.state, 'succeeded');
      });

      test('the images of one merge are claimed in parallel; one that needs another waits until that one is final, succeeded or failed', async (store) => {
        const head = await queued(store, request({ repo: 'mono' }));
        const [base, web, api, docs] = await expand(store, head, [image('base'), image('web'), image('api', ['base']), image('docs', ['api', 'web'])]);
        assert.equal((await store.claimNext(W1))?.id, base!.id);
        assert.equal((await store.claimNext(W2))?.id, web!.id, 'web runs beside base');
        assert.equal(await store.claimNext(W2), undefined, 'api waits for base, docs for api and web');
        assert.deepEqual((await store.list({ state: 'running', limit: 10 })).map((b) => b.id).sort(), [base!.id, web!.id].sort());
        assert.ok(await store.markSucceeded(base!.id, W1.owner));
        assert.equal((await store.claimNext(W1))?.id, api!.id);
        assert.equal(await store.claimNext(W1), undefined, 'docs waits for both');
        assert.ok(await store.markFailed(web!.id, 'web broke', W2.owner));
        assert.equal(await store.claimNext(W2), undefined, 'docs still waits for api');
        assert.ok(await store.requeue(api!.id, 0, 'registry down', W1.owner));
        assert.equal((await store.claimNext(W2))?.id, api!.id, 'a requeued need is not final');
        assert.ok(await store.markFailed(api!.id, 'api broke', W2.owner));
        const last = await claim(store, docs!.id, W1);
        assert.deepEqual(last.needs, ['api', 'web'], 'failed needs are final: the pipeline decides what that means');
      });

      test('the next merge of the repository waits for every image of the group before it, although its head id is lower', async (store) => {
        const first = await queued(store, request({ repo: 'mono', mergedAt: mergedAt(10) }));
        const second = await queued(store, request({ repo: 'mono', mergedAt: mergedAt(10) }));
        const other = await queued(store, request({ repo: 'elsewhere', mergedAt: mergedAt(20) }));
        const [lib, app] = await expand(store, first, [image('lib'), image('app', ['lib'])]);
        assert.ok(lib!.id > second.id && app!.id > second.id, 'the images came after the second merge');
        assert.equal((await store.claimNext(W1))?.id, lib!.id, 'the first merge goes on');
        assert.equal((await store.claimNext(W2))?.id, other.id, 'other repositories are not held back');
        assert.equal(await store.claimNext(W2), undefined, 'app waits for lib, the second merge for the first');
        assert.ok(await store.markSucceeded(lib!.id, W1.owner));
        assert.equal((await store.claimNext(W2))?.id, app!.id);
        assert.equal(await store.claimNext(W1), undefined, 'one image of the first merge still runs');
        assert.ok(await store.requeue(app!.id, 0, 'stopping', W2.owner));
        assert.equal((await store.claimNext(W1))?.id, app!.id, 'a queued image of the first merge still goes first');
        assert.ok(await store.markSucceeded(app!.id, W1.owner));
        assert.equal((await store.claimNext(W1))?.id, second.id, 'now the second merge');

        // A later merge waits for the second merge's images just the same.
        const third = await queued(store, request({ repo: 'mono', mergedAt: mergedAt(30) }));
        const [solo] = (await store.expandGroup(second.id, [image('solo')], 'one image', W1.owner))!;
        assert.equal((await store.claimNext(W1))?.id, solo!.id, 'the image before the later merge');
        assert.equal(await store.claimNext(W2), undefined, 'the third merge waits for solo');
        assert.ok(await store.markFailed(solo!.id, 'boom', W1.owner));
        assert.equal((await store.claimNext(W2))?.id, third.id);
      });

      test('several claimers at once: every build once, needs final before their dependents start, the merges of a repository one after another', async (store) => {
        const plan = [image('a'), image('b', ['a']), image('c', ['a']), image('d', ['b', 'c'])];
        const heads = [
          await queued(store, request({ repo: 'mono', mergedAt: mergedAt(5) })),
          await queued(store, request({ repo: 'mono', mergedAt: mergedAt(5) })),
          await queued(store, request({ repo: 'mono', mergedAt: mergedAt(9) })),
        ];
        await queued(store, request({ repo: 'plain', mergedAt: mergedAt(1) }));
        const total = heads.length * (1 + plan.length) + 1;
        const claimed: BuildRecord[] = [];
        const running = new Map<number, number>(); // build id → group key, our own bookkeeping
        const violations: string[] = [];
        let failed = false;
        const worker = async (owner: string) => {
          while (claimed.length < total && !failed) {
            const b = await store.claimNext({ owner, ms: 60_000 });
            if (!b) {
              await sleep(2);
              continue;
            }
            claimed.push(b);
            const key = b.groupId ?? b.id;
            for (const [id, other] of running) {
              const o = claimed.find((c) => c.id === id)!;
              if (o.repo === b.repo && other !== key) violations.push(`${owner} claimed ${b.id} (merge ${key}) while ${id} (merge ${other}) ran`);
            }
            if (b.needs.length) {
              const group = await store.listGroup(b.groupId!);
              for (const n of group.filter((g) => b.needs.includes(g.service!))) {
                if (n.state !== 'succeeded') violations.push(`${b.service} of ${key} started while ${n.service} was ${n.state}`);
              }
            }
            running.set(b.id, key);
            await sleep(1 + Math.floor(Math.random() * 8));
            running.delete(b.id);
            if (b.repo === 'mono' && b.groupId === undefined) assert.ok(await store.expandGroup(b.id, plan, 'planned', owner));
            else assert.ok(await store.markSucceeded(b.id, owner));
          }
        };
        await Promise.all(['w1', 'w2', 'w3'].map((w) => worker(w).catch((err: unknown) => {
          failed = true;
          throw err;
        })));
        assert.deepEqual(violations, []);
        assert.equal(new Set(claimed.map((b) => b.id)).size, total, 'every build claimed, none twice');
        const order = claimed.filter((b) => b.repo === 'mono').map((b) => heads.findIndex((h) => h.id === (b.groupId ?? b.id)));
        assert.deepEqual(order, [...order].sort(), 'merge by merge, in merge order');
        assert.deepEqual(await store.countByState(), { queued: 0, running: 0, succeeded: total, failed: 0 });
      });

      test("a lapsed lease of an image build is taken over like any other build's", async (store) => {
        const head = await queued(store, request({ repo: 'mono' }));
        const [a, b] = await expand(store, head, [image('a'), image('b')]);
        assert.equal((await store.claimNext({ owner: 'dead', ms: 100 }))?.id, a!.id);
        assert.equal((await store.claimNext(W1))?.id, b!.id);
        const taken = await until('the lapsed lease is taken over', async () => (await store.claimNext(W2)) ?? false, 10_000, 20);
        assert.equal(taken.id, a!.id);
        assert.equal(taken.attempts, 2);
      });

      test('markFailed of an image build fails the head, so a redelivery of the merge builds again; markSucceeded leaves the head alone', async (store) => {
        const r = request({ repo: 'mono' });
        const head = await queued(store, r);
        const [base, api] = await expand(store, head, [image('base'), image('api', ['base'])]);
        await claim(store, base!.id);
        assert.ok(await store.markSucceeded(base!.id, W1.owner));
        assert.equal((await store.get(head.id))!.state, 'succeeded');
        assert.equal((await store.enqueue(request({ repo: 'mono', sha: r.sha }))).outcome, 'duplicate', 'while no image failed');

        await claim(store, api!.id);
        assert.ok(await store.markFailed(api!.id, 'docker build failed', W1.owner));
        const failedApi = (await store.get(api!.id))!;
        assert.deepEqual([failedApi.state, failedApi.failure], ['failed', 'docker build failed']);
        const failedHead = (await store.get(head.id))!;
        assert.deepEqual([failedHead.state, failedHead.failure], ['failed', 'api failed']);
        assert.equal((await store.get(base!.id))!.state, 'succeeded', 'the other images stay as they are');

        const redelivery = await store.enqueue(request({ repo: 'mono', sha: r.sha }));
        assert.equal(redelivery.outcome, 'queued');
        assert.ok(redelivery.build.id > api!.id);
        assert.equal(redelivery.build.groupId, undefined);
        const headDelivery = await store.enqueue(r);
        assert.deepEqual([headDelivery.outcome, headDelivery.build.id], ['duplicate', redelivery.build.id], "the head's own delivery: its build failed, and the commit's fresh build is live");
      });

      test('once the head failed, another failed image leaves its failure as it was', async (store) => {
        const head = await queued(store, request({ repo: 'mono' }));
        const [a, b] = await expand(store, head, [image('a'), image('b')]);
        await claim(store, a!.id, W1);
        await claim(store, b!.id, W2);
        assert.ok(await store.markFailed(b!.id, 'b broke', W2.owner));
        assert.ok(await store.markFailed(a!.id, 'a broke', W1.owner));
        assert.equal((await store.get(head.id))!.failure, 'b failed');
        assert.equal(await store.markFailed(a!.id, 'again', W1.owner), false);
      });

      test('lastSuccess is the latest merge (then the highest id) of the image that succeeded and pushed something', async (store) => {
        const push = (tag: string) => ({ ref: `registry.test/api:${tag}`, tag, digest: `sha256:${'c'.repeat(64)}` });
        assert.equal(await store.lastSuccess('api'), undefined);
        // Each in its own repository: all run at once, and they end in an order of the test's choosing.
        const late = await queued(store, request({ repo: 'r-late', mergedAt: mergedAt(20) }));
        const early = await queued(store, request({ repo: 'r-early', mergedAt: mergedAt(10) }));
        const empty = await queued(store, request({ repo: 'r-empty', mergedAt: mergedAt(30) }));
        const failed = await queued(store, request({ repo: 'r-failed', mergedAt: mergedAt(40) }));
        const running = await queued(store, request({ repo: 'r-running', mergedAt: mergedAt(50) }));
        const otherImage = await queued(store, request({ repo: 'r-other', mergedAt: mergedAt(60) }));
        for (const b of [early, late, empty, failed, running, otherImage]) {
          await claim(store, b.id);
          await store.setImage(b.id, b === otherImage ? 'web' : 'api', '1', `fp-${b.id}`);
          if (b !== empty) await store.recordPush(b.id, push(`v${b.id}`), false);
        }
        assert.equal(await store.lastSuccess('api'), undefined, 'nothing succeeded yet');
        assert.ok(await store.markSucceeded(late.id, W1.owner));
        assert.ok(await store.markSucceeded(early.id, W1.owner));
        assert.ok(await store.markSucceeded(empty.id, W1.owner));
        assert.ok(await store.markFailed(failed.id, 'push failed', W1.owner));
        assert.ok(await store.markSucceeded(otherImage.id, W1.owner));
        const last = (await store.lastSuccess('api'))!;
        assert.equal(last.id, late.id, 'the later merge, though it ended first and has the lower id; not the one that pushed nothing, the failed or the running one');
        assert.equal(last.fingerprint, `fp-${late.id}`);
        assert.deepEqual(last, await store.get(late.id));
        assert.equal((await store.lastSuccess('web'))?.id, otherImage.id);

        const tie = await queued(store, request({ repo: 'r-tie', mergedAt: mergedAt(20) }));
        await claim(store, tie.id);
        await store.setImage(tie.id, 'api', '1');
        await store.recordPush(tie.id, push('tie'), false);
        assert.ok(await store.markSucceeded(tie.id, W1.owner));
        assert.equal((await store.lastSuccess('api'))?.id, tie.id, 'an equal merge time: the higher id');
        assert.equal(await store.lastSuccess('nope'), undefined);
      });
    });

    describe('delivery recovery (missed deliveries, issue 15)', () => {
      test('storedDeliveries: the GUIDs a build was recorded for, failed builds and duplicates included, and no others', async (store) => {
        const failing = request({ repo: 'other' });
        await finish(store, await queued(store, failing), 'failed');
        const kept = request();
        const build = await queued(store, kept);
        const sameCommit = request({ sha: kept.sha });
        assert.equal((await store.enqueue(sameCommit)).outcome, 'duplicate');
        assert.equal(build.deliveryId, kept.deliveryId);
        const found = await store.storedDeliveries([kept.deliveryId, sameCommit.deliveryId, failing.deliveryId, 'never-seen', kept.deliveryId]);
        assert.deepEqual([...found].sort(), [kept.deliveryId, sameCommit.deliveryId, failing.deliveryId].sort());
        assert.deepEqual(await store.storedDeliveries([]), new Set());
        const many = Array.from({ length: 1200 }, (_, i) => `unknown-${i}`);
        assert.deepEqual([...(await store.storedDeliveries([...many, failing.deliveryId]))], [failing.deliveryId], 'more GUIDs than one statement binds');
      });

      test('a hook’s checkpoint: unset at first, then only moves forward, one per hook, and survives reopening', async (store, { reopen }) => {
        const app = 'app:42';
        const repo = 'repo:acme/app:7';
        assert.equal(await store.recoveryCheckpoint(app), undefined);
        await store.setRecoveryCheckpoint(app, 1_700_000_000_000);
        await store.setRecoveryCheckpoint(repo, 1_600_000_000_000);
        await store.setRecoveryCheckpoint(app, 1_650_000_000_000);
        assert.equal(await store.recoveryCheckpoint(app), 1_700_000_000_000, 'never back');
        await store.setRecoveryCheckpoint(app, 1_800_000_000_123);
        assert.equal(await store.recoveryCheckpoint(app), 1_800_000_000_123);
        assert.equal(await store.recoveryCheckpoint(repo), 1_600_000_000_000);
        if (reopen) assert.equal(await (await reopen()).recoveryCheckpoint(app), 1_800_000_000_123);
      });

      test('a GUID is claimed for redelivery once; its state settles once; release frees only a requested one', async (store, { reopen }) => {
        const before = Date.now();
        assert.equal(await store.claimRedelivery({ guid: 'g-1', hook: 'app:42', attemptId: 9_000_000_001 }), true);
        assert.equal(await store.claimRedelivery({ guid: 'g-1', hook: 'repo:acme/app:7', attemptId: 5 }), false, 'never twice, from any hook');
        assert.equal(await store.claimRedelivery({ guid: 'g-2', hook: 'app:42', attemptId: 12 }), true);
        const asked = await store.redeliveries(['g-1', 'g-2', 'g-3']);
        assert.deepEqual([...asked.keys()].sort(), ['g-1', 'g-2']);
        const g1 = asked.get('g-1')!;
        assert.deepEqual({ ...g1, requestedAt: 0 }, { guid: 'g-1', hook: 'app:42', attemptId: 9_000_000_001, state: 'requested', requestedAt: 0 });
        assert.ok(g1.requestedAt >= before - 1000 && g1.requestedAt <= Date.now() + 1000, 'requestedAt is now');
        assert.deepEqual(await store.redeliveries([]), new Map());

        assert.equal(await store.settleRedelivery('g-1', 'failed'), true);
        assert.equal(await store.settleRedelivery('g-1', 'delivered'), false, 'settled once');
        const settled = (await store.redeliveries(['g-1'])).get('g-1')!;
        assert.equal(settled.state, 'failed');
        assert.ok(settled.settledAt !== undefined && settled.settledAt >= settled.requestedAt);
        await store.releaseRedelivery('g-1');
        assert.equal(await store.claimRedelivery({ guid: 'g-1', hook: 'app:42', attemptId: 1 }), false, 'a settled one stays, so it is never asked for again');

        await store.releaseRedelivery('g-2');
        assert.equal((await store.redeliveries(['g-2'])).size, 0, 'a requested one is released');
        assert.equal(await store.claimRedelivery({ guid: 'g-2', hook: 'app:42', attemptId: 13 }), true, 'and may be asked for again');
        assert.equal(await store.settleRedelivery('never-asked', 'refused'), false);
        if (reopen) assert.equal((await (await reopen()).redeliveries(['g-1'])).get('g-1')?.state, 'failed', 'survives reopening');
      });

      test('forgetRedeliveries drops the requests made before a time, and counts them', async (store) => {
        await store.claimRedelivery({ guid: 'old', hook: 'app:1', attemptId: 1 });
        await sleep(20);
        const cut = Date.now();
        await sleep(20);
        await store.claimRedelivery({ guid: 'new', hook: 'app:1', attemptId: 2 });
        // PostgreSQL stamps with the database's clock; the cut is taken between the two by ours, with 20 ms either side.
        assert.equal(await store.forgetRedeliveries(cut), 1);
        assert.deepEqual([...(await store.redeliveries(['old', 'new'])).keys()], ['new']);
        assert.equal(await store.claimRedelivery({ guid: 'old', hook: 'app:1', attemptId: 3 }), true, 'forgotten: GitHub lists none that old');
      });

      test('withRecoveryLock: fn runs and its value comes back; while it runs no other pass gets the lock (PostgreSQL: from any instance); a throwing fn lets go', async (store, { reopen }) => {
        assert.equal(await store.withRecoveryLock(async () => 'done'), 'done');
        const other = store.kind === 'postgres' && reopen ? await reopen() : undefined;
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let entered!: () => void;
        const inside = new Promise<void>((r) => (entered = r));
        const first = store.withRecoveryLock(async () => {
          entered();
          await held;
          return 1;
        });
        await inside;
        let ran = false;
        assert.equal(await store.withRecoveryLock(async () => (ran = true)), undefined, 'same instance');
        if (other) assert.equal(await other.withRecoveryLock(async () => (ran = true)), undefined, 'another instance on the database');
        assert.equal(ran, false, 'fn is not called without the lock');
        release();
        assert.equal(await first, 1);
        if (other) assert.equal(await other.withRecoveryLock(async () => 2), 2, 'free again once the pass ended');
        await assert.rejects(store.withRecoveryLock(async () => { throw new Error('pass broke'); }), /pass broke/);
        assert.equal(await (other ?? store).withRecoveryLock(async () => 3), 3, 'a throwing pass let go of the lock');
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

      test('a database at the previous schema version is migrated, and its builds read back as before (no needs, not forced)', async (store, { reopen }, t) => {
        if (!reopen) return t.skip('no reopen');
        const succeeded = request({ repo: 'old', mergedAt: mergedAt(1), pullRequest: { number: 3, title: 'old', url: 'https://github.com/acme/old/pull/3' } });
        const waiting = request({ repo: 'old', mergedAt: mergedAt(2), pullRequest: undefined });
        const previous = await previousSchemaWithRows(store, { succeeded, queued: waiting });
        const migrated = await reopen();
        assert.ok(await schemaVersion(migrated) > previous);
        const [newer, older] = await migrated.list({ limit: 10 });
        assert.deepEqual(requestOf(older!), succeeded);
        assert.deepEqual(requestOf(newer!), waiting);
        for (const b of [older!, newer!]) {
          assert.deepEqual(b.needs, []);
          assert.equal(b.force, false);
          assert.deepEqual([b.platforms, b.artifacts], [[], []]);
          for (const field of ['groupId', 'service', 'fingerprint', 'images'] as const) assert.equal(b[field], undefined, `${field} of a migrated build`);
        }
        assert.deepEqual([older!.state, older!.image, older!.pushed.length], ['succeeded', 'app', 1]);
        assert.equal((await migrated.lastSuccess('app'))?.id, older!.id);
        assert.equal((await migrated.enqueue(succeeded)).build.id, older!.id, 'the delivery is still known');
        assert.equal((await migrated.enqueue(request({ repo: 'old', sha: succeeded.sha }))).outcome, 'duplicate', 'the commit rule holds for old rows');
        assert.equal((await migrated.enqueue(request({ repo: 'old', sha: succeeded.sha, force: true }))).outcome, 'queued');
        assert.equal((await migrated.claimNext(W1))?.id, newer!.id, 'the old queued build is claimed as before');
        assert.equal(await migrated.claimNext(W2), undefined, 'and holds its repository');
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
