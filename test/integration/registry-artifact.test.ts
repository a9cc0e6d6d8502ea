import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  ARTIFACT_LAYER_MEDIA_TYPE,
  ARTIFACT_TYPE,
  EMPTY_CONFIG_DESCRIPTOR,
  OCI_EMPTY_MEDIA_TYPE,
  pushArtifact,
  readArtifact,
} from '../../src/registry/artifact.js';
import { UPLOAD_CHUNK_BYTES } from '../../src/registry/blobs.js';
import { RegistryError, createRegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

/**
 * Artifacts against real registry 2.8.2 processes, without auth, with
 * htpasswd and with token auth. What the registry stored is read back with
 * plain fetch, not with dockhook's client, so a bug shared by the writer and
 * the reader cannot hide.
 */

const execFileP = promisify(execFile);
const hasOpenssl = await execFileP('openssl', ['version']).then(
  () => true,
  () => false,
);

const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Call {
  method: string;
  url: string;
}

/** fetch that records what was asked: proves an upload was skipped, or streamed in one PATCH. */
function recordingFetch(): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: (input, init) => {
      calls.push({ method: init?.method ?? 'GET', url: String(input instanceof Request ? input.url : input) });
      return fetch(input, init);
    },
  };
}

const uploads = (calls: Call[]) => calls.filter((c) => c.method === 'POST' && c.url.includes('/blobs/uploads/'));
const patches = (calls: Call[]) => calls.filter((c) => c.method === 'PATCH');

/**
 * A plain Registry API reader (no dockhook code): Basic credentials, or the
 * token dance of distribution's auth spec done by hand.
 */
function rawRegistry(url: string, auth?: { username: string; password: string }) {
  const basic = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : undefined;
  let bearer: string | undefined;
  return async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const go = (authorization?: string) => fetch(`${url}${path}`, { headers: { ...headers, ...(authorization ? { authorization } : {}) } });
    let res = await go(bearer ?? basic);
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate') ?? '';
    await res.body?.cancel();
    if (/^Bearer /i.test(challenge)) {
      const p = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const realm = new URL(p.realm);
      realm.searchParams.set('service', p.service);
      realm.searchParams.set('scope', p.scope);
      const tokenRes = await fetch(realm, { headers: basic ? { authorization: basic } : {} });
      assert.equal(tokenRes.status, 200, 'token service');
      bearer = `Bearer ${((await tokenRes.json()) as { token: string }).token}`;
      res = await go(bearer);
    }
    return res;
  };
}

