import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TagInfo } from '../../src/registry/client.js';
import { planRetention } from '../../src/registry/retention.js';

const MEDIA = 'application/vnd.docker.distribution.manifest.v2+json';
const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
const rev = (n: number) => `${String(n).padStart(7, '0')}${'f'.repeat(33)}`;
const day = (d: number) => new Date(Date.UTC(2026, 0, d)).toISOString();

/**
 * What one dockhook build pushes: version, sha-<7> and extras, all one digest.
 * `n` numbers the image (its digest and revision); `d` is the day it was built.
 */
function build(n: number, d: number, version: string, extra: string[] = []): TagInfo[] {
  const common = { digest: digest(n), mediaType: MEDIA, created: day(d), revision: rev(n), version };
  return [version, `sha-${rev(n).slice(0, 7)}`, ...extra].map((tag) => ({ ...common, tag }));
}
const latestOf = (tags: TagInfo[]): TagInfo => ({ ...tags[0]!, tag: 'latest' });
const sha = (n: number) => `sha-${rev(n).slice(0, 7)}`;

describe('planRetention', () => {
  it('keeps everything while there are no more versions than KEEP_VERSIONS', () => {
    const tags = [...build(1, 1, '1.0.0'), ...build(2, 2, '1.0.1')];
    const plan = planRetention([...tags, latestOf(build(2, 2, '1.0.1'))], 2);
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(plan.digests, []);
    assert.deepEqual(plan.keep, ['1.0.0', '1.0.1', 'latest', sha(1), sha(2)].sort(new Intl.Collator('en', { numeric: true }).compare));
  });

  it('keeps the N newest versions with their sha- tags and latest; older versions go with their sha- tags', () => {
    const newest = build(4, 4, '1.0.3');
    const tags = [...build(1, 1, '1.0.0'), ...build(2, 2, '1.0.1'), ...build(3, 3, '1.0.2'), ...newest, latestOf(newest)];
    const plan = planRetention(tags, 2);
    assert.deepEqual(new Set(plan.keep), new Set(['1.0.2', sha(3), '1.0.3', sha(4), 'latest']));
    assert.deepEqual(new Set(plan.remove), new Set(['1.0.0', sha(1), '1.0.1', sha(2)]));
    assert.deepEqual(plan.digests, [digest(1), digest(2)]);
  });

  it('orders by creation time, not by tag name', () => {
    // 1.0.10 sorts before 1.0.9 as text; 0.9.9-hotfix was built last.
    const tags = [...build(1, 1, '1.0.9'), ...build(2, 2, '1.0.10'), ...build(3, 3, '0.9.9-hotfix')];
    const plan = planRetention(tags, 2);
    assert.deepEqual(new Set(plan.remove), new Set(['1.0.9', sha(1)]));
    assert.ok(plan.keep.includes('0.9.9-hotfix') && plan.keep.includes('1.0.10'));
  });

  it('never removes latest, nor an old version latest still points at', () => {
    // The newest versions came from another branch; latest is still on the oldest image.
    const oldest = build(1, 1, '1.0.0');
    const tags = [...oldest, latestOf(oldest), ...build(2, 2, '2.0.0-rc1'), ...build(3, 3, '2.0.0-rc2'), ...build(4, 4, '2.0.0-rc3')];
    const plan = planRetention(tags, 1);
    assert.ok(plan.keep.includes('latest'));
    assert.ok(plan.keep.includes('1.0.0'), 'shares its digest with latest');
    assert.ok(plan.keep.includes(sha(1)));
    assert.ok(!plan.digests.includes(digest(1)));
    assert.deepEqual(new Set(plan.remove), new Set(['2.0.0-rc1', sha(2), '2.0.0-rc2', sha(3)]));
  });

  it('counts tags sharing one image as one version and keeps them together (dockerInfo.json extra tags)', () => {
    const tags = [...build(1, 1, '1.0.0', ['1.0']), ...build(2, 2, '1.1.0', ['1.1', 'stable']), ...build(3, 3, '1.2.0', ['1.2'])];
    const plan = planRetention(tags, 2);
    assert.deepEqual(new Set(plan.remove), new Set(['1.0.0', '1.0', sha(1)]));
    for (const t of ['1.1.0', '1.1', 'stable', sha(2), '1.2.0', '1.2', sha(3)]) assert.ok(plan.keep.includes(t), t);
  });

  it('never deletes a digest a kept tag points at, even when an old version tag points at it too', () => {
    // 1.0.0 and 1.3.0 are the very same image (re-tagged by hand): deleting 1.0.0 by digest would take 1.3.0 along.
    const same = build(5, 5, '1.3.0');
    const retagged: TagInfo = { ...same[0]!, tag: '1.0.0', created: day(1) };
    const tags = [retagged, ...build(2, 2, '1.1.0'), ...build(3, 3, '1.2.0'), ...same];
    const plan = planRetention(tags, 2);
    assert.ok(plan.keep.includes('1.0.0'));
    assert.ok(!plan.digests.includes(digest(5)));
    assert.deepEqual(new Set(plan.remove), new Set(['1.1.0', sha(2)]));
  });

  it('removes a sha- tag with its version even when it points at another digest, but not one a kept tag shares', () => {
    const v1 = build(1, 1, '1.0.0');
    const moved: TagInfo = { ...v1[1]!, digest: digest(9) }; // sha- tag of 1.0.0 re-pushed: another digest
    const tags = [v1[0]!, moved, ...build(2, 2, '1.0.1'), ...build(3, 3, '1.0.2')];
    const plan = planRetention(tags, 2);
    assert.deepEqual(plan.digests, [digest(1), digest(9)]);
    assert.deepEqual(new Set(plan.remove), new Set(['1.0.0', sha(1)]));
  });

  it('keeps sha- tags without a version (nothing to judge them by) and tags without a creation time', () => {
    const orphan: TagInfo = { tag: 'sha-abcdef0', digest: digest(7), mediaType: MEDIA, created: day(1) };
    const undated: TagInfo = { tag: 'handmade', digest: digest(8), mediaType: MEDIA };
    const badDate: TagInfo = { tag: 'weird', digest: digest(6), mediaType: MEDIA, created: 'yesterday' };
    const tags = [orphan, undated, badDate, ...build(1, 1, '1.0.0'), ...build(2, 2, '1.0.1')];
    const plan = planRetention(tags, 1);
    for (const t of ['sha-abcdef0', 'handmade', 'weird', '1.0.1']) assert.ok(plan.keep.includes(t), t);
    assert.deepEqual(new Set(plan.remove), new Set(['1.0.0', sha(1)]));
  });

  it('breaks a tie in creation time by the higher version name', () => {
    const tags = [...build(1, 1, '1.0.9'), ...build(2, 1, '1.0.10')];
    assert.deepEqual(new Set(planRetention(tags, 1).remove), new Set(['1.0.9', sha(1)]));
  });

  it('works for a multi-platform list the same way (its digest is the list digest)', () => {
    const list = build(1, 1, '1.0.0').map((t) => ({ ...t, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', platforms: ['linux/amd64', 'linux/arm64'] }));
    const plan = planRetention([...list, ...build(2, 2, '1.0.1')], 1);
    assert.deepEqual(plan.digests, [digest(1)]);
  });

  describe('internal tags (_platform-, _artifact-)', () => {
    const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
    const OCI = 'application/vnd.oci.image.manifest.v1+json';
    /** A multi-platform version: its index (n), two children (n*10+1, n*10+2) and an artifact (n*10+3), all with a creation time. */
    function multi(n: number, d: number, version: string): TagInfo[] {
      const s7 = rev(n).slice(0, 7);
      const at = { created: day(d), revision: rev(n), version };
      return [
        ...build(n, d, version).map((t) => ({ ...t, mediaType: LIST, platforms: ['linux/amd64', 'linux/arm64'] })),
        { tag: `_platform-${s7}-linux-amd64`, digest: digest(n * 10 + 1), mediaType: MEDIA, ...at },
        { tag: `_platform-${s7}-linux-arm64`, digest: digest(n * 10 + 2), mediaType: MEDIA, ...at },
        { tag: `_artifact-${s7}-dist`, digest: digest(n * 10 + 3), mediaType: OCI, ...at },
      ];
    }

    it('are never versions: not counted, not kept, not removed', () => {
      const tags = [...multi(1, 1, '1.0.0'), ...multi(2, 2, '1.0.1'), ...multi(3, 3, '1.0.2')];
      const plan = planRetention(tags, 2);
      assert.deepEqual(plan.remove, ['1.0.0', sha(1)].sort(new Intl.Collator('en', { numeric: true }).compare));
      assert.deepEqual(plan.digests, [digest(1)], 'the index only: its children and artifact are for delete-with-dependents');
      assert.deepEqual(new Set(plan.keep), new Set(['1.0.1', sha(2), '1.0.2', sha(3)]));
      for (const t of [...plan.keep, ...plan.remove]) assert.ok(!t.startsWith('_'), t);
    });

    it('do not make KEEP_VERSIONS count them (one version with many internal tags is one version)', () => {
      const tags = [...multi(1, 1, '1.0.0'), ...multi(2, 2, '1.0.1')];
      assert.deepEqual(planRetention(tags, 2), { keep: ['1.0.0', '1.0.1', sha(1), sha(2)].sort(new Intl.Collator('en', { numeric: true }).compare), remove: [], digests: [] });
    });

    it('alone (no version left, or undated), are never planned for deletion', () => {
      const stray: TagInfo[] = [
        { tag: '_platform-0000009-linux-amd64', digest: digest(91), mediaType: MEDIA, created: day(1) },
        { tag: '_artifact-0000009-dist', digest: digest(93), mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      ];
      const plan = planRetention([...stray, ...build(2, 2, '1.0.1'), ...build(3, 3, '1.0.2')], 1);
      assert.deepEqual(plan.digests, [digest(2)]);
      assert.deepEqual(new Set(plan.remove), new Set(['1.0.1', sha(2)]));
      assert.ok(!plan.keep.some((t) => t.startsWith('_')));
    });

    it('protect the digest they point at even when an old version tag shares it', () => {
      // An old single-platform 1.0.0 that is byte for byte the amd64 child of the kept multi-platform 2.0.0.
      const kept = multi(5, 5, '2.0.0');
      const child = kept.find((t) => t.tag.endsWith('-linux-amd64'))!;
      const old: TagInfo = { tag: '1.0.0', digest: child.digest, mediaType: MEDIA, created: day(1), revision: rev(1) };
      const plan = planRetention([old, ...kept, ...build(6, 6, '2.0.1')], 1);
      assert.ok(!plan.digests.includes(child.digest));
      assert.ok(plan.keep.includes('1.0.0'));
      assert.deepEqual(plan.digests, [digest(5)]);
    });
  });

  it('refuses a keep count below 1', () => {
    assert.throws(() => planRetention([], 0), RangeError);
    assert.throws(() => planRetention([], 1.5), RangeError);
  });

  it('is fine with no tags at all', () => {
    assert.deepEqual(planRetention([], 3), { keep: [], remove: [], digests: [] });
  });
});
