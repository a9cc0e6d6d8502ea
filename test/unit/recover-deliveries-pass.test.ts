import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { DeliveryAttempt } from '../../src/github/recover-deliveries-decide.js';
import { RecoveryProblem, type DeliveryHook } from '../../src/github/recover-deliveries-hooks.js';
import { GITHUB_WINDOW_MS, OVERLAP_MS, recoverHook } from '../../src/github/recover-deliveries-pass.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const log = pino({ level: 'silent' });
const NOW = Date.UTC(2026, 5, 10, 12);
const MIN = 60_000;

/** A hook whose listing is `attempts` (newest first, `perPage` a page, paged by cursor) and whose redelivery answers are scripted. */
function scriptedHook(attempts: DeliveryAttempt[], o: { perPage?: number; redeliverFails?: (id: number) => unknown; listFails?: () => unknown } = {}) {
  const sorted = [...attempts].sort((a, b) => b.id - a.id);
  const perPage = o.perPage ?? 100;
  const cursors: (string | undefined)[] = [];
  const redelivered: number[] = [];
  const hook: DeliveryHook = {
    key: 'repo:acme/app:7',
    label: "acme/app's webhook 7",
    async page(cursor) {
      cursors.push(cursor);
      const failure = o.listFails?.();
      if (failure) throw failure;
      const start = cursor ? Number(cursor.slice(3)) : 0;
      const page = sorted.slice(start, start + perPage);
      return { attempts: page, next: start + perPage < sorted.length ? `v1_${start + perPage}` : undefined };
    },
    async redeliver(id) {
      const failure = o.redeliverFails?.(id);
      if (failure) throw failure;
      redelivered.push(id);
    },
  };
  return { hook, cursors, redelivered };
}

let ids = 1000;
function attempt(guid: string, statusCode: number, minutesAgo: number, o: Partial<DeliveryAttempt> = {}): DeliveryAttempt {
  return { id: ++ids, guid, deliveredAt: NOW - minutesAgo * MIN, statusCode, redelivery: false, event: 'pull_request', action: 'closed', ...o };
}
const httpError = (status: number, message: string) => Object.assign(new Error(message), { status });

