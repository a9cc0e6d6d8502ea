import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { createGitHubAccess } from '../../src/github/access.js';
import { DIGEST_HEADER } from '../../src/http/api-artifacts.js';
import { createApp } from '../../src/http/app.js';
import { toBuildView } from '../../src/http/build-view.js';
import { renderBuildBody } from '../../src/http/page-build.js';
import { FileBuildLogs } from '../../src/logs/file-logs.js';
import { createMetrics } from '../../src/metrics.js';
import { pushArtifact } from '../../src/registry/artifact.js';
import { COLLECT_EVERY_BYTES } from '../../src/registry/blobs.js';
import { createRegistryClient, type RegistryClient } from '../../src/registry/client.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { ArtifactRecord, BuildRecord, Store } from '../../src/store/store.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

/**
 * GET /api/builds/<id>/artifacts[/<name>] through dockhook's real app, with
 * artifacts pushed into a real registry 2.8 process and a build recorded in a
 * real SQLite store. What is downloaded is compared with the bytes pushed.
 */

const MiB = 1024 * 1024;
const TOKEN = 'api-token-for-artifacts-0123';
const REPOSITORY = 'acme/app';
const SHA = 'abc1234'.padEnd(40, '0');
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Gzip's magic bytes, then random (it does not compress, and no two artifacts share a layer). */
function fakeTarGz(size: number): Buffer {
  const b = randomBytes(size);
  b[0] = 0x1f;
  b[1] = 0x8b;
  b[2] = 0x08;
  return b;
}

interface Api {
  url: string;
  close(): Promise<void>;
}

