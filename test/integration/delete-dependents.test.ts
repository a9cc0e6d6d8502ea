import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { pino } from 'pino';
import { FileBuildLogs } from '../../src/logs/file-logs.js';
import { loadConfig } from '../../src/config.js';
import { createGitHubAccess } from '../../src/github/access.js';
import { createApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { applyRetention } from '../../src/registry/apply-retention.js';
import { pushArtifact } from '../../src/registry/artifact.js';
import { RegistryError, createRegistryClient, type RegistryClient } from '../../src/registry/client.js';
import { indexChildFor, putIndex } from '../../src/registry/image-index.js';
import { ARTIFACT_ANNOTATIONS, artifactTag, platformTag } from '../../src/registry/internal-tags.js';
import { retagImage } from '../../src/registry/retag.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { pushTestImage, startRegistry, type TestRegistry } from '../support/registry-server.js';

/**
 * A version's index children (`_platform-` tags) and artifacts (`_artifact-`
 * tags) go with it, through DELETE /api/images/…/tags/… and through
 * KEEP_VERSIONS, against a real registry 2.8. The engine builds amd64 only,
 * so each "platform" image is another small amd64 image: what matters is
 * which manifests the index names.
 */

const TOKEN = 'api-token-for-tests-0123';
const WRITE = { authorization: `Bearer ${TOKEN}` };
const ACCEPT = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

const shaOf = (c: string) => c.repeat(40);
const day = (d: number) => new Date(Date.UTC(2026, 0, d)).toISOString();

before(() => ensureBusyboxImage());

async function status(reg: TestRegistry, name: string, reference: string): Promise<number> {
  const res = await fetch(`${reg.url}/v2/${name}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  await res.body?.cancel();
  return res.status;
}

interface Version {
  index: string;
  children: Record<string, string>;
  artifacts: Record<string, string>;
}

/**
 * What a multi-platform build of `sha` pushes: one image per platform under
 * its _platform- tag (or, for the platforms in `reuse`, an image already in the
 * repository tagged again), the index under the version tag, sha- and
 * `extra` tags on it, and one artifact per platform.
 */
async function pushMultiVersion(
  reg: TestRegistry,
  client: RegistryClient,
  name: string,
  o: { sha: string; version: string; created: string; extra?: string[]; reuse?: Record<string, string> },
): Promise<Version> {
  const children: Record<string, string> = {};
  const labels = { 'org.opencontainers.image.revision': o.sha, 'org.opencontainers.image.created': o.created, 'org.opencontainers.image.version': o.version };
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const tag = platformTag(o.sha, platform);
    const reused = o.reuse?.[platform];
    children[platform] = reused
      ? (await retagImage(client, name, reused, [tag]))[0]!.digest
      : await pushTestImage(reg.host, name, tag, { labels, content: `${o.sha} ${platform}` });
  }
  const kids = await Promise.all(Object.entries(children).map(([p, d]) => indexChildFor(client, name, d, p)));
  const index = await putIndex(client, name, o.version, kids);
  await retagImage(client, name, index, [`sha-${o.sha.slice(0, 7)}`, ...(o.extra ?? [])]);
  const artifacts: Record<string, string> = {};
  for (const platform of Object.keys(children)) {
    const tag = artifactTag(o.sha, 'dist', platform);
    artifacts[tag] = (
      await pushArtifact(client, name, tag, {
        file: Buffer.from(`dist of ${o.sha} for ${platform}`),
        fileName: 'dist.tar.gz',
        annotations: { [ARTIFACT_ANNOTATIONS.imageDigest]: index, [ARTIFACT_ANNOTATIONS.name]: 'dist', [ARTIFACT_ANNOTATIONS.platform]: platform, [ARTIFACT_ANNOTATIONS.revision]: o.sha },
      })
    ).digest;
  }
  return { index, children, artifacts };
}

interface Api {
  url: string;
  close(): Promise<void>;
}

async function startApi(reg: TestRegistry): Promise<Api> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-delete-dependents-'));
  const config = loadConfig({ WEBHOOK_SECRET: 's', GITHUB_TOKEN: 'ghp_unused', REGISTRY: reg.host, DATA_DIR: dataDir, API_TOKEN: TOKEN });
  const log = pino({ level: 'silent' });
  const store = new SqliteStore(dataDir);
  const app = createApp({
    config,
    store,
    logs: new FileBuildLogs(dataDir),
    docker: new Docker(),
    registry: createRegistryClient({ url: config.registryUrl }),
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
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function del(api: Api, name: string, tag: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.url}/api/images/${name}/tags/${tag}`, { method: 'DELETE', headers: WRITE });
  return { status: res.status, body: await res.json() };
}

describe('DELETE /api/images/<name>/tags/<tag> takes the version\'s platform images and artifacts along', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let api: Api;
  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
    api = await startApi(reg);
  });
  after(async () => {
    await api?.close();
    await reg?.close();
  });

  it("deletes the children no other index names and the artifacts of the index; a child shared with a kept version stays, without the deleted version's tag", async () => {
    const name = 'team/multi';
    const a = shaOf('a');
    const b = shaOf('b');
    const v1 = await pushMultiVersion(reg, client, name, { sha: a, version: '1.0.0', created: day(1), extra: ['1.0'] });
    // 1.0.1's arm64 image is 1.0.0's, unchanged: the same manifest, tagged again for its commit.
    const v2 = await pushMultiVersion(reg, client, name, { sha: b, version: '1.0.1', created: day(2), reuse: { 'linux/arm64': v1.children['linux/arm64']! } });
    assert.equal(v2.children['linux/arm64'], v1.children['linux/arm64']);

    const { status: code, body } = await del(api, name, '1.0.0');
    assert.equal(code, 200, JSON.stringify(body));
    assert.equal(body.digest, v1.index);
    assert.deepEqual(body.failures, []);
    assert.deepEqual(body.alsoRemoved, ['1.0', '_artifact-aaaaaaa-dist-linux-amd64', '_artifact-aaaaaaa-dist-linux-arm64', '_platform-aaaaaaa-linux-amd64', '_platform-aaaaaaa-linux-arm64', 'sha-aaaaaaa']);

    assert.equal(await status(reg, name, v1.index), 404);
    assert.equal(await status(reg, name, v1.children['linux/amd64']!), 404, 'the amd64 image only 1.0.0 named');
    for (const d of Object.values(v1.artifacts)) assert.equal(await status(reg, name, d), 404, `artifact ${d}`);
    assert.equal(await status(reg, name, v1.children['linux/arm64']!), 200, '1.0.1 still names the arm64 image');
    assert.equal(await status(reg, name, v2.index), 200);
    for (const d of Object.values(v2.artifacts)) assert.equal(await status(reg, name, d), 200);
    // The shared image lost 1.0.0's _platform- tag only: 1.0.1's tag and index still name it, and it still pulls.
    assert.deepEqual(await client.listTags(name), [
      '1.0.1',
      '_artifact-bbbbbbb-dist-linux-amd64',
      '_artifact-bbbbbbb-dist-linux-arm64',
      '_platform-bbbbbbb-linux-amd64',
      '_platform-bbbbbbb-linux-arm64',
      'sha-bbbbbbb',
    ]);
    assert.equal(await client.getManifestDigest(name, '_platform-bbbbbbb-linux-arm64'), v1.children['linux/arm64']);
    assert.equal(await status(reg, name, '_platform-aaaaaaa-linux-arm64'), 404);
    const index = JSON.parse((await client.getManifestBytes(name, '1.0.1'))!.bytes.toString('utf8')) as { manifests: { digest: string }[] };
    for (const m of index.manifests) assert.equal(await status(reg, name, m.digest), 200, `1.0.1's child ${m.digest}`);

    // The last version goes with what only it had, the shared image included: no leftover tag of 1.0.0 holds it back.
    const last = await del(api, name, '1.0.1');
    assert.equal(last.status, 200, JSON.stringify(last.body));
    assert.deepEqual(last.body.failures, []);
    assert.deepEqual(last.body.alsoRemoved, ['_artifact-bbbbbbb-dist-linux-amd64', '_artifact-bbbbbbb-dist-linux-arm64', '_platform-bbbbbbb-linux-amd64', '_platform-bbbbbbb-linux-arm64', 'sha-bbbbbbb']);
    assert.equal(await status(reg, name, v2.children['linux/amd64']!), 404);
    assert.equal(await status(reg, name, v1.children['linux/arm64']!), 404, 'the shared image, once no version names it');
    assert.deepEqual(await client.listTags(name), []);
  });

  it("a _platform- tag of the deleted commit that names another image (a forced rebuild in progress) stays, with that image", async () => {
    const name = 'team/rebuilding';
    const sha = shaOf('f');
    const v = await pushMultiVersion(reg, client, name, { sha, version: '4.0.0', created: day(4) });
    // A forced rebuild of the same commit has pushed its new amd64 image, not its index yet.
    const rebuilt = await pushTestImage(reg.host, name, platformTag(sha, 'linux/amd64'), { labels: { 'org.opencontainers.image.revision': sha }, content: 'rebuilt amd64' });
    assert.notEqual(rebuilt, v.children['linux/amd64']);

    const { status: code, body } = await del(api, name, '4.0.0');
    assert.equal(code, 200, JSON.stringify(body));
    assert.deepEqual(body.failures, []);
    assert.deepEqual(body.alsoRemoved, ['_artifact-fffffff-dist-linux-amd64', '_artifact-fffffff-dist-linux-arm64', '_platform-fffffff-linux-arm64', 'sha-fffffff']);
    assert.equal(await status(reg, name, v.children['linux/amd64']!), 404, 'the old amd64 image, which nothing names');
    assert.equal(await client.getManifestDigest(name, platformTag(sha, 'linux/amd64')), rebuilt);
    assert.deepEqual(await client.listTags(name), ['_platform-fffffff-linux-amd64']);
  });

  it("a single-platform image's artifact goes with it; another version's stays", async () => {
    const name = 'team/single';
    const images: Record<string, { image: string; artifact: string }> = {};
    for (const [version, c, d] of [['2.0.0', 'c', 1], ['2.0.1', 'd', 2]] as const) {
      const sha = shaOf(c);
      const labels = { 'org.opencontainers.image.revision': sha, 'org.opencontainers.image.created': day(d) };
      const image = await pushTestImage(reg.host, name, version, { labels, content: version });
      await retagImage(client, name, image, [`sha-${sha.slice(0, 7)}`]);
      const artifact = await pushArtifact(client, name, artifactTag(sha, 'dist'), {
        file: Buffer.from(`dist ${version}`),
        fileName: 'dist.tar.gz',
        annotations: { [ARTIFACT_ANNOTATIONS.imageDigest]: image, [ARTIFACT_ANNOTATIONS.name]: 'dist' },
      });
      images[version] = { image, artifact: artifact.digest };
    }
    const { status: code, body } = await del(api, name, '2.0.0');
    assert.equal(code, 200, JSON.stringify(body));
    assert.deepEqual(body.alsoRemoved, ['_artifact-ccccccc-dist', 'sha-ccccccc']);
    assert.equal(await status(reg, name, images['2.0.0']!.artifact), 404);
    assert.equal(await status(reg, name, images['2.0.1']!.artifact), 200);
    assert.deepEqual(await client.listTags(name), ['2.0.1', '_artifact-ddddddd-dist', 'sha-ddddddd']);
  });

  it('refuses to delete an internal tag on its own: 400, saying what to delete instead, and nothing goes', async () => {
    const name = 'team/guarded';
    const v = await pushMultiVersion(reg, client, name, { sha: shaOf('e'), version: '3.0.0', created: day(3) });
    const before = await client.listTags(name);
    for (const tag of ['_platform-eeeeeee-linux-amd64', '_artifact-eeeeeee-dist-linux-arm64']) {
      const { status: code, body } = await del(api, name, tag);
      assert.equal(code, 400, JSON.stringify(body));
      assert.match(body.error, new RegExp(`^${name}:${tag} is a tag dockhook keeps for itself .*cannot be deleted on its own`));
      assert.match(body.hint, /delete the version it belongs to \(the one tagged sha-eeeeeee\)/);
    }
    assert.deepEqual(await client.listTags(name), before);
    assert.equal(await status(reg, name, v.children['linux/amd64']!), 200);
  });
});