/** Looks like a .tar.gz to anyone who checks the magic bytes; random after that, so it does not compress. */
function fakeTarGz(size: number): Buffer {
  const b = randomBytes(size);
  b[0] = 0x1f;
  b[1] = 0x8b;
  b[2] = 0x08;
  return b;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const modes = [
  { label: 'no auth', auth: undefined, tokenAuth: false },
  { label: 'htpasswd auth', auth: { username: 'ci', password: 'Artifact-Pa55' }, tokenAuth: false },
  { label: 'token auth', auth: { username: 'ci', password: 'Artifact-Pa55' }, tokenAuth: true, skip: hasOpenssl ? false : 'needs the openssl CLI for the token certificate' },
] as const;

for (const mode of modes) {
  describe(`registry artifacts: ${mode.label}`, { skip: 'skip' in mode ? mode.skip : false }, () => {
    let reg: TestRegistry;
    let dir: string;
    let file: string;
    let content: Buffer;
    let first: Awaited<ReturnType<typeof pushArtifact>>;
    const name = 'acme/app-artifacts';
    const annotations = { 'org.opencontainers.image.revision': 'a'.repeat(40), 'io.dockhook.artifact.name': 'dist', 'io.dockhook.platform': 'linux/amd64' };

    before(async () => {
      reg = await startRegistry({ auth: mode.auth, tokenAuth: mode.tokenAuth });
      dir = await mkdtemp(join(tmpdir(), 'dockhook-artifact-'));
      content = fakeTarGz(20 * MiB);
      file = join(dir, 'dist.tar.gz');
      await writeFile(file, content);
    });
    after(async () => {
      await reg?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('a 20 MiB file pushed as a stream is stored as an OCI artifact: the manifest and blob read back with plain fetch', async () => {
      const rec = recordingFetch();
      const client = createRegistryClient({ url: reg.url, auth: mode.auth, fetch: rec.fetch });
      first = await pushArtifact(client, name, 'v1.0.0-dist', { file: createReadStream(file), fileName: 'dist.tar.gz', annotations });
      assert.equal(first.layerDigest, sha256(content));
      assert.equal(first.layerSize, content.length);
      assert.equal(first.layerUploaded, true);
      // The 20 MiB layer in bounded chunks; the 2-byte config went as one monolithic PUT, with no PATCH.
      assert.equal(patches(rec.calls).length, Math.ceil(content.length / UPLOAD_CHUNK_BYTES), rec.calls.map((c) => `${c.method} ${c.url}`).join('\n'));

      const raw = rawRegistry(reg.url, mode.auth);
      const res = await raw(`/v2/${name}/manifests/v1.0.0-dist`, { accept: OCI_MANIFEST });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), OCI_MANIFEST);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('docker-content-digest'), first.digest);
      assert.equal(sha256(bytes), first.digest, 'the registry serves the bytes it was given');
      assert.equal(bytes.length, first.size);
      console.log(`# manifest as stored (${bytes.length} bytes): ${bytes.toString()}`);
      assert.deepEqual(JSON.parse(bytes.toString()), {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: ARTIFACT_TYPE,
        config: { mediaType: OCI_EMPTY_MEDIA_TYPE, digest: EMPTY_CONFIG_DESCRIPTOR.digest, size: 2, data: 'e30=' },
        layers: [{ mediaType: ARTIFACT_LAYER_MEDIA_TYPE, digest: sha256(content), size: content.length, annotations: { 'org.opencontainers.image.title': 'dist.tar.gz' } }],
        annotations,
      });

      const config = await raw(`/v2/${name}/blobs/${EMPTY_CONFIG_DESCRIPTOR.digest}`);
      assert.equal(config.status, 200);
      assert.equal(await config.text(), '{}');

      const blob = await raw(`/v2/${name}/blobs/${first.layerDigest}`);
      assert.equal(blob.status, 200);
      const got = Buffer.from(await blob.arrayBuffer());
      assert.equal(got.length, content.length);
      assert.equal(sha256(got), first.layerDigest);
      assert.ok(got.equals(content), 'the blob holds the file, byte for byte');
    });

    test('readArtifact streams the same bytes, with the layer descriptor', async () => {
      const client = createRegistryClient({ url: reg.url, auth: mode.auth });
      for (const reference of ['v1.0.0-dist', first.digest]) {
        const art = await readArtifact(client, name, reference);
        assert.ok(art);
        assert.equal(art.digest, first.digest);
        assert.equal(art.artifactType, ARTIFACT_TYPE);
        assert.deepEqual(art.annotations, annotations);
        assert.equal(art.fileName, 'dist.tar.gz');
        assert.deepEqual(art.layer, { mediaType: ARTIFACT_LAYER_MEDIA_TYPE, digest: first.layerDigest, size: content.length, annotations: { 'org.opencontainers.image.title': 'dist.tar.gz' } });
        assert.ok((await readAll(art.stream)).equals(content));
      }
      assert.equal(await readArtifact(client, name, 'no-such-tag'), undefined);
    });

    test('pushing the same content again uploads no blob: only the manifest goes out', async () => {
      const rec = recordingFetch();
      const client = createRegistryClient({ url: reg.url, auth: mode.auth, fetch: rec.fetch });
      const stream = createReadStream(file);
      const again = await pushArtifact(client, name, 'sha-abcdef0-dist', { file: stream, fileName: 'dist.tar.gz', annotations, digest: first.layerDigest, size: content.length });
      assert.equal(again.digest, first.digest, 'same file, same annotations: same manifest bytes');
      assert.equal(again.layerUploaded, false);
      assert.deepEqual(uploads(rec.calls), [], rec.calls.map((c) => `${c.method} ${c.url}`).join('\n'));
      assert.deepEqual(patches(rec.calls), []);
      assert.ok(stream.destroyed, 'the unread stream is closed');
      // (With auth, a new client's first HEAD is answered 401 and sent again with credentials.)
      const headed = new Set(rec.calls.filter((c) => c.method === 'HEAD').map((c) => new URL(c.url).pathname.split('/').pop()));
      assert.deepEqual([...headed].sort(), [EMPTY_CONFIG_DESCRIPTOR.digest, first.layerDigest].sort());

      // Bytes in memory: the digest is known up front, so the same skip happens without being told.
      const rec2 = recordingFetch();
      const client2 = createRegistryClient({ url: reg.url, auth: mode.auth, fetch: rec2.fetch });
      const fromBuffer = await pushArtifact(client2, name, 'latest-dist', { file: content, fileName: 'dist.tar.gz', annotations });
      assert.equal(fromBuffer.digest, first.digest);
      assert.deepEqual(uploads(rec2.calls), []);
    });

    test('a stream that does not match the digest or size given is not committed', async () => {
      const client = createRegistryClient({ url: reg.url, auth: mode.auth });
      const other = fakeTarGz(64 * 1024);
      await assert.rejects(
        pushArtifact(client, name, 'bad-dist', { file: Readable.from([other]), fileName: 'dist.tar.gz', digest: sha256('something else') }),
        (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID' && /blob not pushed: the stream's bytes have digest/.test(err.message),
      );
      await assert.rejects(
        pushArtifact(client, name, 'bad-dist', { file: Readable.from([other]), fileName: 'dist.tar.gz', size: other.length + 1 }),
        (err: unknown) => err instanceof RegistryError && err.code === 'SIZE_INVALID' && /is 65536 bytes, not the 65537/.test(err.message),
      );
      assert.equal(await client.blobExists(name, sha256(other)), false);
      assert.equal(await client.getManifestDigest(name, 'bad-dist'), undefined);
    });
  });
}

describe('registry artifacts: refusals', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  test('bad names are refused before any request', async () => {
    const rec = recordingFetch();
    const client = createRegistryClient({ url: reg.url, fetch: rec.fetch });
    const file = Buffer.from('x');
    for (const fileName of ['', '../x.tar.gz', 'dist/x.tar.gz', '..']) {
      await assert.rejects(pushArtifact(client, 'acme/app', 'v1', { file, fileName }), (err: unknown) => err instanceof RegistryError && err.status === 400 && /artifact file name/.test(err.message));
    }
    await assert.rejects(pushArtifact(client, 'acme/app', 'v1', { file, fileName: 'a.tar.gz', artifactType: 'not a type' }), /invalid artifactType/);
    await assert.rejects(pushArtifact(client, 'Acme/App', 'v1', { file, fileName: 'a.tar.gz' }), /invalid repository name/);
    await assert.rejects(client.uploadBlob('acme/app', file, { digest: 'sha256:abc' }), /invalid digest/);
    assert.deepEqual(rec.calls, []);
  });

  test('readArtifact refuses a manifest that is not a dockhook artifact, and a missing blob says what happened', async () => {
    const client = createRegistryClient({ url: reg.url });
    const other = await pushArtifact(client, 'acme/app', 'helm', { file: Buffer.from('chart'), fileName: 'chart.tgz', artifactType: 'application/vnd.cncf.helm.chart.v1' });
    await assert.rejects(readArtifact(client, 'acme/app', 'helm'), (err: unknown) => err instanceof RegistryError && err.status === 409 && /is not a dockhook artifact: its artifactType is "application\/vnd.cncf.helm.chart.v1"/.test(err.message));
    const art = await readArtifact(client, 'acme/app', other.digest, { artifactType: 'application/vnd.cncf.helm.chart.v1' });
    assert.equal((await readAll(art!.stream)).toString(), 'chart');
    await assert.rejects(client.openBlob('acme/app', sha256('never pushed')), (err: unknown) => err instanceof RegistryError && err.status === 404 && err.code === 'BLOB_UNKNOWN');
  });
});