async function startApi(store: Store, dataDir: string, registryUrl: string, registryHost: string, env: Record<string, string> = {}): Promise<Api> {
  const config = loadConfig({ WEBHOOK_SECRET: 's', GITHUB_TOKEN: 'ghp_unused', REGISTRY: registryHost, REGISTRY_URL: registryUrl, DATA_DIR: dataDir, ...env });
  const log = pino({ level: 'silent' });
  const app = createApp({
    config,
    store,
    logs: new FileBuildLogs(dataDir),
    docker: new Docker(),
    registry: createRegistryClient({ url: config.registryUrl, auth: config.registryAuth, timeoutMs: 5_000 }),
    github: createGitHubAccess({ auth: { mode: 'token', token: 'ghp_unused' }, baseUrl: 'http://127.0.0.1:9', log }),
    log,
    metrics: createMetrics(),
    onQueued: () => {},
    isStopping: () => false,
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body, headers: res.headers };
}

async function download(url: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

describe('GET /api/builds/<id>/artifacts (real registry, real SQLite store)', () => {
  let reg: TestRegistry;
  let registry: RegistryClient;
  let dataDir: string;
  let store: SqliteStore;
  let api: Api;
  let publicApi: Api;
  let tokenApi: Api;
  let deadRegistryApi: Api;
  let buildId: number;
  let bareId: number;
  const files: Record<string, Buffer> = {};
  const records: ArtifactRecord[] = [];
  let bigFile = '';
  let bigRecord: ArtifactRecord;

  /** Pushes one artifact as the pipeline does (under its internal tag) and returns what the store keeps of it. */
  async function push(name: string, platform: string | undefined, file: Buffer | string, path = `/out/${name}`): Promise<ArtifactRecord> {
    const tag = `_artifact-${SHA.slice(0, 7)}-${name}${platform ? `-${platform.split('/').join('-')}` : ''}`;
    const pushed = await pushArtifact(registry, REPOSITORY, tag, {
      file: Buffer.isBuffer(file) ? file : createReadStream(file),
      fileName: `${name}.tar.gz`,
      annotations: { 'dev.dockhook.artifact.name': name, ...(platform ? { 'dev.dockhook.platform': platform } : {}) },
    });
    return { name, ...(platform ? { platform } : {}), path, repository: REPOSITORY, tag, digest: pushed.digest, layerDigest: pushed.layerDigest, size: pushed.layerSize };
  }

  before(async () => {
    reg = await startRegistry();
    registry = createRegistryClient({ url: reg.url });
    dataDir = await mkdtemp(join(tmpdir(), 'dockhook-api-artifacts-'));
    store = new SqliteStore(dataDir);

    files.dist = fakeTarGz(300_000);
    files['bin linux/amd64'] = fakeTarGz(100_000);
    files['bin linux/arm64'] = fakeTarGz(120_000);
    files['bin linux/arm/v7'] = fakeTarGz(90_000);
    files.gone = fakeTarGz(1000);
    files.nolayer = fakeTarGz(2000);
    records.push(await push('dist', undefined, files.dist!, '/app/<dist> & "co"'));
    for (const p of ['linux/amd64', 'linux/arm64', 'linux/arm/v7']) records.push(await push('bin', p, files[`bin ${p}`]!));
    const gone = await push('gone', undefined, files.gone!);
    const nolayer = await push('nolayer', undefined, files.nolayer!);
    bigFile = join(dataDir, 'big.tar.gz');
    await writeFile(bigFile, fakeTarGz(50 * MiB));
    bigRecord = await push('big', undefined, bigFile);
    records.push(gone, nolayer, bigRecord);

    // What retention or a tag deletion does: the manifest goes; garbage collection: the blob goes too.
    const delManifest = await fetch(`${reg.url}/v2/${REPOSITORY}/manifests/${gone.digest}`, { method: 'DELETE' });
    assert.equal(delManifest.status, 202, await delManifest.text());
    const delBlob = await fetch(`${reg.url}/v2/${REPOSITORY}/blobs/${nolayer.layerDigest}`, { method: 'DELETE' });
    assert.equal(delBlob.status, 202, await delBlob.text());

    const lease = { owner: 'worker-test', ms: 60_000 };
    const enqueued = await store.enqueue({
      deliveryId: `artifacts-${process.pid}`,
      trigger: 'merge',
      owner: 'acme',
      repo: 'app',
      repoUrl: 'https://github.com/acme/app',
      defaultBranch: 'main',
      branch: 'main',
      sha: SHA,
      mergedAt: '2026-03-01T10:00:00.000Z',
    });
    buildId = enqueued.build.id;
    const claimed = await store.claimNext(lease);
    assert.equal(claimed?.id, buildId);
    await store.setImage(buildId, REPOSITORY, '1.0.0');
    await store.recordPlatform(buildId, { platform: 'linux/amd64', digest: `sha256:${'a'.repeat(64)}`, tag: '_platform-abc1234-linux-amd64' });
    await store.recordPlatform(buildId, { platform: 'linux/arm64', digest: `sha256:${'b'.repeat(64)}`, tag: '_platform-abc1234-linux-arm64' });
    for (const r of [...records].reverse()) await store.recordArtifact(buildId, r);
    assert.ok(await store.markSucceeded(buildId, 'worker-test'));

    // A build without artifacts.
    const bare = await store.enqueue({
      deliveryId: `artifacts-bare-${process.pid}`,
      trigger: 'merge',
      owner: 'acme',
      repo: 'other',
      repoUrl: 'https://github.com/acme/other',
      defaultBranch: 'main',
      branch: 'main',
      sha: 'def5678'.padEnd(40, '0'),
      mergedAt: '2026-03-01T11:00:00.000Z',
    });
    bareId = bare.build.id;

    api = await startApi(store, dataDir, reg.url, reg.host);
    publicApi = await startApi(store, dataDir, reg.url, reg.host, { PUBLIC_URL: 'https://dockhook.example.com/' });
    tokenApi = await startApi(store, dataDir, reg.url, reg.host, { API_TOKEN: TOKEN, API_TOKEN_READS: 'true' });
    // Nothing listens on port 9: the registry is unreachable.
    deadRegistryApi = await startApi(store, dataDir, 'http://127.0.0.1:9', '127.0.0.1:9');
  });

  after(async () => {
    await Promise.all([api, publicApi, tokenApi, deadRegistryApi].map((a) => a?.close()));
    await store?.close();
    await reg?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('lists the artifacts, sorted by name then platform, with digests, oras reference and an absolute URL', async () => {
    const { status, body } = await getJson(`${api.url}/api/builds/${buildId}/artifacts`);
    assert.equal(status, 200);
    const names = body.artifacts.map((a: any) => `${a.name} ${a.platform ?? '-'}`);
    assert.deepEqual(names, ['big -', 'bin linux/amd64', 'bin linux/arm/v7', 'bin linux/arm64', 'dist -', 'gone -', 'nolayer -']);
    const dist = body.artifacts.find((a: any) => a.name === 'dist');
    const distRecord = records.find((r) => r.name === 'dist')!;
    assert.deepEqual(dist, {
      name: 'dist',
      platform: null,
      path: '/app/<dist> & "co"',
      size: files.dist!.length,
      digest: sha256(files.dist!),
      manifest: distRecord.digest,
      reference: `${reg.host}/${REPOSITORY}@${distRecord.digest}`,
      url: `${api.url}/api/builds/${buildId}/artifacts/dist`,
    });
    const arm = body.artifacts.find((a: any) => a.name === 'bin' && a.platform === 'linux/arm64');
    assert.equal(arm.url, `${api.url}/api/builds/${buildId}/artifacts/bin?platform=linux/arm64`);
    assert.equal(arm.digest, sha256(files['bin linux/arm64']!));

    // PUBLIC_URL wins over the address the request reached.
    const pub = await getJson(`${publicApi.url}/api/builds/${buildId}/artifacts`);
    assert.equal(pub.body.artifacts.find((a: any) => a.name === 'dist').url, `https://dockhook.example.com/api/builds/${buildId}/artifacts/dist`);

    const bare = await getJson(`${api.url}/api/builds/${bareId}/artifacts`);
    assert.deepEqual(bare.body, { artifacts: [] });
  });

  it('answers an unknown build as the other build routes do', async () => {
    const missing = await getJson(`${api.url}/api/builds/99999/artifacts`);
    const other = await getJson(`${api.url}/api/builds/99999`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, other.body);
    assert.equal((await getJson(`${api.url}/api/builds/99999/artifacts/dist`)).status, 404);
    assert.equal((await getJson(`${api.url}/api/builds/abc/artifacts`)).status, 400);
    const q = await getJson(`${api.url}/api/builds/${buildId}/artifacts?limit=3`);
    assert.equal(q.status, 400);
    assert.match(q.body.error, /unknown query parameter limit/);
  });

  it('GET /api/builds/<id> and the build view carry platforms and artifacts', async () => {
    const { status, body } = await getJson(`${api.url}/api/builds/${buildId}`);
    assert.equal(status, 200);
    assert.deepEqual(body.platforms, [
      { platform: 'linux/amd64', digest: `sha256:${'a'.repeat(64)}`, tag: '_platform-abc1234-linux-amd64' },
      { platform: 'linux/arm64', digest: `sha256:${'b'.repeat(64)}`, tag: '_platform-abc1234-linux-arm64' },
    ]);
    const listed = await getJson(`${api.url}/api/builds/${buildId}/artifacts`);
    // The same entries; URLs there are relative without PUBLIC_URL (as links.page is).
    assert.deepEqual(
      body.artifacts.map((a: any) => ({ ...a, url: undefined })),
      listed.body.artifacts.map((a: any) => ({ ...a, url: undefined })),
    );
    assert.equal(body.artifacts.find((a: any) => a.name === 'dist').url, `/api/builds/${buildId}/artifacts/dist`);
    const bare = await getJson(`${api.url}/api/builds/${bareId}`);
    assert.deepEqual([bare.body.platforms, bare.body.artifacts], [[], []]);
  });

  it('downloads the file pushed, byte for byte, with its headers', async () => {
    const res = await download(`${api.url}/api/builds/${buildId}/artifacts/dist`);
    assert.equal(res.status, 200);
    assert.ok(res.bytes.equals(files.dist!), 'the bytes pushed');
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    assert.equal(res.headers.get('content-length'), String(files.dist!.length));
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="dist.tar.gz"');
    assert.equal(res.headers.get(DIGEST_HEADER), sha256(files.dist!));
    assert.equal(sha256(res.bytes), res.headers.get(DIGEST_HEADER));

    const head = await fetch(`${api.url}/api/builds/${buildId}/artifacts/dist`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(files.dist!.length));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  it('picks the platform asked for, and normalises how it is spelled', async () => {
    for (const [asked, platform, fileName] of [
      ['linux/arm64', 'linux/arm64', 'bin-linux-arm64.tar.gz'],
      ['linux/arm64/v8', 'linux/arm64', 'bin-linux-arm64.tar.gz'],
      ['linux/x86_64', 'linux/amd64', 'bin-linux-amd64.tar.gz'],
      ['linux/arm/v7', 'linux/arm/v7', 'bin-linux-arm-v7.tar.gz'],
    ] as const) {
      const res = await download(`${api.url}/api/builds/${buildId}/artifacts/bin?platform=${encodeURIComponent(asked)}`);
      assert.equal(res.status, 200, asked);
      assert.ok(res.bytes.equals(files[`bin ${platform}`]!), `${asked}: the bytes pushed for ${platform}`);
      assert.equal(res.headers.get('content-disposition'), `attachment; filename="${fileName}"`);
      assert.equal(res.headers.get(DIGEST_HEADER), sha256(files[`bin ${platform}`]!));
    }
  });

  it('says what to do when the name or platform does not fit', async () => {
    const cases: [string, number, RegExp, RegExp?][] = [
      ['nope', 404, /build \d+ has no artifact "nope"/, /"big", "bin", "dist", "gone", "nolayer"/],
      ['bin', 400, /built for 3 platforms: linux\/amd64, linux\/arm\/v7, linux\/arm64/, /\?platform=linux\/amd64/],
      ['bin?platform=linux/s390x', 404, /has no platform linux\/s390x/, /its platforms are linux\/amd64, linux\/arm\/v7, linux\/arm64/],
      ['bin?platform=linux', 400, /invalid platform "linux"/, /linux\/arm64/],
      ['bin?platform=a/b/c/d', 400, /invalid platform/],
      ['bin?platform=linux/amd64&platform=linux/arm64', 400, /platform may be given once/],
      ['dist?platform=linux/amd64', 404, /has no platform linux\/amd64/, /engine's own platform only: leave \?platform out/],
      ['dist?format=zip', 400, /unknown query parameter format/, /use platform/],
    ];
    for (const [path, status, error, hint] of cases) {
      const res = await getJson(`${api.url}/api/builds/${buildId}/artifacts/${path}`);
      assert.equal(res.status, status, path);
      assert.match(res.body.error, error, path);
      if (hint) assert.match(res.body.hint, hint, path);
    }
    const bare = await getJson(`${api.url}/api/builds/${bareId}/artifacts/dist`);
    assert.equal(bare.status, 404);
    assert.match(bare.body.hint, /it has no artifacts/);
  });

  it('answers 410 when the registry no longer has the artifact, 502 when it cannot be reached', async () => {
    const gone = await getJson(`${api.url}/api/builds/${buildId}/artifacts/gone`);
    assert.equal(gone.status, 410);
    assert.match(gone.body.error, /gone from the registry: retention or a tag deletion removed acme\/app@sha256:/);
    assert.match(gone.body.hint, /build the commit again/);

    const nolayer = await getJson(`${api.url}/api/builds/${buildId}/artifacts/nolayer`);
    assert.equal(nolayer.status, 410);
    assert.match(nolayer.body.error, /gone from the registry: its file sha256:\w+ was deleted/);

    const dead = await getJson(`${deadRegistryApi.url}/api/builds/${buildId}/artifacts/dist`);
    assert.equal(dead.status, 502);
    assert.match(dead.body.error, /registry unreachable/);
    assert.match(dead.body.hint, /registry/);
    // The list is the store's, not the registry's: it still answers.
    assert.equal((await getJson(`${deadRegistryApi.url}/api/builds/${buildId}/artifacts`)).status, 200);
  });

  it('guards reads with API_TOKEN_READS=true', async () => {
    assert.equal((await getJson(`${tokenApi.url}/api/builds/${buildId}/artifacts`)).status, 401);
    assert.equal((await getJson(`${tokenApi.url}/api/builds/${buildId}/artifacts/dist`)).status, 401);
    const listed = await getJson(`${tokenApi.url}/api/builds/${buildId}/artifacts`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(listed.status, 200);
    const res = await download(`${tokenApi.url}/api/builds/${buildId}/artifacts/dist`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200);
    assert.ok(res.bytes.equals(files.dist!));
  });

  it('streams a 50 MiB artifact whole', async () => {
    const res = await download(`${api.url}/api/builds/${buildId}/artifacts/big`);
    assert.equal(res.status, 200);
    assert.equal(res.bytes.length, 50 * MiB);
    assert.ok(res.bytes.equals(await readFile(bigFile)), 'the bytes pushed');
    assert.equal(res.headers.get(DIGEST_HEADER), bigRecord.layerDigest);
  });

  it('asks for a young-generation collection every 4 MiB of a download when node exposes gc (--expose-gc, as the Dockerfile runs it)', async () => {
    const exposed = globalThis.gc;
    const calls: unknown[] = [];
    globalThis.gc = ((options?: unknown) => {
      calls.push(options);
    }) as NodeJS.GCFunction;
    let res;
    try {
      res = await download(`${api.url}/api/builds/${buildId}/artifacts/big`);
    } finally {
      globalThis.gc = exposed;
    }
    assert.equal(res.status, 200);
    assert.ok(res.bytes.equals(await readFile(bigFile)), 'the bytes pushed');
    assert.equal(COLLECT_EVERY_BYTES, 4 * MiB);
    assert.equal(calls.length, Math.floor((50 * MiB) / COLLECT_EVERY_BYTES), '50 MiB: one per 4 MiB streamed');
    assert.ok(calls.every((c) => JSON.stringify(c) === '{"type":"minor"}'), `a scavenge, never a full GC: ${JSON.stringify(calls[0])}`);
  });

  it('survives a client that goes away mid-download', async () => {
    const abort = new AbortController();
    const res = await fetch(`${api.url}/api/builds/${buildId}/artifacts/big`, { signal: abort.signal });
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.read().catch(() => undefined);
    // The server goes on answering, the next download whole.
    const again = await download(`${api.url}/api/builds/${buildId}/artifacts/dist`);
    assert.ok(again.bytes.equals(files.dist!));
  });

  it('the build page shows each platform digest and a curl line per artifact, escaped', async () => {
    const res = await fetch(`${publicApi.url}/builds/${buildId}`);
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /linux\/arm64<\/td><td><div class="digest mono"[^>]*>sha256:b{64}</);
    assert.ok(page.includes(`<code class="pull-cmd">curl -fLo dist.tar.gz https://dockhook.example.com/api/builds/${buildId}/artifacts/dist</code>`), 'curl line for dist');
    assert.ok(
      page.includes(`curl -fLo bin-linux-arm64.tar.gz &#39;https://dockhook.example.com/api/builds/${buildId}/artifacts/bin?platform=linux/arm64&#39;`),
      'curl line for one platform, quoted for the shell',
    );
    assert.ok(page.includes(`href="https://dockhook.example.com/api/builds/${buildId}/artifacts/dist"`), 'download link');
    assert.ok(page.includes('/app/&lt;dist&gt; &amp; &quot;co&quot;'), 'the path, escaped');
    assert.ok(!page.includes('<dist>'));

    // With API_TOKEN_READS=true the lines send the token.
    const build = (await store.get(buildId)) as BuildRecord;
    const body = renderBuildBody(toBuildView(build, { registry: reg.host, publicUrl: 'https://dockhook.example.com' }), [], { tokenForReads: true }).value;
    assert.ok(body.includes(`curl -fLo dist.tar.gz -H &quot;Authorization: Bearer $API_TOKEN&quot; https://dockhook.example.com/api/builds/${buildId}/artifacts/dist`));
  });
});
