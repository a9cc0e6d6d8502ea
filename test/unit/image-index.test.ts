import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ManifestBytes } from '../../src/registry/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import {
  buildIndex,
  childrenOnlyReferencedBy,
  formatPlatform,
  indexChildren,
  isValidPlatform,
  parsePlatform,
  putIndex,
  type IndexChild,
} from '../../src/registry/image-index.js';

const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI = 'application/vnd.oci.image.manifest.v1+json';
const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const amd64: IndexChild = { digest: digest(1), mediaType: DOCKER, size: 528, platform: { os: 'linux', architecture: 'amd64' } };
const arm64: IndexChild = { digest: digest(2), mediaType: DOCKER, size: 529, platform: { os: 'linux', architecture: 'arm64' } };
const armv7: IndexChild = { digest: digest(3), mediaType: DOCKER, size: 530, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } };

function refused(status: number, code: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, `expected RegistryError, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

describe('buildIndex', () => {
  it('all Docker schema-2 children: a Docker manifest list, exact bytes', () => {
    const built = buildIndex([arm64, amd64]);
    assert.equal(built.mediaType, LIST);
    assert.equal(
      built.bytes.toString(),
      '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[' +
        `{"mediaType":"${DOCKER}","digest":"${digest(1)}","size":528,"platform":{"architecture":"amd64","os":"linux"}},` +
        `{"mediaType":"${DOCKER}","digest":"${digest(2)}","size":529,"platform":{"architecture":"arm64","os":"linux"}}]}`,
    );
    assert.equal(built.digest, sha256(built.bytes));
  });

  it('any OCI child: an OCI image index with mediaType in the body; each child keeps its own type', () => {
    const built = buildIndex([amd64, { ...armv7, mediaType: OCI }]);
    assert.equal(built.mediaType, INDEX);
    const body = JSON.parse(built.bytes.toString());
    assert.equal(body.mediaType, INDEX);
    assert.equal(body.schemaVersion, 2);
    assert.deepEqual(
      body.manifests.map((m: { mediaType: string; platform: unknown }) => [m.mediaType, m.platform]),
      [
        [DOCKER, { architecture: 'amd64', os: 'linux' }],
        [OCI, { architecture: 'arm', os: 'linux', variant: 'v7' }],
      ],
    );
    assert.equal(buildIndex([{ ...amd64, mediaType: OCI }]).mediaType, INDEX);
  });

  it('deterministic: the same children in any order give the same bytes and digest; other children another digest', () => {
    const a = buildIndex([amd64, arm64, armv7]);
    const b = buildIndex([armv7, amd64, arm64]);
    const c = buildIndex([{ ...arm64 }, { ...armv7, platform: { variant: 'v7', architecture: 'arm', os: 'linux' } }, amd64]);
    assert.ok(a.bytes.equals(b.bytes) && a.bytes.equals(c.bytes));
    assert.equal(a.digest, b.digest);
    assert.equal(a.digest, c.digest);
    // Sorted by platform string, ordinally.
    assert.deepEqual(JSON.parse(a.bytes.toString()).manifests.map((m: { digest: string }) => m.digest), [digest(1), digest(3), digest(2)]);
    assert.notEqual(buildIndex([amd64, { ...arm64, digest: digest(9) }]).digest, a.digest);
    assert.notEqual(buildIndex([amd64, { ...arm64, size: 600 }]).digest, buildIndex([amd64, arm64]).digest);
  });

  it('refuses an empty list', () => {
    assert.throws(() => buildIndex([]), refused(400, 'MANIFEST_INVALID', /at least one child/));
  });

  it('refuses two children for one platform, including the spellings the engine treats as one', () => {
    assert.throws(() => buildIndex([amd64, { ...amd64, digest: digest(5) }]), refused(400, 'MANIFEST_INVALID', /two images for platform linux\/amd64/));
    assert.throws(
      () => buildIndex([arm64, { ...arm64, digest: digest(5), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }]),
      refused(400, 'MANIFEST_INVALID', /two images for platform linux\/arm64\/v8/),
    );
    assert.throws(
      () => buildIndex([armv7, { ...armv7, digest: digest(5), platform: { os: 'linux', architecture: 'arm' } }]),
      refused(400, 'MANIFEST_INVALID', /two images for platform linux\/arm /),
    );
    // Different variants and different OSes are different platforms.
    assert.doesNotThrow(() => buildIndex([armv7, { ...armv7, digest: digest(6), platform: { os: 'linux', architecture: 'arm', variant: 'v6' } }]));
    assert.doesNotThrow(() => buildIndex([amd64, { ...amd64, digest: digest(6), platform: { os: 'windows', architecture: 'amd64' } }]));
  });

  it('refuses a child that is itself an index or list, and non-image manifests', () => {
    for (const mediaType of [LIST, INDEX]) {
      assert.throws(() => buildIndex([amd64, { ...arm64, mediaType }]), refused(400, 'MANIFEST_INVALID', /is itself a multi-platform index/));
    }
    assert.throws(
      () => buildIndex([{ ...amd64, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' }]),
      refused(400, 'MANIFEST_INVALID', /not an image manifest/),
    );
  });

  it('refuses bad digests, sizes and platforms', () => {
    assert.throws(() => buildIndex([{ ...amd64, digest: 'sha256:abc' }]), refused(400, 'DIGEST_INVALID', /invalid digest/));
    for (const size of [0, -1, 1.5, NaN]) assert.throws(() => buildIndex([{ ...amd64, size }]), refused(400, 'SIZE_INVALID', /size/));
    assert.throws(() => buildIndex([{ ...amd64, platform: { os: 'Linux', architecture: 'amd64' } }]), refused(400, 'PLATFORM_INVALID', /os "Linux"/));
    assert.throws(() => buildIndex([{ ...amd64, platform: { os: 'linux', architecture: 'x86_64' } }]), refused(400, 'PLATFORM_INVALID', /spelled amd64/));
  });
});

describe('parsePlatform / formatPlatform', () => {
  it('parses os/architecture[/variant] and formats it back', () => {
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    assert.equal('variant' in parsePlatform('linux/amd64'), false);
    for (const s of ['linux/amd64', 'linux/arm64', 'linux/arm64/v8', 'linux/arm/v6', 'linux/386', 'linux/s390x', 'windows/amd64']) {
      assert.equal(formatPlatform(parsePlatform(s)), s);
      assert.equal(isValidPlatform(s), true, s);
    }
  });

  it('refuses anything else, saying how to write it', () => {
    for (const s of ['linux', 'linux/', '/amd64', 'linux/arm/v7/extra', 'Linux/amd64', 'linux/AMD64', 'linux/arm/V7', 'linux/arm64/', 'linux amd64', 'linux/amd-64', '']) {
      assert.throws(() => parsePlatform(s), refused(400, 'PLATFORM_INVALID', /platform/), s);
      assert.equal(isValidPlatform(s), false, s);
    }
    assert.throws(() => parsePlatform('linux/aarch64'), (err: unknown) => err instanceof RegistryError && /spelled arm64/.test(err.message) && err.hint === 'write linux/arm64');
    assert.throws(() => parsePlatform('linux/x86_64'), /spelled amd64/);
  });
});

/** A registry holding `manifests` (digest → stored bytes and type), recording what was asked. */
function fakeRegistry(manifests: Map<string, { bytes: Buffer; mediaType: string }>) {
  const calls: string[] = [];
  return {
    calls,
    async getManifestBytes(name: string, reference: string): Promise<ManifestBytes | undefined> {
      calls.push(`GET ${name}@${reference}`);
      const m = manifests.get(reference);
      return m && { ...m, digest: reference.startsWith('sha256:') ? reference : sha256(m.bytes) };
    },
    async putManifest(name: string, tag: string, bytes: Buffer, mediaType: string): Promise<string> {
      calls.push(`PUT ${name}:${tag} ${mediaType}`);
      manifests.set(tag, { bytes, mediaType });
      manifests.set(sha256(bytes), { bytes, mediaType });
      return sha256(bytes);
    },
  };
}

function stored(n: number, mediaType = DOCKER): { child: (p: string) => IndexChild; entry: [string, { bytes: Buffer; mediaType: string }] } {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, n }));
  const d = sha256(bytes);
  return { child: (p) => ({ digest: d, mediaType, size: bytes.length, platform: parsePlatform(p) }), entry: [d, { bytes, mediaType }] };
}

describe('putIndex (fake registry)', () => {
  it('checks every child, then PUTs the index once under the tag', async () => {
    const a = stored(1);
    const b = stored(2);
    const reg = fakeRegistry(new Map([a.entry, b.entry]));
    const children = [a.child('linux/amd64'), b.child('linux/arm64')];
    const d = await putIndex(reg, 'acme/app', '1.0', children);
    assert.equal(d, buildIndex(children).digest);
    assert.deepEqual(reg.calls.slice(-1), [`PUT acme/app:1.0 ${LIST}`]);
    assert.equal(reg.calls.filter((c) => c.startsWith('GET')).length, 2);
    assert.deepEqual(await indexChildren(reg, 'acme/app', '1.0'), children.map((c) => ({ digest: c.digest, mediaType: c.mediaType, size: c.size, platform: c.platform })));
    assert.deepEqual(await indexChildren(reg, 'acme/app', a.entry[0]), []);
    assert.equal(await indexChildren(reg, 'acme/app', 'nope'), undefined);
  });

  it('a child missing from the repository: 404 naming it and what to do, and no PUT', async () => {
    const a = stored(1);
    const b = stored(2);
    const reg = fakeRegistry(new Map([a.entry]));
    await assert.rejects(
      putIndex(reg, 'acme/app', '1.0', [a.child('linux/amd64'), b.child('linux/arm64')]),
      (err: unknown) => {
        refused(404, 'MANIFEST_UNKNOWN', new RegExp(`1 of its 2 images is not in acme/app: ${b.entry[0]} \\(linux/arm64\\)`))(err);
        assert.match((err as RegistryError).hint!, /push each platform's image to acme\/app .*1\.0-linux-arm64/);
        return true;
      },
    );
    assert.equal(reg.calls.filter((c) => c.startsWith('PUT')).length, 0);
  });

  it('a wrong size or media type is refused before the PUT', async () => {
    const a = stored(1);
    const reg = fakeRegistry(new Map([a.entry]));
    await assert.rejects(putIndex(reg, 'acme/app', '1.0', [{ ...a.child('linux/amd64'), size: 1 }]), refused(400, 'SIZE_INVALID', /bytes in the registry, but the index would say 1/));
    await assert.rejects(putIndex(reg, 'acme/app', '1.0', [{ ...a.child('linux/amd64'), mediaType: OCI }]), refused(400, 'MANIFEST_INVALID', /stored as .*manifest\.v2\+json/));
    assert.equal(reg.calls.filter((c) => c.startsWith('PUT')).length, 0);
  });

  it('bad input is refused before any request', async () => {
    const reg = fakeRegistry(new Map());
    await assert.rejects(putIndex(reg, 'Acme', '1.0', [amd64]), refused(400, 'NAME_INVALID', /repository name/));
    await assert.rejects(putIndex(reg, 'acme/app', '-x', [amd64]), refused(400, 'TAG_INVALID', /tag/));
    await assert.rejects(putIndex(reg, 'acme/app', '1.0', []), refused(400, 'MANIFEST_INVALID', /at least one/));
    assert.deepEqual(reg.calls, []);
  });
});

describe('childrenOnlyReferencedBy', () => {
  const I1 = digest(101);
  const I2 = digest(102);
  const [A1, B1, A2, B2] = [digest(1), digest(2), digest(3), digest(4)];
  const tags = {
    '1.0': I1,
    '1.0-linux-amd64': A1,
    '1.0-linux-arm64': B1,
    '1.1': I2,
    latest: I2,
    '1.1-linux-amd64': A2,
    '1.1-linux-arm64': B2,
  };

  it('deleting an index frees its children once their own per-platform tags are ignored', () => {
    const indexes = { [I1]: [A1, B1], [I2]: [A2, B2] };
    assert.deepEqual(childrenOnlyReferencedBy([I1], { tags, indexes, ignoreTags: ['1.0-linux-amd64', '1.0-linux-arm64'] }), [A1, B1].sort());
    // Without ignoring them, the per-platform tags keep the children.
    assert.deepEqual(childrenOnlyReferencedBy([I1], { tags, indexes }), []);
  });

  it('a child another index still names stays (an unchanged platform shared by two versions)', () => {
    const indexes = new Map([[I1, [A1, B1]], [I2, [A1, B2]]]);
    const t = new Map(Object.entries({ ...tags, '1.1-linux-amd64': A1 }));
    assert.deepEqual(childrenOnlyReferencedBy([I1], { tags: t, indexes, ignoreTags: ['1.0-linux-amd64', '1.0-linux-arm64'] }), [B1]);
    // Both indexes going: every child goes.
    assert.deepEqual(
      childrenOnlyReferencedBy([I1, I2], { tags: t, indexes, ignoreTags: ['1.0-linux-amd64', '1.0-linux-arm64', '1.1-linux-amd64', '1.1-linux-arm64'] }),
      [A1, B1, B2].sort(),
    );
  });

  it('a child some other tag points at stays; a digest already being deleted is not listed twice', () => {
    const indexes = { [I1]: [A1, B1] };
    assert.deepEqual(childrenOnlyReferencedBy([I1], { tags: { ...tags, pinned: A1 }, indexes, ignoreTags: ['1.0-linux-amd64', '1.0-linux-arm64'] }), [B1]);
    assert.deepEqual(childrenOnlyReferencedBy([I1, A1], { tags, indexes, ignoreTags: ['1.0-linux-amd64', '1.0-linux-arm64'] }), [B1]);
    // Deleting a plain image (not in indexes) frees nothing.
    assert.deepEqual(childrenOnlyReferencedBy([A2], { tags, indexes }), []);
  });
});