describe('registry artifacts: 200 MiB streamed both ways with bounded memory', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  test('upload and download of a 200 MiB stream keep RSS growth well under the size', async () => {
    // In a fresh process: this one's heap already holds (and reuses) what the tests above allocated.
    const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', MEMORY_PROBE, reg.url, String(200 * MiB)], {
      cwd: new URL('../..', import.meta.url),
      timeout: 300_000,
    });
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as { upload: number; download: number; produced: string; pushed: string; downloaded: string; size: number; read: number };
    console.log(`# 200 MiB artifact: RSS grew by at most ${(r.upload / MiB).toFixed(1)} MiB during the upload, ${(r.download / MiB).toFixed(1)} MiB during the download`);
    assert.equal(r.size, 200 * MiB);
    assert.equal(r.read, 200 * MiB);
    assert.equal(r.pushed, r.produced, 'the layer digest is the hash of what the stream produced');
    assert.equal(r.downloaded, r.produced, 'the download is the same bytes');
    assert.ok(r.upload < 150 * MiB, `upload RSS growth ${(r.upload / MiB).toFixed(1)} MiB`);
    assert.ok(r.download < 150 * MiB, `download RSS growth ${(r.download / MiB).toFixed(1)} MiB`);
  });
});

/** Pushes a generated stream of argv[2] bytes as an artifact and reads it back, sampling RSS; prints one JSON line. */
const MEMORY_PROBE = `
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createRegistryClient } from './src/registry/client.ts';
import { pushArtifact, readArtifact } from './src/registry/artifact.ts';
const [url, totalArg] = process.argv.slice(1);
const total = Number(totalArg);
function sampler() {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  return () => { clearInterval(timer); return Math.max(peak, process.memoryUsage().rss) - start; };
}
const expected = createHash('sha256');
let produced = 0;
// Made as it is read: nothing holds the whole blob but the registry's disk.
const source = new Readable({
  read() {
    if (produced >= total) return void this.push(null);
    const c = randomBytes(Math.min(256 * 1024, total - produced));
    produced += c.length;
    expected.update(c);
    this.push(c);
  },
});
const client = createRegistryClient({ url });
const up = sampler();
const pushed = await pushArtifact(client, 'acme/big', 'v1-dist', { file: source, fileName: 'big.tar.gz' });
const upload = up();
const down = sampler();
const art = await readArtifact(client, 'acme/big', 'v1-dist');
const check = createHash('sha256');
let read = 0;
for await (const c of art.stream) { check.update(c); read += c.length; }
const download = down();
console.log(JSON.stringify({ upload, download, size: pushed.layerSize, read, produced: 'sha256:' + expected.digest('hex'), pushed: pushed.layerDigest, downloaded: 'sha256:' + check.digest('hex') }));
`;