describe('KEEP_VERSIONS (applyRetention) on multi-platform versions', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
  });
  after(() => reg?.close());

  it('keep=1: the older version goes with its children and artifacts; a child a build in progress tagged stays', async () => {
    const name = 'kept/multi';
    const v1 = await pushMultiVersion(reg, client, name, { sha: shaOf('1'), version: '1.0.0', created: day(1), extra: ['stable'] });
    const v2 = await pushMultiVersion(reg, client, name, { sha: shaOf('2'), version: '1.0.1', created: day(2) });
    // A build of commit 3333333 in progress: it pushed its amd64 image (1.0.0's, unchanged) and no index yet.
    await retagImage(client, name, v1.children['linux/amd64']!, [platformTag(shaOf('3'), 'linux/amd64')]);

    const outcome = await applyRetention(client, name, 1);
    assert.deepEqual(outcome.failures, []);
    assert.deepEqual(outcome.plan.remove, ['1.0.0', 'sha-1111111', 'stable']);
    assert.deepEqual(outcome.plan.keep, ['1.0.1', 'sha-2222222']);
    // 1.0.0's amd64 image stays for the build in progress, without 1.0.0's own tag on it.
    assert.deepEqual(outcome.removed, ['1.0.0', '_artifact-1111111-dist-linux-amd64', '_artifact-1111111-dist-linux-arm64', '_platform-1111111-linux-amd64', '_platform-1111111-linux-arm64', 'sha-1111111', 'stable']);

    assert.equal(await status(reg, name, v1.index), 404);
    assert.equal(await status(reg, name, v1.children['linux/arm64']!), 404);
    for (const d of Object.values(v1.artifacts)) assert.equal(await status(reg, name, d), 404);
    assert.equal(await status(reg, name, v1.children['linux/amd64']!), 200, 'tagged by the build in progress');
    assert.equal(await status(reg, name, v2.index), 200);
    for (const d of [...Object.values(v2.children), ...Object.values(v2.artifacts)]) assert.equal(await status(reg, name, d), 200);
    assert.deepEqual(await client.listTags(name), [
      '1.0.1',
      '_artifact-2222222-dist-linux-amd64',
      '_artifact-2222222-dist-linux-arm64',
      '_platform-2222222-linux-amd64',
      '_platform-2222222-linux-arm64',
      '_platform-3333333-linux-amd64',
      'sha-2222222',
    ]);

    // Nothing more to do: a second run deletes nothing, and the internal tags never count as versions.
    const again = await applyRetention(client, name, 1);
    assert.deepEqual(again.removed, []);
    assert.deepEqual(again.failures, []);
  });
});

