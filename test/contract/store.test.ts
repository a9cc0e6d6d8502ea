import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { PgStore } from '../../src/store/postgres/pg-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { BuildRecord, Store } from '../../src/store/store.js';
import { StoreUnavailable } from '../../src/store/store-errors.js';
import { freePort } from '../support/ports.js';
import { until } from '../support/wait.js';
import { sharedPostgres, startPostgres, type TestPostgres } from '../support/postgres.js';
import { mergedAt, request, storeContract } from './store-contract.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Closes every store opened on one database or file, whichever were closed already. */
function closer() {
  const stores: Store[] = [];
  return {
    track<S extends Store>(store: S): S {
      stores.push(store);
      return store;
    },
    async closeAll() {
      for (const s of stores) await s.close().catch(() => {});
    },
  };
}

storeContract('SQLite store (DATA_DIR/dockhook.sqlite)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-contract-'));
  const c = closer();
  const open = () => c.track(new SqliteStore(dataDir));
  return {
    store: open(),
    reopen: async () => open(),
    async cleanup() {
      await c.closeAll();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

/**
 * A fresh database per case on the shared server. Through one long-lived connection: a backend's
 * first CREATE DATABASE costs ~150 ms, the following ones ~20 ms (createDatabase() connects anew each time).
 */
let admin: Promise<{ client: pg.Client; url: string }> | undefined;
let databases = 0;
async function freshDatabase(): Promise<string> {
  admin ??= (async () => {
    const { url } = await sharedPostgres();
    const client = new pg.Client({ connectionString: url.replace(/\/dockhook$/, '/postgres') });
    await client.connect();
    client.on('error', () => {});
    return { client, url };
  })();
  const { client, url } = await admin;
  const name = `contract_${process.pid}_${++databases}`;
  await client.query(`CREATE DATABASE ${name}`);
  return url.replace(/\/dockhook$/, `/${name}`);
}
after(async () => {
  if (admin) await (await admin).client.end().catch(() => {});
});

storeContract('PostgreSQL store (DATABASE_URL)', async () => {
  const url = await freshDatabase();
  const c = closer();
  const open = async () => c.track(await PgStore.open(url, log));
  return { store: await open(), reopen: open, cleanup: () => c.closeAll() };
});

describe('PostgreSQL store: many instances on one database, and the database going away', () => {
  async function instances(n: number): Promise<{ url: string; stores: PgStore[]; close: () => Promise<void> }> {
    const url = await freshDatabase();
    const stores = await Promise.all(Array.from({ length: n }, () => PgStore.open(url, log)));
    return { url, stores, close: async () => void (await Promise.all(stores.map((s) => s.close().catch(() => {})))) };
  }

  it('two PgStore.open() at once on a fresh database both succeed, and the schema is migrated once', async () => {
    const { stores, close } = await instances(2);
    try {
      const { rows } = await stores[0]!.pool.query('SELECT version FROM schema_version');
      assert.equal(rows.length, 1);
      const { build } = await stores[0]!.enqueue(request());
      assert.equal((await stores[1]!.get(build.id))?.sha, build.sha);
    } finally {
      await close();
    }
  });

  it('workers on several instances claiming at once: each build exactly once, one running build per repository at any moment, in merge order', async () => {
    const { stores, close } = await instances(4);
    try {
      const repos = ['r0', 'r1', 'r2', 'r3', 'r4'];
      // Merge times run against enqueue order within each repository, so id order is not merge order.
      const requests = Array.from({ length: 30 }, (_, i) => request({ repo: repos[i % 5]!, mergedAt: mergedAt(1000 - i * 7 + (i % 3) * 11) }));
      const results = await stores[0]!.enqueueMany(requests);
      assert.ok(results.every((r) => r.outcome === 'queued'));
      const expectedOrder = new Map(repos.map((repo) => [repo, results.map((r) => r.build).filter((b) => b.repo === repo).sort((a, b) => a.mergedAt.localeCompare(b.mergedAt) || a.id - b.id).map((b) => b.id)]));

      const claimed: BuildRecord[] = [];
      const runningNow = new Map<string, number>(); // repo → id, our own bookkeeping
      const violations: string[] = [];
      let done = 0;
      let failed = false;
      const worker = async (store: PgStore, owner: string) => {
        while (done < requests.length && !failed) {
          const build = await store.claimNext({ owner, ms: 60_000 });
          if (!build) {
            await sleep(2);
            continue;
          }
          claimed.push(build);
          if (runningNow.has(build.repo)) violations.push(`${owner} claimed ${build.id} while ${runningNow.get(build.repo)} of ${build.repo} ran`);
          runningNow.set(build.repo, build.id);
          const inStore = await store.list({ repo: `acme/${build.repo}`, state: 'running', limit: 10 });
          if (inStore.length !== 1) violations.push(`the store shows ${inStore.length} running builds of ${build.repo}`);
          await sleep(2 + Math.floor(Math.random() * 5));
          runningNow.delete(build.repo);
          assert.equal(await store.markSucceeded(build.id, owner), true);
          done++;
        }
      };
      // The store's own view, sampled throughout: never two running builds of one repository.
      const monitor = (async () => {
        while (done < requests.length && !failed) {
          const { rows } = await stores[3]!.pool.query<{ repo: string; n: number }>(
            "SELECT repo, COUNT(*)::int AS n FROM builds WHERE state = 'running' GROUP BY repo HAVING COUNT(*) > 1",
          );
          for (const r of rows) violations.push(`the store shows ${r.n} running builds of ${r.repo}`);
          await sleep(1);
        }
      })();
      await Promise.all([
        ...stores.map((s, i) => worker(s, `w${i}`).catch((err: unknown) => {
          failed = true;
          throw err;
        })),
        monitor,
      ]);

      assert.deepEqual(violations, []);
      assert.equal(claimed.length, 30, 'no build claimed twice');
      assert.equal(new Set(claimed.map((b) => b.id)).size, 30, 'every build claimed');
      assert.ok(claimed.every((b) => b.attempts === 1));
      for (const repo of repos) {
        assert.deepEqual(claimed.filter((b) => b.repo === repo).map((b) => b.id), expectedOrder.get(repo), `${repo} in merge order`);
      }
      assert.deepEqual(await stores[1]!.countByState(), { queued: 0, running: 0, succeeded: 30, failed: 0 });
      const owners = new Set(claimed.map((b) => b.leaseOwner));
      assert.ok(owners.size > 1, `the claims were spread (${[...owners].join(', ')})`);
    } finally {
      await close();
    }
  });

  it("a dead worker's lapsed lease claimed by several instances at once goes to exactly one of them", async () => {
    const { stores, close } = await instances(4);
    try {
      for (let round = 0; round < 5; round++) {
        const { build } = await stores[0]!.enqueue(request({ repo: `lapsed-${round}` }));
        assert.equal((await stores[0]!.claimNext({ owner: 'dead', ms: 100 }))?.id, build.id);
        await sleep(150);
        const claims = await Promise.all(stores.map((s, i) => s.claimNext({ owner: `w${i}`, ms: 60_000 })));
        const winners = claims.filter((c) => c !== undefined);
        assert.equal(winners.length, 1, `one taker in round ${round}`);
        assert.equal(winners[0]!.id, build.id);
        assert.equal(winners[0]!.attempts, 2);
        assert.ok(await stores[0]!.markSucceeded(build.id, winners[0]!.leaseOwner!));
      }
    } finally {
      await close();
    }
  });

  it('the same delivery and the same commit enqueued at once from several instances make exactly one build', async () => {
    const { stores, close } = await instances(4);
    try {
      for (let round = 0; round < 5; round++) {
        const r = request();
        const sameDelivery = await Promise.all(stores.flatMap((s) => [s.enqueue(r), s.enqueue(r)]));
        assert.equal(sameDelivery.filter((x) => x.outcome === 'queued').length, 1);
        assert.equal(new Set(sameDelivery.map((x) => x.build.id)).size, 1);

        const sha = request().sha;
        const deliveries = stores.map(() => request({ sha }));
        const sameCommit = await Promise.all(stores.map((s, i) => s.enqueue(deliveries[i]!)));
        assert.equal(sameCommit.filter((x) => x.outcome === 'queued').length, 1);
        const [id] = new Set(sameCommit.map((x) => x.build.id));
        assert.equal(new Set(sameCommit.map((x) => x.build.id)).size, 1);
        for (const d of deliveries) assert.equal((await stores[0]!.enqueue({ ...d, sha: 'e'.repeat(40) })).build.id, id, 'every delivery names the build');
      }
      // Batches that overlap in opposite orders: one build each, whichever waits for whom.
      const x = request();
      const y = request();
      const batches = await Promise.all(stores.map((s, i) => s.enqueueMany(i % 2 ? [x, y] : [y, x])));
      const ids = new Set(batches.flat().map((r) => r.build.id));
      assert.equal(ids.size, 2);
      assert.equal(batches.flat().filter((r) => r.outcome === 'queued').length, 2);
      assert.equal((await stores[0]!.countByState()).queued, 12);
    } finally {
      await close();
    }
  });

  it('claimVersion of one version for different commits at once from several instances: every caller gets the same commit back', async () => {
    const { stores, close } = await instances(4);
    try {
      const image = 'registry.test/acme/app';
      for (let round = 0; round < 10; round++) {
        const version = `1.0.${round}`;
        const builds = await Promise.all(stores.map(async (s) => (await s.enqueue(request({ repo: `v${round}-${Math.random()}` }))).build));
        await Promise.all(builds.map((b, i) => stores[i]!.setImage(b.id, image, version)));
        const answers = await Promise.all(builds.map((b, i) => stores[i]!.claimVersion(image, version, b.sha)));
        assert.equal(new Set(answers).size, 1, `one commit for ${version}: ${answers.join(', ')}`);
        assert.ok(builds.some((b) => b.sha === answers[0]));
      }
    } finally {
      await close();
    }
  });

  describe('PostgreSQL stopped and started again (a private server)', () => {
    let own: TestPostgres;
    before(async () => {
      own = await startPostgres();
    });
    after(async () => {
      await own?.destroy();
    });

    it('while PostgreSQL is down every call rejects with StoreUnavailable naming the URL without its password; once it is back the same instance works again', async () => {
      const url = await own.createDatabase();
      const store = await PgStore.open(url, log);
      try {
        const { build } = await store.enqueue(request());
        let woken = 0;
        store.onQueued(() => woken++);
        await store.notifier.ready();
        await own.stop();
        const calls: [string, () => Promise<unknown>][] = [
          ['get', () => store.get(build.id)],
          ['list', () => store.list({ limit: 10 })],
          ['enqueue', () => store.enqueue(request())],
          ['enqueueMany', () => store.enqueueMany([request()])],
          ['claimNext', () => store.claimNext({ owner: 'w', ms: 1000 })],
          ['countByState', () => store.countByState()],
          ['markSucceeded', () => store.markSucceeded(build.id, 'w')],
          ['requeue', () => store.requeue(build.id, 0, undefined, 'w')],
          ['checkWritable', () => store.checkWritable()],
        ];
        const redacted = url.replace('secret-pw', '***');
        for (const [name, call] of calls) {
          await assert.rejects(call(), (err: Error) => {
            assert.ok(err instanceof StoreUnavailable, `${name}: ${err.name}: ${err.message}`);
            assert.ok(err.message.includes(redacted), `${name}: names ${redacted}: ${err.message}`);
            assert.doesNotMatch(err.message, /secret-pw/);
            return true;
          });
        }
        await own.start();
        assert.equal((await store.get(build.id))?.id, build.id);
        assert.equal((await store.enqueue(request())).outcome, 'queued');
        await store.checkWritable();
        // LISTEN reconnects by itself (with backoff): enqueues wake this instance's worker again.
        const other = await PgStore.open(url, log);
        try {
          await until('LISTEN is back', async () => {
            await other.enqueue(request());
            return woken > 0;
          }, 15_000, 250);
        } finally {
          await other.close();
        }
      } finally {
        await store.close();
      }
    });
  });

  it('PgStore.open on an unreachable server rejects naming DATABASE_URL, without the password', async () => {
    const url = `postgres://dockhook:secret-pw@127.0.0.1:${await freePort()}/dockhook`;
    await assert.rejects(PgStore.open(url, log), (err: Error) => {
      assert.match(err.message, /DATABASE_URL/);
      assert.ok(err.message.includes('postgres://dockhook:***@127.0.0.1'), err.message);
      assert.doesNotMatch(err.message, /secret-pw/);
      return true;
    });
  });
});
