import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { RegistryError, createRegistryClient, type RegistryClient } from '../../src/registry/client.js';
import { buildIndex, indexChildFor, indexChildren, putIndex, type IndexChild } from '../../src/registry/image-index.js';
import { retagImage } from '../../src/registry/retag.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { pushTestImage, startRegistry, type TestRegistry } from '../support/registry-server.js';

/**
 * Multi-platform references against a real registry 2.8.2 and the real
 * engine. The engine here builds amd64 only, so the "arm64" image is another
 * amd64 busybox image with its own label and file: what matters is that the
 * index routes each platform to its own child.
 */

const execFileP = promisify(execFile);
const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = [LIST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json', OCI_MANIFEST].join(', ');
const ARCH_LABEL = 'org.example.dockhook-test.arch';
const run = randomBytes(4).toString('hex');

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

before(() => ensureBusyboxImage());

function recordingFetch(): { fetch: typeof fetch; requests: string[] } {
  const requests: string[] = [];
  return {
    requests,
    fetch: (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(String(input instanceof Request ? input.url : input)).pathname}`);
      return fetch(input, init);
    },
  };
}

async function uploadBlob(registryUrl: string, name: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const start = await fetch(`${registryUrl}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  await start.body?.cancel();
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(bytes) });
  assert.equal(put.status, 201, `PUT blob: ${put.status} ${await put.text()}`);
  return { digest, size: bytes.length };
}

