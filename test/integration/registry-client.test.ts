import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  RegistryError,
  createRegistryClient,
  isValidRepositoryName,
  isValidTag,
  type RegistryClientOptions,
} from '../../src/registry/client.js';
import { retagImage } from '../../src/registry/retag.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { pushTestImage, pushTestManifestList, startRegistry, type TestRegistry } from '../support/registry-server.js';

/** Against real registry 2.8.2 processes: every quirk asserted here is the real server's. */

const execFileP = promisify(execFile);

// pushTestImage builds FROM busybox:latest, which nothing here can pull: made from the host's busybox when missing.
before(() => ensureBusyboxImage());

/** fetch that records the URLs asked for: proves pagination happened, or that no request was sent at all. */
function recordingFetch(): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    fetch: (input, init) => {
      urls.push(String(input instanceof Request ? input.url : input));
      return fetch(input, init);
    },
  };
}

function isRegistryError(status: number, code?: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegistryError, `expected RegistryError, got ${String(err)}`);
    assert.equal(err.status, status);
    if (code) assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  };
}

const LABELS = {
  'org.opencontainers.image.revision': '0123456789abcdef0123456789abcdef01234567',
  'org.opencontainers.image.version': '1.2.3',
  'org.opencontainers.image.source': 'https://github.com/acme/app',
};