describe('one recovery pass over a hook (recover-deliveries-pass.ts, SQLite store)', () => {
  let dir: string;
  let store: SqliteStore;
  let metrics: ReturnType<typeof createMetrics>;
  let now = NOW;
  const deps = () => ({ store, log, metrics, now: () => now, signal: new AbortController().signal });
  const count = async (outcome: string) => (await metrics.redeliveries.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockhook-recovery-'));
    store = new SqliteStore(dir);
    metrics = createMetrics();
    now = NOW;
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pages with the cursor back to GitHub’s 3 days, redelivers the missed GUIDs once, and remembers the newest delivery seen', async () => {
    const tooOld = attempt('too-old', 0, 3 * 24 * 60 + 5);
    const missedOld = attempt('old-miss', 0, 3 * 24 * 60 - 5);
    const ok = Array.from({ length: 150 }, (_, i) => attempt(`ok-${i}`, 200, 100 - i * 0.5));
    const missedNew = attempt('new-miss', 0, 1);
    const { hook, cursors, redelivered } = scriptedHook([tooOld, missedOld, ...ok, missedNew], { perPage: 40 });
    const out = await recoverHook(hook, deps());
    assert.deepEqual(cursors, [undefined, 'v1_40', 'v1_80', 'v1_120'], 'page after page by cursor, stopping at the window');
    assert.deepEqual(redelivered, [missedOld.id, missedNew.id], 'the oldest first');
    assert.deepEqual(out.redelivered, ['old-miss', 'new-miss']);
    assert.equal(out.listed, 152, 'nothing older than 3 days is read');
    assert.equal(await store.recoveryCheckpoint(hook.key), missedNew.deliveredAt);
    assert.equal(await count('requested'), 2);
    assert.equal((await store.redeliveries(['old-miss'])).get('old-miss')?.attemptId, missedOld.id);
  });

  it('the next pass stops where the last one did (less the overlap), and asks for nothing twice', async () => {
    const older = attempt('older', 0, 90);
    const before = attempt('before', 0, 60);
    const { hook } = scriptedHook([older, before]);
    await recoverHook(hook, deps());
    now += 30 * MIN;
    const later = attempt('later', 0, 1);
    const second = scriptedHook([older, before, later]);
    const out = await recoverHook(second.hook, deps());
    assert.deepEqual(second.redelivered, [later.id]);
    assert.equal(out.listed, 2, `read back to the checkpoint less ${OVERLAP_MS / MIN} minutes (the last pass's newest delivery again), not further`);
    // Everything read again (a lost checkpoint): still not asked twice.
    const third = scriptedHook([older, before, later]);
    await store.db.prepare('DELETE FROM recovery_checkpoints').run();
    assert.deepEqual((await recoverHook(third.hook, deps())).redelivered, []);
    assert.deepEqual(third.redelivered, []);
  });

  it('a GUID dockhook has a build for, or one that succeeded once, is left alone', async () => {
    const { build } = await store.enqueue({
      deliveryId: 'has-build', trigger: 'merge', owner: 'acme', repo: 'app', repoUrl: 'https://github.com/acme/app', defaultBranch: 'main', branch: 'main',
      sha: 'a'.repeat(40), mergedAt: new Date(NOW).toISOString(),
    });
    assert.ok(build.id);
    const { hook, redelivered } = scriptedHook([attempt('has-build', 0, 5), attempt('retried-ok', 0, 4), attempt('retried-ok', 202, 3, { redelivery: true })]);
    await recoverHook(hook, deps());
    assert.deepEqual(redelivered, []);
  });

  it('a redelivery that fails too is counted and warned about once, and never asked for again; one that arrives is counted delivered', async () => {
    const failing = attempt('fails', 0, 10);
    const arriving = attempt('arrives', 0, 9);
    const first = scriptedHook([failing, arriving]);
    await recoverHook(first.hook, deps());
    assert.equal(first.redelivered.length, 2);
    now += 10 * MIN;
    const listing = [failing, arriving, attempt('fails', 401, 1, { redelivery: true }), attempt('arrives', 202, 1, { redelivery: true })];
    const second = scriptedHook(listing);
    const out = await recoverHook(second.hook, deps());
    assert.deepEqual([out.failed, out.delivered, second.redelivered.length], [1, 1, 0]);
    assert.equal((await store.redeliveries(['fails'])).get('fails')?.state, 'failed');
    assert.deepEqual([await count('failed'), await count('delivered')], [1, 1]);
    await store.db.prepare('DELETE FROM recovery_checkpoints').run();
    const third = scriptedHook(listing);
    const again = await recoverHook(third.hook, deps());
    assert.deepEqual([again.failed, again.delivered, third.redelivered.length], [0, 0, 0], 'settled once');
  });

  it('GitHub refusing one redelivery (422) settles it as refused; GitHub down releases it, fails the hook and keeps the checkpoint', async () => {
    const refused = attempt('refused', 0, 10);
    const unlucky = attempt('unlucky', 0, 9);
    const { hook } = scriptedHook([refused, unlucky], {
      redeliverFails: (id) => (id === refused.id ? httpError(422, 'Validation Failed') : httpError(502, 'Bad Gateway')),
    });
    await assert.rejects(recoverHook(hook, deps()), (err: RecoveryProblem) => {
      assert.ok(err instanceof RecoveryProblem);
      assert.equal(err.step, 'redeliver');
      assert.match(err.message, /502/);
      assert.match(err.message, /the next pass tries again/);
      return true;
    });
    assert.equal((await store.redeliveries(['refused'])).get('refused')?.state, 'refused');
    assert.equal((await store.redeliveries(['unlucky'])).size, 0, 'released: nothing was redelivered');
    assert.equal(await store.recoveryCheckpoint(hook.key), undefined, 'the checkpoint did not move');
    assert.equal(await count('refused'), 1);
    const retry = scriptedHook([refused, unlucky]);
    await recoverHook(retry.hook, deps());
    assert.deepEqual(retry.redelivered, [unlucky.id], 'the next pass asks for the released one, not the refused one');
  });

  it('a listing that fails leaves everything as it was', async () => {
    const { hook } = scriptedHook([attempt('x', 0, 1)], { listFails: () => new RecoveryProblem('list', 'listing failed (401) → GitHub refused GITHUB_TOKEN') });
    await assert.rejects(recoverHook(hook, deps()), /GitHub refused GITHUB_TOKEN/);
    assert.equal(await store.recoveryCheckpoint(hook.key), undefined);
    assert.equal((await store.redeliveries(['x'])).size, 0);
  });

  it('the window is GitHub’s 3 days', () => {
    assert.equal(GITHUB_WINDOW_MS, 3 * 24 * 3600_000);
  });
});
