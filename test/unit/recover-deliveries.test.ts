import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRedeliveries, type DeliveryAttempt, type KnownDeliveries } from '../../src/github/recover-deliveries-decide.js';
import { nextCursor } from '../../src/github/recover-deliveries-hooks.js';
import type { Redelivery } from '../../src/store/store.js';

let ids = 100;
const T0 = Date.UTC(2026, 5, 1);
/** One listed attempt; ids grow with each call, as GitHub's do. */
function attempt(guid: string, statusCode: number, o: Partial<DeliveryAttempt> = {}): DeliveryAttempt {
  const id = ++ids;
  return { id, guid, deliveredAt: T0 + id * 1000, statusCode, redelivery: false, event: 'pull_request', action: 'closed', ...o };
}
const none: KnownDeliveries = { stored: new Set(), redelivered: new Map() };
const asked = (guid: string, attemptId: number, state: Redelivery['state'] = 'requested'): [string, Redelivery] => [guid, { guid, hook: 'app:1', attemptId, state, requestedAt: T0 }];

describe('which missed deliveries to redeliver (recover-deliveries-decide.ts)', () => {
  it('a GUID whose every attempt failed, and that dockhook has no build for, is redelivered once, from its newest attempt', () => {
    const first = attempt('g1', 0);
    const retried = attempt('g1', 502, { redelivery: true });
    const d = decideRedeliveries([retried, first], none);
    assert.deepEqual(d.redeliver, [retried]);
    assert.deepEqual([d.delivered, d.failed], [[], []]);
  });

  it('a GUID with one 2xx attempt among failures is never redelivered', () => {
    for (const ok of [200, 202, 204, 299]) {
      const d = decideRedeliveries([attempt('g', ok, { redelivery: true }), attempt('g', 0)], none);
      assert.deepEqual(d.redeliver, [], `status ${ok}`);
    }
  });

  it('non-2xx answers are failures: 0 (unreachable), 1xx, 3xx, 4xx and 5xx', () => {
    for (const code of [0, 100, 301, 401, 404, 413, 500, 503]) {
      assert.equal(decideRedeliveries([attempt(`g${code}`, code)], none).redeliver.length, 1, `status ${code}`);
    }
  });

  it('a failed GUID that dockhook has a build for (its 2xx was lost on the way back) is not redelivered', () => {
    const d = decideRedeliveries([attempt('stored', 0), attempt('missed', 0)], { stored: new Set(['stored']), redelivered: new Map() });
    assert.deepEqual(d.redeliver.map((a) => a.guid), ['missed']);
  });

  it('a GUID asked for before is not asked for again, whatever came of it', () => {
    const a = attempt('g', 0);
    for (const state of ['requested', 'delivered', 'failed', 'refused'] as const) {
      const d = decideRedeliveries([a], { stored: new Set(), redelivered: new Map([asked('g', a.id, state)]) });
      assert.deepEqual(d.redeliver, [], state);
    }
  });

  it('a requested redelivery that failed too is reported once, with its newest failed redelivery', () => {
    const original = attempt('g', 0);
    const ours = attempt('g', 503, { redelivery: true });
    const known = { stored: new Set<string>(), redelivered: new Map([asked('g', original.id)]) };
    const d = decideRedeliveries([ours, original], known);
    assert.deepEqual(d.failed, [ours]);
    assert.deepEqual([d.redeliver, d.delivered], [[], []]);
    // Already settled: nothing more to say.
    assert.deepEqual(decideRedeliveries([ours, original], { ...known, redelivered: new Map([asked('g', original.id, 'failed')]) }).failed, []);
  });

  it('a requested redelivery not made yet is neither failed nor delivered (a redelivery older than the request is someone else’s)', () => {
    const manual = attempt('g', 0, { redelivery: true });
    const redelivered = attempt('g', 0);
    const d = decideRedeliveries([redelivered, manual], { stored: new Set(), redelivered: new Map([asked('g', redelivered.id)]) });
    assert.deepEqual([d.redeliver, d.delivered, d.failed], [[], [], []]);
  });

  it('a requested redelivery that succeeded, or whose build dockhook now has, is delivered', () => {
    const original = attempt('g', 0);
    const d = decideRedeliveries([attempt('g', 202, { redelivery: true }), original], { stored: new Set(), redelivered: new Map([asked('g', original.id)]) });
    assert.deepEqual(d.delivered, ['g']);
    const h = attempt('h', 0);
    assert.deepEqual(decideRedeliveries([h], { stored: new Set(['h']), redelivered: new Map([asked('h', h.id)]) }).delivered, ['h']);
  });

  it('several GUIDs: each decided on its own attempts, and redelivered in the order they first happened', () => {
    const a1 = attempt('a', 0);
    const b1 = attempt('b', 200);
    const c1 = attempt('c', 0);
    const a2 = attempt('a', 0, { redelivery: true });
    const d1 = attempt('d', 0);
    const d = decideRedeliveries([d1, a2, c1, b1, a1], none);
    assert.deepEqual(d.redeliver.map((x) => x.guid), ['a', 'c', 'd']);
    assert.equal(d.redeliver[0], a2);
  });

  it('an empty listing decides nothing', () => {
    assert.deepEqual(decideRedeliveries([], none), { redeliver: [], delivered: [], failed: [] });
  });
});

describe('paging deliveries by cursor (recover-deliveries-hooks.ts nextCursor)', () => {
  it("reads the cursor of the Link header's next page", () => {
    const link = '<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12345>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="first"';
    assert.equal(nextCursor(link), 'v1_12345');
  });
  it('no next page, no Link, or a next without a cursor: undefined', () => {
    assert.equal(nextCursor('<https://api.github.com/app/hook/deliveries?per_page=100>; rel="first"'), undefined);
    assert.equal(nextCursor(undefined), undefined);
    assert.equal(nextCursor('<https://api.github.com/x?page=2>; rel="next"'), undefined);
  });
});