/** An OCI image manifest made over HTTP (no engine): what BuildKit pushes with oci-mediatypes. */
async function pushOciImage(registryUrl: string, name: string, tag: string, architecture: string): Promise<void> {
  const layer = await uploadBlob(registryUrl, name, randomBytes(64));
  const config = await uploadBlob(registryUrl, name, Buffer.from(JSON.stringify({ architecture, os: 'linux', config: { Labels: { [ARCH_LABEL]: architecture } }, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
  const res = await fetch(`${registryUrl}/v2/${name}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: bytes });
  assert.equal(res.status, 201, `PUT OCI manifest: ${res.status} ${await res.text()}`);
}

async function rawGet(registryUrl: string, name: string, reference: string): Promise<{ status: number; type: string | null; digest: string | null; bytes: Buffer }> {
  const res = await fetch(`${registryUrl}/v2/${name}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  return { status: res.status, type: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest'), bytes: Buffer.from(await res.arrayBuffer()) };
}

async function dockerOut(args: string[]): Promise<string> {
  return (await execFileP('docker', args, { maxBuffer: 10 * 1024 * 1024 })).stdout.trim();
}

describe('image index: assembled and PUT through the Registry API', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let amd64: IndexChild;
  let arm64: IndexChild;
  let indexDigest: string;
  const name = 'acme/multi';

  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
    // Two different images: different label, different file.
    await pushTestImage(reg.host, name, '1.0-linux-amd64', { labels: { [ARCH_LABEL]: 'amd64', 'org.opencontainers.image.revision': 'rev-amd64' }, content: `amd64 ${run}` });
    await pushTestImage(reg.host, name, '1.0-linux-arm64', { labels: { [ARCH_LABEL]: 'arm64', 'org.opencontainers.image.revision': 'rev-arm64' }, content: `arm64 ${run}` });
    amd64 = await indexChildFor(client, name, '1.0-linux-amd64', 'linux/amd64');
    arm64 = await indexChildFor(client, name, '1.0-linux-arm64', 'linux/arm64');
  });
  after(() => reg?.close());

  test('children read from the registry are Docker schema-2 manifests with their exact size', async () => {
    for (const [tag, child] of [['1.0-linux-amd64', amd64], ['1.0-linux-arm64', arm64]] as const) {
      const raw = await rawGet(reg.url, name, tag);
      assert.equal(child.digest, raw.digest);
      assert.equal(child.digest, sha256(raw.bytes));
      assert.equal(child.size, raw.bytes.length);
      assert.equal(child.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    }
    assert.notEqual(amd64.digest, arm64.digest);
  });

  test('putIndex: a Docker manifest list under the tag, stored byte for byte', async () => {
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    // Given arm64 first: the stored order is the platform order all the same.
    indexDigest = await putIndex(c, name, '1.0', [arm64, amd64]);
    const expected = buildIndex([amd64, arm64]);
    assert.equal(indexDigest, expected.digest);
    assert.deepEqual(rec.requests.slice(-1), [`PUT /v2/${name}/manifests/1.0`]);
    assert.equal(rec.requests.filter((r) => r.startsWith('PUT')).length, 1);

    const raw = await rawGet(reg.url, name, '1.0');
    assert.equal(raw.status, 200);
    assert.equal(raw.type, LIST);
    assert.equal(raw.digest, indexDigest);
    assert.ok(raw.bytes.equals(expected.bytes), `the registry serves the bytes sent:\n${raw.bytes}`);
    const body = JSON.parse(raw.bytes.toString());
    assert.equal(body.manifests.length, 2);
    assert.deepEqual(
      body.manifests.map((m: { digest: string; platform: { os: string; architecture: string } }) => [m.digest, `${m.platform.os}/${m.platform.architecture}`]),
      [[amd64.digest, 'linux/amd64'], [arm64.digest, 'linux/arm64']],
    );
  });

  test('describeTag reports the platforms, and describes the index by its linux/amd64 image', async () => {
    const info = await client.describeTag(name, '1.0');
    assert.ok(info);
    assert.equal(info.digest, indexDigest);
    assert.equal(info.mediaType, LIST);
    assert.deepEqual(info.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(info.revision, 'rev-amd64');
    assert.equal((await client.describeTag(name, '1.0-linux-arm64'))?.revision, 'rev-arm64');
  });

  test('indexChildren: the children with their platforms; [] for a single image; undefined when absent', async () => {
    assert.deepEqual(await indexChildren(client, name, '1.0'), [amd64, arm64]);
    assert.deepEqual(await indexChildren(client, name, indexDigest), [amd64, arm64]);
    assert.deepEqual(await indexChildren(client, name, '1.0-linux-amd64'), []);
    assert.equal(await indexChildren(client, name, 'nope'), undefined);
  });

  test('docker manifest inspect shows two entries', async () => {
    // A private DOCKER_CONFIG: `docker manifest` keeps a local cache of lists there.
    const out = await execFileP('docker', ['manifest', 'inspect', '--insecure', `${reg.host}/${name}:1.0`], { env: { ...process.env, DOCKER_CONFIG: `/tmp/dockhook-manifest-${run}` } });
    const listed = JSON.parse(out.stdout);
    assert.equal(listed.mediaType, LIST);
    assert.deepEqual(listed.manifests.map((m: { digest: string }) => m.digest), [amd64.digest, arm64.digest]);
  });

  test('docker pull --platform linux/amd64 gets the amd64 child', async () => {
    const ref = `${reg.host}/${name}:1.0`;
    await execFileP('docker', ['rmi', ref]).catch(() => undefined);
    try {
      await dockerOut(['pull', '--platform', 'linux/amd64', ref]);
      assert.equal(await dockerOut(['inspect', '--format', `{{index .Config.Labels "${ARCH_LABEL}"}}`, ref]), 'amd64');
      assert.equal(await dockerOut(['run', '--rm', ref, 'cat', '/dockhook-test-content']), `amd64 ${run}`);
      // The reference pulled is the index: its digest is what the engine records.
      assert.equal(await dockerOut(['inspect', '--format', '{{index .RepoDigests 0}}', ref]), `${reg.host}/${name}@${indexDigest}`);
    } finally {
      await execFileP('docker', ['rmi', ref]).catch(() => undefined);
    }
  });

  test('docker pull --platform linux/arm64 gets the arm64 child', async () => {
    const ref = `${reg.host}/${name}:1.0`;
    await execFileP('docker', ['rmi', ref]).catch(() => undefined);
    try {
      await dockerOut(['pull', '--platform', 'linux/arm64', ref]);
      assert.equal(await dockerOut(['inspect', '--format', `{{index .Config.Labels "${ARCH_LABEL}"}}`, ref]), 'arm64');
    } finally {
      await execFileP('docker', ['rmi', ref]).catch(() => undefined);
    }
  });

  test('the same children give the same digest; retagImage points more tags at the index', async () => {
    assert.equal(await putIndex(client, name, '1.0-again', [amd64, arm64]), indexDigest);
    assert.deepEqual(await retagImage(client, name, indexDigest, ['latest', 'sha-0123456']), [
      { tag: 'latest', digest: indexDigest },
      { tag: 'sha-0123456', digest: indexDigest },
    ]);
    assert.deepEqual((await client.describeTag(name, 'latest'))?.platforms, ['linux/amd64', 'linux/arm64']);
  });

  test('an OCI child makes an OCI image index, which the registry accepts and describes', async () => {
    await pushOciImage(reg.url, name, '2.0-linux-arm64', 'arm64');
    const oci = await indexChildFor(client, name, '2.0-linux-arm64', 'linux/arm64');
    assert.equal(oci.mediaType, OCI_MANIFEST);
    const d = await putIndex(client, name, '2.0', [amd64, oci]);
    const raw = await rawGet(reg.url, name, '2.0');
    assert.equal(raw.type, OCI_INDEX);
    assert.equal(raw.digest, d);
    assert.equal(JSON.parse(raw.bytes.toString()).mediaType, OCI_INDEX);
    const info = await client.describeTag(name, '2.0');
    assert.equal(info?.mediaType, OCI_INDEX);
    assert.deepEqual(info?.platforms, ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(await indexChildren(client, name, '2.0'), [amd64, oci]);
  });

  test('an index naming a digest not in the repository fails before any PUT, saying what to push', async () => {
    const absent: IndexChild = { ...arm64, digest: sha256(`never pushed ${run}`) };
    const rec = recordingFetch();
    const c = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    await assert.rejects(putIndex(c, name, '3.0', [amd64, absent]), (err: unknown) => {
      assert.ok(err instanceof RegistryError, String(err));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'MANIFEST_UNKNOWN');
      assert.match(err.message, new RegExp(`^cannot tag acme/multi:3\\.0 as an index: 1 of its 2 images is not in acme/multi: ${absent.digest} \\(linux/arm64\\)$`));
      assert.match(err.hint ?? '', /push each platform's image to acme\/multi/);
      return true;
    });
    assert.deepEqual(rec.requests.filter((r) => !r.startsWith('GET')), [], 'no PUT (nor anything else) was sent');
    assert.equal(await client.getManifestDigest(name, '3.0'), undefined);

    // The same index PUT without the check: registry 2.8.2 refuses it as well, less helpfully.
    const res = await fetch(`${reg.url}/v2/${name}/manifests/3.0`, { method: 'PUT', headers: { 'content-type': LIST }, body: new Uint8Array(buildIndex([amd64, absent]).bytes) });
    const text = await res.text();
    assert.equal(res.status, 400, text);
    assert.match(text, /MANIFEST_BLOB_UNKNOWN/);
  });

  test('children in another repository count as missing: the registry wants them in the same one', async () => {
    await assert.rejects(putIndex(client, 'acme/elsewhere', '1.0', [amd64, arm64]), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.code, 'MANIFEST_UNKNOWN');
      assert.match(err.message, /2 of its 2 images are not in acme\/elsewhere/);
      return true;
    });
    assert.deepEqual(await client.listTags('acme/elsewhere'), []);
  });
});