const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function uploadBlob(registryUrl: string, name: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const start = await fetch(`${registryUrl}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  await start.body?.cancel();
  assert.equal(start.status, 202, `POST blob upload: ${start.status}`);
  const location = new URL(start.headers.get('location')!, registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes) });
  assert.equal(put.status, 201, `PUT blob: ${put.status} ${await put.text()}`);
  return { digest, size: bytes.length };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * An OCI image made over HTTP, no engine: a config blob with labels, one
 * (opaque) layer and a manifest serialised with 3-space indents and a final
 * newline, which no registry or client would produce itself: a retag that
 * re-encoded the JSON would show up as a different digest.
 */
async function pushOciImage(registryUrl: string, name: string, tag: string, o: { labels: Record<string, string>; omitMediaType?: boolean }): Promise<{ digest: string; bytes: Buffer }> {
  const layer = await uploadBlob(registryUrl, name, randomBytes(64));
  const config = await uploadBlob(
    registryUrl,
    name,
    Buffer.from(JSON.stringify({ created: '2024-05-06T07:08:09Z', architecture: 'amd64', os: 'linux', config: { Labels: o.labels }, rootfs: { type: 'layers', diff_ids: [layer.digest] } })),
  );
  const manifest = {
    schemaVersion: 2,
    ...(o.omitMediaType ? {} : { mediaType: OCI_MANIFEST }),
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3) + '\n');
  const res = await fetch(`${registryUrl}/v2/${name}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
  assert.equal(res.status, 201, `PUT OCI manifest: ${res.status} ${await res.text()}`);
  assert.equal(res.headers.get('docker-content-digest'), sha256(bytes));
  return { digest: sha256(bytes), bytes };
}

describe('registry client: listing', () => {
  let reg: TestRegistry;
  const repos = ['list/a', 'list/b', 'list/c', 'list/d', 'list/e'];
  const tags = ['v1', 'v2', 'v3', 'latest', 'main-abc1234'];

  before(async () => {
    reg = await startRegistry();
    // Same content → same layers: only the first push uploads anything.
    for (const repo of repos) await pushTestImage(reg.host, repo, 'v1', { content: 'listing' });
    for (const tag of tags.slice(1)) await pushTestImage(reg.host, 'list/a', tag, { content: 'listing' });
  });
  after(() => reg?.close());

  test('ping answers ok', async () => {
    assert.deepEqual(await createRegistryClient({ url: reg.url }).ping(), { ok: true, status: 200 });
  });

  test('catalog follows Link rel="next" through every page', async () => {
    const rec = recordingFetch();
    const client = createRegistryClient({ url: reg.url, pageSize: 2, fetch: rec.fetch });
    assert.deepEqual(await client.listRepositories(), repos);
    assert.equal(rec.urls.length, 3, rec.urls.join('\n'));
    assert.match(rec.urls[1], /_catalog\?last=list(%2F|\/)b&n=2$/);
  });

  test('tags: all of them, sorted, even with a page size smaller than the list', async () => {
    // registry 2.8.2 ignores n on tags/list and answers everything in one page (newer ones paginate).
    const client = createRegistryClient({ url: reg.url, pageSize: 2 });
    assert.deepEqual(await client.listTags('list/a'), [...tags].sort());
  });

  test('tags of an unknown repository: empty list, not an error', async () => {
    assert.deepEqual(await createRegistryClient({ url: reg.url }).listTags('never/pushed'), []);
  });
});

describe('registry client: inspecting and deleting', () => {
  let reg: TestRegistry;
  let plainDigest: string;
  let listDigest: string;
  let amd64Digest: string;
  let client: ReturnType<typeof createRegistryClient>;

  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
    plainDigest = await pushTestImage(reg.host, 'acme/app', 'v1', { labels: LABELS });
    // Multi-platform: the arm64 entry comes first so the test shows linux/amd64 is preferred, not just the first.
    await pushTestImage(reg.host, 'acme/multi', 'arm64', { labels: { 'org.opencontainers.image.revision': 'arm' } });
    amd64Digest = await pushTestImage(reg.host, 'acme/multi', 'amd64', {
      labels: { 'org.opencontainers.image.revision': 'amd', 'org.opencontainers.image.version': '2.0.0' },
    });
    listDigest = await pushTestManifestList(reg.url, 'acme/multi', 'latest', [
      { reference: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { reference: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
    ]);
  });
  after(() => reg?.close());

  test('getManifestDigest: the pushed manifest digest, by tag or by digest; undefined when absent', async () => {
    assert.equal(await client.getManifestDigest('acme/app', 'v1'), plainDigest);
    assert.equal(await client.getManifestDigest('acme/app', plainDigest), plainDigest);
    assert.equal(await client.getManifestDigest('acme/multi', 'latest'), listDigest);
    assert.equal(await client.getManifestDigest('acme/app', 'nope'), undefined);
    assert.equal(await client.getManifestDigest('no/such-repo', 'v1'), undefined);
  });

  test('describeTag: labels and created from the image config', async () => {
    const info = await client.describeTag('acme/app', 'v1');
    assert.ok(info);
    assert.equal(info.digest, plainDigest);
    assert.equal(info.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(info.revision, LABELS['org.opencontainers.image.revision']);
    assert.equal(info.version, '1.2.3');
    assert.equal(info.source, 'https://github.com/acme/app');
    assert.ok(info.created && !Number.isNaN(Date.parse(info.created)), `created: ${info.created}`);
    assert.equal(info.platforms, undefined);
    assert.equal(await client.describeTag('acme/app', 'nope'), undefined);
  });

  test('describeTag on a manifest list: the list digest, its platforms, linux/amd64 labels', async () => {
    const info = await client.describeTag('acme/multi', 'latest');
    assert.ok(info);
    assert.equal(info.digest, listDigest);
    assert.equal(info.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(info.platforms, ['linux/arm64/v8', 'linux/amd64']);
    assert.equal(info.revision, 'amd');
    assert.equal(info.version, '2.0.0');
  });

  test('deleteTag removes the manifest: HEAD 404s and docker pull fails', async () => {
    const digest = await pushTestImage(reg.host, 'acme/gone', 'v1');
    assert.deepEqual(await client.deleteTag('acme/gone', 'v1'), { digest });
    assert.equal(await client.getManifestDigest('acme/gone', 'v1'), undefined);
    assert.deepEqual(await client.listTags('acme/gone'), []);
    const ref = `${reg.host}/acme/gone:v1`;
    await execFileP('docker', ['rmi', ref]).catch(() => undefined); // pushTestImage already removed it; be sure
    await assert.rejects(execFileP('docker', ['pull', ref]), /manifest unknown|not found/i);
  });

  test('deleteTag of a manifest list deletes the list, not its images', async () => {
    assert.deepEqual(await client.deleteTag('acme/multi', 'latest'), { digest: listDigest });
    assert.equal(await client.getManifestDigest('acme/multi', 'latest'), undefined);
    assert.equal(await client.getManifestDigest('acme/multi', 'amd64'), amd64Digest);
  });

  test('deleteTag of a tag that does not exist: 404 MANIFEST_UNKNOWN', async () => {
    await assert.rejects(client.deleteTag('acme/app', 'nope'), isRegistryError(404, 'MANIFEST_UNKNOWN'));
  });

  test('invalid names and tags are refused before any request', async () => {
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    for (const name of ['Acme/App', '../etc', 'a//b', 'a/', '/a', '-a', 'a-', 'a:b', 'a?b', 'a%2fb', '']) {
      assert.equal(isValidRepositoryName(name), false, name);
      await assert.rejects(c.listTags(name), isRegistryError(400, 'NAME_INVALID'), name);
      await assert.rejects(c.describeTag(name, 'v1'), isRegistryError(400, 'NAME_INVALID'), name);
    }
    for (const tag of ['.hidden', '-x', 'a/b', 'a:b', 'x'.repeat(129), '', 'a b']) {
      assert.equal(isValidTag(tag), false, tag);
      await assert.rejects(c.deleteTag('acme/app', tag), isRegistryError(400, 'TAG_INVALID'), tag);
      await assert.rejects(c.getManifestDigest('acme/app', tag), isRegistryError(400, 'TAG_INVALID'), tag);
    }
    assert.deepEqual(rec.urls, []);
    for (const name of ['a', 'acme/app', 'a.b/c_d/e__f/g--h', 'x0/y-1']) assert.equal(isValidRepositoryName(name), true, name);
    for (const tag of ['v1', 'latest', '_x', 'V1.2.3-rc.1', 'x'.repeat(128)]) assert.equal(isValidTag(tag), true, tag);
  });

  test('registry stopped: 503 unreachable; started again: same data', async () => {
    await reg.stop();
    try {
      await assert.rejects(client.listRepositories(), isRegistryError(503, undefined, new RegExp(`^registry unreachable at ${reg.url}: `)));
      await assert.rejects(client.ping(), isRegistryError(503));
    } finally {
      await reg.start();
    }
    assert.equal(await client.getManifestDigest('acme/app', 'v1'), plainDigest);
  });
});

describe('registry client: retagging (manifest bytes in, the same bytes out)', () => {
  let reg: TestRegistry;
  let client: ReturnType<typeof createRegistryClient>;
  let digest: string;

  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
    digest = await pushTestImage(reg.host, 'acme/app', 'v1', { labels: LABELS });
  });
  after(() => reg?.close());

  test('getManifestBytes: the exact bytes, by tag or by digest; undefined when absent', async () => {
    const byTag = await client.getManifestBytes('acme/app', 'v1');
    assert.ok(byTag);
    assert.equal(byTag.digest, digest);
    assert.equal(sha256(byTag.bytes), digest);
    assert.equal(byTag.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const byDigest = await client.getManifestBytes('acme/app', digest);
    assert.ok(byDigest?.bytes.equals(byTag.bytes));
    assert.equal(await client.getManifestBytes('acme/app', 'nope'), undefined);
    assert.equal(await client.getManifestBytes('no/such-repo', 'v1'), undefined);
    assert.equal(await client.getManifestBytes('acme/app', sha256('never pushed')), undefined);
  });

  test('retagImage: every new tag resolves to the same digest and labels; a repeated tag is PUT once', async () => {
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    assert.deepEqual(await retagImage(c, 'acme/app', digest, ['sha-0123456', '1.2.3', 'sha-0123456']), [
      { tag: 'sha-0123456', digest },
      { tag: '1.2.3', digest },
    ]);
    assert.equal(rec.urls.length, 3, 'one GET, then one PUT per tag:\n' + rec.urls.join('\n'));
    const before = await client.describeTag('acme/app', 'v1');
    for (const tag of ['sha-0123456', '1.2.3']) {
      const info = await client.describeTag('acme/app', tag);
      assert.deepEqual(info, { ...before, tag });
      assert.equal(info?.digest, digest);
      assert.equal(info?.revision, LABELS['org.opencontainers.image.revision']);
    }
    assert.deepEqual(await client.listTags('acme/app'), ['1.2.3', 'sha-0123456', 'v1']);
  });

  test('the engine pulls a retagged tag as the original image', async () => {
    const ref = `${reg.host}/acme/app:1.2.3`;
    try {
      await execFileP('docker', ['pull', ref]);
      const { stdout } = await execFileP('docker', ['inspect', '--format', '{{index .RepoDigests 0}}', ref]);
      assert.equal(stdout.trim(), `${reg.host}/acme/app@${digest}`);
    } finally {
      await execFileP('docker', ['rmi', ref]).catch(() => undefined);
    }
  });

  test('an existing tag moves to the retagged digest', async () => {
    const other = await pushTestImage(reg.host, 'acme/app', 'moving');
    assert.notEqual(other, digest);
    await retagImage(client, 'acme/app', digest, ['moving']);
    assert.equal(await client.getManifestDigest('acme/app', 'moving'), digest);
    assert.equal(await client.getManifestDigest('acme/app', other), other, 'the old image stays, untagged');
  });

  test('OCI manifests keep their exact bytes (odd whitespace included), with or without mediaType in the body', async () => {
    for (const [name, omitMediaType] of [['acme/oci', false], ['acme/oci-bare', true]] as const) {
      const labels = { 'org.opencontainers.image.revision': `rev-${name}`, 'org.opencontainers.image.version': '3.0.0' };
      const pushed = await pushOciImage(reg.url, name, 'v1', { labels, omitMediaType });
      const got = await client.getManifestBytes(name, pushed.digest);
      assert.ok(got && got.bytes.equals(pushed.bytes), name);
      assert.equal(got.mediaType, OCI_MANIFEST, `${name}: the stored type comes from Content-Type`);
      assert.deepEqual(await retagImage(client, name, pushed.digest, ['latest']), [{ tag: 'latest', digest: pushed.digest }]);
      const info = await client.describeTag(name, 'latest');
      assert.equal(info?.digest, pushed.digest, name);
      assert.equal(info?.mediaType, OCI_MANIFEST, name);
      assert.equal(info?.revision, `rev-${name}`);
      assert.equal(info?.created, '2024-05-06T07:08:09Z');
    }
  });

  test('a manifest list is retagged as a list: same digest, same platforms', async () => {
    await pushTestImage(reg.host, 'acme/multi', 'amd64', { labels: { 'org.opencontainers.image.revision': 'amd' } });
    await pushTestImage(reg.host, 'acme/multi', 'arm64');
    const list = await pushTestManifestList(reg.url, 'acme/multi', 'v1', [
      { reference: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
      { reference: 'arm64', platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await retagImage(client, 'acme/multi', list, ['stable']);
    const info = await client.describeTag('acme/multi', 'stable');
    assert.equal(info?.digest, list);
    assert.equal(info?.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(info?.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(info?.revision, 'amd');
  });

  test('a digest that is gone: 404 naming name@digest, and no tag is made', async () => {
    const gone = await pushTestImage(reg.host, 'acme/gone', 'v1');
    await client.deleteTag('acme/gone', 'v1');
    for (const d of [gone, sha256('never pushed')]) {
      await assert.rejects(
        retagImage(client, 'acme/gone', d, ['again']),
        isRegistryError(404, 'MANIFEST_UNKNOWN', new RegExp(`^acme/gone@${d} is no longer in the registry$`)),
      );
    }
    assert.deepEqual(await client.listTags('acme/gone'), []);
  });

  test('putManifest: the registry refusing a manifest is a RegistryError with its code', async () => {
    const got = await client.getManifestBytes('acme/app', digest);
    assert.ok(got);
    // Same bytes in another repository: its blobs are not there (no cross-repository mount).
    await assert.rejects(client.putManifest('acme/elsewhere', 'v1', got.bytes, got.mediaType), isRegistryError(400, 'MANIFEST_BLOB_UNKNOWN', /PUT \/v2\/acme\/elsewhere\/manifests\/v1/));
    // The type of the body must match the declared one.
    await assert.rejects(client.putManifest('acme/app', 'v9', got.bytes, OCI_MANIFEST), isRegistryError(400));
    assert.equal(await client.getManifestDigest('acme/app', 'v9'), undefined);
  });

  test('bad names, tags and digests are refused before any request', async () => {
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    await assert.rejects(retagImage(c, 'Acme/App', digest, ['x']), isRegistryError(400, 'NAME_INVALID'));
    await assert.rejects(retagImage(c, 'acme/app', 'sha256:abc', ['x']), isRegistryError(400, 'DIGEST_INVALID'));
    await assert.rejects(retagImage(c, 'acme/app', digest, ['ok', 'not ok']), isRegistryError(400, 'TAG_INVALID'));
    await assert.rejects(c.putManifest('acme/app', '-x', Buffer.from('{}'), OCI_MANIFEST), isRegistryError(400, 'TAG_INVALID'));
    await assert.rejects(c.getManifestBytes('acme/app', 'a:b'), isRegistryError(400, 'TAG_INVALID'));
    assert.deepEqual(await retagImage(c, 'acme/app', digest, []), []);
    assert.deepEqual(rec.urls, []);
  });
});

describe('registry client: deletion disabled', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ deleteEnabled: false });
  });
  after(() => reg?.close());

  test('deleteTag: 405 UNSUPPORTED with the setting that enables it; the tag stays', async () => {
    const digest = await pushTestImage(reg.host, 'acme/app', 'v1');
    const client = createRegistryClient({ url: reg.url });
    await assert.rejects(
      client.deleteTag('acme/app', 'v1'),
      isRegistryError(405, 'UNSUPPORTED', /deletion disabled.*REGISTRY_STORAGE_DELETE_ENABLED=true/),
    );
    assert.equal(await client.getManifestDigest('acme/app', 'v1'), digest);
  });
});

describe('registry client: htpasswd auth', () => {
  const auth = { username: 'dockhook', password: 's3cret-Pa55' };
  let reg: TestRegistry;
  let digest: string;
  const client = (o: Partial<RegistryClientOptions> = {}) => createRegistryClient({ url: reg.url, ...o });

  before(async () => {
    reg = await startRegistry({ auth });
    digest = await pushTestImage(reg.host, 'acme/app', 'v1', { auth, labels: LABELS });
    await pushTestImage(reg.host, 'acme/app', 'v2', { auth });
  });
  after(() => reg?.close());

  test('right credentials: every call works', async () => {
    const c = client({ auth });
    // ping never answers challenges: a readiness probe must not depend on (or hammer) the login.
    assert.deepEqual(await c.ping(), { ok: true, status: 401 });
    assert.deepEqual(await c.listRepositories(), ['acme/app']);
    assert.deepEqual(await c.listTags('acme/app'), ['v1', 'v2']);
    assert.equal((await c.describeTag('acme/app', 'v1'))?.version, '1.2.3');
    assert.equal(await c.getManifestDigest('acme/app', 'v1'), digest);
    await c.deleteTag('acme/app', 'v2');
    assert.deepEqual(await c.listTags('acme/app'), ['v1']);
  });

  test('credentials are sent up front once the registry has asked for Basic', async () => {
    const rec = recordingFetch();
    const c = client({ auth, fetch: rec.fetch });
    await c.listTags('acme/app'); // 401, then retried with credentials
    await c.listTags('acme/app');
    assert.equal(rec.urls.length, 3);
  });

  test('no credentials: 401 naming the settings to set; ping still counts the registry as up', async () => {
    const c = client();
    assert.deepEqual(await c.ping(), { ok: true, status: 401 });
    await assert.rejects(
      c.listTags('acme/app'),
      isRegistryError(401, 'UNAUTHORIZED', /^registry requires credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD$/),
    );
  });

  test('wrong credentials: 401 refused, and the password appears nowhere', async () => {
    const wrong = { username: 'dockhook', password: 'not-the-Pa55word' };
    const c = client({ auth: wrong });
    for (const call of [() => c.listRepositories(), () => c.describeTag('acme/app', 'v1'), () => c.deleteTag('acme/app', 'v1')]) {
      await assert.rejects(call(), (err: unknown) => {
        isRegistryError(401, 'UNAUTHORIZED', /^registry refused the credentials in REGISTRY_USERNAME\/REGISTRY_PASSWORD$/)(err);
        assert.ok(!JSON.stringify({ m: (err as Error).message, s: (err as Error).stack }).includes(wrong.password));
        return true;
      });
    }
  });

  test('retag with credentials; a PUT answered 401 is sent again with its body', async () => {
    const pushed = await pushTestImage(reg.host, 'acme/retag', 'v1', { auth, labels: LABELS });
    const got = await client({ auth }).getManifestBytes('acme/retag', pushed);
    assert.ok(got);
    // A fresh client: its first request is the PUT, which meets the Basic challenge.
    const rec = recordingFetch();
    assert.equal(await client({ auth, fetch: rec.fetch }).putManifest('acme/retag', 'put-first', got.bytes, got.mediaType), pushed);
    assert.equal(rec.urls.length, 2);
    assert.deepEqual(await retagImage(client({ auth }), 'acme/retag', pushed, ['1.2.3']), [{ tag: '1.2.3', digest: pushed }]);
    assert.equal((await client({ auth }).describeTag('acme/retag', '1.2.3'))?.digest, pushed);
    await assert.rejects(retagImage(client(), 'acme/retag', pushed, ['anon']), isRegistryError(401, 'UNAUTHORIZED', /requires credentials/));
    assert.deepEqual(await client({ auth }).listTags('acme/retag'), ['1.2.3', 'put-first', 'v1']);
  });
});

const hasOpenssl = await execFileP('openssl', ['version']).then(
  () => true,
  () => false,
);

describe('registry client: token (Bearer) auth', { skip: hasOpenssl ? false : 'needs the openssl CLI for the token certificate' }, () => {
  const auth = { username: 'dockhook', password: 't0ken-Pa55' };
  let reg: TestRegistry;
  let digest: string;

  before(async () => {
    reg = await startRegistry({ auth, tokenAuth: true });
    digest = await pushTestImage(reg.host, 'acme/app', 'v1', { auth, labels: LABELS });
  });
  after(() => reg?.close());

  test('right credentials: a token per scope, fetched once and reused', async () => {
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, auth, fetch: rec.fetch });
    assert.deepEqual(await c.listRepositories(), ['acme/app']);
    assert.deepEqual(await c.listTags('acme/app'), ['v1']);
    assert.deepEqual(await c.listTags('acme/app'), ['v1']);
    assert.equal((await c.describeTag('acme/app', 'v1'))?.revision, LABELS['org.opencontainers.image.revision']);
    const tokenRequests = rec.urls.filter((u) => u.includes('/token?'));
    assert.deepEqual(
      tokenRequests.map((u) => new URL(u).searchParams.get('scope')),
      ['registry:catalog:*', 'repository:acme/app:pull'],
    );
    assert.deepEqual(await c.deleteTag('acme/app', 'v1'), { digest });
  });

  test('no credentials: the anonymous token grants nothing → credentials required', async () => {
    await assert.rejects(createRegistryClient({ url: reg.url }).listTags('acme/app'), isRegistryError(401, 'UNAUTHORIZED', /requires credentials/));
  });

  test('wrong credentials: the token service refuses them', async () => {
    const c = createRegistryClient({ url: reg.url, auth: { ...auth, password: 'nope-Pa55' } });
    await assert.rejects(c.listRepositories(), isRegistryError(401, 'UNAUTHORIZED', /refused the credentials/));
  });

  test('retag: a pull token to read, a pull,push token to PUT, each fetched once', async () => {
    const pushed = await pushTestImage(reg.host, 'acme/retag', 'v1', { auth, labels: LABELS });
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, auth, fetch: rec.fetch });
    assert.deepEqual(await retagImage(c, 'acme/retag', pushed, ['sha-0123456', '1.2.3']), [
      { tag: 'sha-0123456', digest: pushed },
      { tag: '1.2.3', digest: pushed },
    ]);
    const info = await c.describeTag('acme/retag', '1.2.3');
    assert.equal(info?.digest, pushed);
    assert.equal(info?.version, '1.2.3');
    // The registry's challenge names the actions in no fixed order (push,pull or pull,push).
    const scopes = rec.urls
      .filter((u) => u.includes('/token?'))
      .map((u) => new URL(u).searchParams.get('scope') ?? '')
      .map((s) => s.replace(/:([a-z,]+)$/, (_, actions: string) => ':' + actions.split(',').sort().join(',')));
    assert.deepEqual(scopes, ['repository:acme/retag:pull', 'repository:acme/retag:pull,push']);
    await assert.rejects(retagImage(createRegistryClient({ url: reg.url }), 'acme/retag', pushed, ['anon']), isRegistryError(401, 'UNAUTHORIZED'));
    assert.deepEqual(await c.listTags('acme/retag'), ['1.2.3', 'sha-0123456', 'v1']);
  });
});
