import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { completeLines } from '../../src/logs/build-logs.js';
import { PgBuildLogs } from '../../src/logs/pg-logs.js';
import { PgStore } from '../../src/store/postgres/pg-store.js';
import { sharedPostgres } from '../support/postgres.js';
import { until } from '../support/wait.js';

const silent = pino({ level: 'silent' });

/** Two processes' worth of store + logs on one database: the worker's host and a receiver's. */
async function twoHosts() {
  const url = await (await sharedPostgres()).createDatabase();
  const open = async () => {
    const store = await PgStore.open(url, silent);
    await store.notifier.ready();
    return { store, logs: new PgBuildLogs(store.pool, store.notifier, silent) };
  };
  return { worker: await open(), receiver: await open() };
}

const request = (sha: string) => ({
  deliveryId: `d-${sha}`, trigger: 'merge' as const, owner: 'o', repo: 'r', repoUrl: 'https://github.com/o/r', defaultBranch: 'main',
  branch: 'main', sha, mergedAt: new Date().toISOString(),
});

describe('build logs in PostgreSQL (real PostgreSQL)', () => {
  it('100k lines cost a few hundred round trips, and a follower on another host gets every one, in order', async () => {
    const { worker, receiver } = await twoHosts();
    try {
      const { build } = await worker.store.enqueue(request('a'.repeat(40)));
      await worker.store.claimNext({ owner: 'w', ms: 60_000 });
      const writer = worker.logs.writer(build.id);
      writer.line('first');
      await until('the receiver to see the writer', () => receiver.logs.isOpen(build.id) || undefined, 10_000);
      const got: [string, number][] = [];
      let ended = false;
      const unfollow = await receiver.logs.follow(build.id, 0, (line, n) => got.push([line, n]), () => (ended = true));
      assert.ok(unfollow, 'a running build is followed, not just read');
      const total = 100_000;
      for (let i = 2; i <= total; i++) {
        writer.line(`line ${i}`);
        if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
      }
      await writer.close();
      await until('the follower to hear the end', () => ended || undefined, 30_000);
      assert.equal(got.length, total);
      assert.deepEqual(got.map(([, n]) => n), Array.from({ length: total }, (_, i) => i + 1), 'numbered 1..n, none twice');
      assert.ok(got.at(-1)![0].endsWith(`line ${total}`));
      assert.ok(worker.logs.batches <= 1000, `${worker.logs.batches} round trips for ${total} lines`);
      assert.equal(completeLines(await receiver.logs.read(build.id)).length, total);
    } finally {
      for (const h of [worker, receiver]) await h.store.close();
    }
  });

  it("a retry appends after the first attempt's lines, and a finished build is read, not followed", async () => {
    const { worker, receiver } = await twoHosts();
    try {
      const { build } = await worker.store.enqueue(request('b'.repeat(40)));
      for (const attempt of [1, 2]) {
        const w = worker.logs.writer(build.id);
        w.line(`attempt ${attempt} a\nattempt ${attempt} b`);
        await w.close();
      }
      const lines = completeLines(await receiver.logs.read(build.id)).map((l) => l.replace(/^\S+ /, ''));
      assert.deepEqual(lines, ['attempt 1 a', 'attempt 1 b', 'attempt 2 a', 'attempt 2 b']);
      const seen: number[] = [];
      const unfollow = await receiver.logs.follow(build.id, 2, (_l, n) => seen.push(n), () => {});
      assert.equal(unfollow, undefined, 'nothing to follow');
      assert.deepEqual(seen, [3, 4], 'from the line asked for');
    } finally {
      for (const h of [worker, receiver]) await h.store.close();
    }
  });
});