describe('registry client untag (registry 2.8, which has no tag deletion)', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  before(async () => {
    reg = await startRegistry();
    client = createRegistryClient({ url: reg.url });
  });
  after(() => reg?.close());

  it('removes the tag alone: the manifest stays with its other tags, and the placeholder the tag was moved to is deleted', async () => {
    const name = 'untag/one';
    const image = await pushTestImage(reg.host, name, '_platform-0000000-linux-amd64', { content: 'untag me' });
    await retagImage(client, name, image, ['_platform-1111111-linux-amd64', 'keep']);

    assert.deepEqual(await client.untag(name, '_platform-0000000-linux-amd64'), { digest: image });
    assert.deepEqual(await client.listTags(name), ['_platform-1111111-linux-amd64', 'keep']);
    assert.equal(await status(reg, name, image), 200);
    assert.equal(await client.getManifestDigest(name, 'keep'), image);
    assert.equal(await status(reg, name, '_platform-0000000-linux-amd64'), 404);

    // Twice: the second finds no tag.
    await assert.rejects(client.untag(name, '_platform-0000000-linux-amd64'), (err: RegistryError) => err.status === 404 && err.code === 'MANIFEST_UNKNOWN');
    // The last tag too: the manifest is still there by digest.
    await client.untag(name, 'keep');
    await client.untag(name, '_platform-1111111-linux-amd64');
    assert.deepEqual(await client.listTags(name), []);
    assert.equal(await status(reg, name, image), 200);
  });

  it('on a registry with deletion disabled: 405, and the message names the placeholder the tag now points at', async () => {
    const ro = await startRegistry({ deleteEnabled: false });
    try {
      const c = createRegistryClient({ url: ro.url });
      const name = 'untag/nodelete';
      const image = await pushTestImage(ro.host, name, 'a', { content: 'no delete' });
      await assert.rejects(c.untag(name, 'a'), (err: RegistryError) => {
        assert.equal(err.status, 405);
        assert.equal(err.code, 'UNSUPPORTED');
        assert.match(err.message, new RegExp(`^${name}:a no longer names ${image}, but the placeholder sha256:[0-9a-f]{64} it was moved to could not be deleted: `));
        return true;
      });
      assert.equal(await status(ro, name, image), 200);
    } finally {
      await ro.close();
    }
  });
});
