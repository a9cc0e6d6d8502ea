import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseCacheRefs, findCacheRefs } from '../../src/pipeline/cache-refs.js';

const REPO = 'localhost:5000/api';
const tagsOf = (refs: string[]) => refs.map((r) => r.slice(REPO.length + 1));

describe('chooseCacheRefs', () => {
  it('takes latest, then the three versions just below the one being built, highest first, as full references', () => {
    const refs = chooseCacheRefs(REPO, ['1.0.0', '1.1.0', '1.2.0', '1.3.0', 'latest', 'sha-0123456'], '1.4.0');
    assert.deepEqual(refs, [`${REPO}:latest`, `${REPO}:1.3.0`, `${REPO}:1.2.0`, `${REPO}:1.1.0`]);
  });

  it('orders versions by number, not by name (1.10.0 above 1.9.0)', () => {
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['1.9.0', '1.10.0', '1.8.0', '1.2.0'], '2.0.0')), ['1.10.0', '1.9.0', '1.8.0']);
  });

  it('never takes the version being built, sha- tags or extra tags that are not versions', () => {
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['2.0.0', 'sha-abcdef0', 'stable', 'edge', 'latest', '1.0.0'], '2.0.0')), ['latest', '1.0.0']);
  });

  it('a hotfix of an old line takes its own predecessors, and latest (the newest) besides', () => {
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['1.2.7', '1.2.8', '2.0.0', '2.1.0', 'latest'], '1.2.9')), ['latest', '1.2.8', '1.2.7']);
  });

  it('reads v-prefixes, short versions and pre-releases the SemVer way (a release above its release candidates)', () => {
    const tags = ['v1.0.0', '2', '1.5', '2.0.0-rc.2', '2.0.0-rc.10', '2.0.0-beta', '1.5.1+build.7'];
    // 2 is 2.0.0, the version being built: not below it.
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, tags, '2.0.0', 10)), ['2.0.0-rc.10', '2.0.0-rc.2', '2.0.0-beta', '1.5.1+build.7', '1.5', 'v1.0.0']);
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, tags, '2.1', 2)), ['2', '2.0.0-rc.10']);
    // Building 2 (= 2.0.0), the tag 2 itself is skipped, and so is everything at or above it.
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['2.0.0', '2', '1.9'], '2')), ['1.9']);
  });

  it('a version that is not version-like takes the highest versions there are', () => {
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['1.0.0', '3.0.0', '2.0.0', '0.1.0', 'latest'], 'nightly')), ['latest', '3.0.0', '2.0.0', '1.0.0']);
  });

  it('an image never pushed has nothing to offer; latest alone when no earlier version is left', () => {
    assert.deepEqual(chooseCacheRefs(REPO, [], '1.0.0'), []);
    assert.deepEqual(chooseCacheRefs(REPO, ['latest', '1.0.0'], '1.0.0'), [`${REPO}:latest`]);
  });

  it('max bounds the versions taken (latest is not counted), and a tag listed twice counts once', () => {
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['1', '2', '3', '3', 'latest'], '4', 1)), ['latest', '3']);
    assert.deepEqual(tagsOf(chooseCacheRefs(REPO, ['1', '2', 'latest'], '4', 0)), ['latest']);
  });
});

describe('findCacheRefs', () => {
  it('lists the tags of the image (its name, not the full repository) and says what it chose', async () => {
    const lines: string[] = [];
    const asked: string[] = [];
    const refs = await findCacheRefs(
      { listTags: async (name) => (asked.push(name), ['latest', '1.0.0']) },
      { name: 'team/api', repository: 'localhost:5000/team/api', version: '1.1.0', onLine: (l) => lines.push(l) },
    );
    assert.deepEqual(asked, ['team/api']);
    assert.deepEqual(refs, ['localhost:5000/team/api:latest', 'localhost:5000/team/api:1.0.0']);
    assert.deepEqual(lines, ['cache from: localhost:5000/team/api:latest, localhost:5000/team/api:1.0.0']);
  });

  it('a registry that cannot list tags means no cache, said in the log, not a failure', async () => {
    const lines: string[] = [];
    const refs = await findCacheRefs(
      {
        listTags: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:5000');
        },
      },
      { name: 'api', repository: 'localhost:5000/api', version: '1.0.0', onLine: (l) => lines.push(l) },
    );
    assert.deepEqual(refs, []);
    assert.match(lines[0]!, /^cache: cannot list the tags of api \(connect ECONNREFUSED 127\.0\.0\.1:5000\); building without the registry's cache$/);
  });
});
