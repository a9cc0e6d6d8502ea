import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { BuildRecord } from '../../src/store/store.js';
import { pushBusyboxIndex } from '../support/busybox-index.js';
import type { GitRepo } from '../support/git-repo.js';
import { docker, startHarness, type Harness } from '../support/harness.js';
import { sharedPostgres } from '../support/postgres.js';
import { until } from '../support/wait.js';

const OWNER = 'arch-org';
const API_TOKEN = 'api-token-for-multi-platform-3b9d';
const LIST_TYPES = ['application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.index.v1+json'];
const ACCEPT = [...LIST_TYPES, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json'].join(', ');

/** The files of one tar archive (the engine's archive of a path, gunzipped): name → content. Plain ustar, as the engine writes it. */
function untar(tar: Buffer): Record<string, string> {
  const files: Record<string, string> = {};
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const prefix = header.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    if (type === '0' || type === '\0') files[prefix ? `${prefix}/${name}` : name] = tar.subarray(at + 512, at + 512 + size).toString('utf8');
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** Every run gets its own RUN lines: the engine keeps its build cache between runs, and a cached step proves nothing. */
const run = randomUUID().slice(0, 8);

const dockerInfo = (archVersion: string) =>
  JSON.stringify({
    images: [
      { service_name: 'arch', version: archVersion, context: 'arch', platforms: ['linux/amd64', 'linux/arm64'], artifacts: [{ name: 'arch', path: '/arch' }] },
      { service_name: 'dist', version: '1.0.0', context: 'dist', target: 'dist', artifacts: [{ name: 'dist', path: '/dist' }] },
      { service_name: 'missing', version: '1.0.0', context: 'dist', target: 'dist', artifacts: [{ name: 'nope', path: '/not/there' }] },
      { service_name: 'big', version: '1.0.0', context: 'big', artifacts: [{ name: 'blob', path: '/blob' }] },
      { service_name: 'win', version: '1.0.0', context: 'arch', platforms: ['linux/amd64', 'windows/amd64'] },
    ],
  });

const files = () => ({
  'dockerInfo.json': dockerInfo('1.0.0'),
  // A RUN step for each platform: under QEMU for arm64.
  'arch/Dockerfile': `ARG DOCKHOOK_REGISTRY\nFROM \${DOCKHOOK_REGISTRY}/busybox:multi\nRUN echo ${run} > /run.txt && uname -m > /arch\nCMD ["cat", "/arch"]\n`,
  // The output stage holds only what the build made: an artifact, not an image to run.
  'dist/Dockerfile': `ARG DOCKHOOK_REGISTRY\nFROM \${DOCKHOOK_REGISTRY}/busybox:multi AS build\nCOPY app.txt /src/app.txt\nRUN mkdir -p /dist/sub && echo built-${run} > /dist/out.txt && cp /src/app.txt /dist/sub/app.txt\nFROM scratch AS dist\nCOPY --from=build /dist /dist\n`,
  'dist/app.txt': 'hello from the repository\n',
  'big/Dockerfile': `ARG DOCKHOOK_REGISTRY\nFROM \${DOCKHOOK_REGISTRY}/busybox:multi\nRUN echo ${run} && dd if=/dev/zero of=/blob bs=1024 count=2048\n`,
});

const matrix = [
  { store: 'sqlite', builder: 'classic' },
  { store: 'postgres', builder: 'buildkit' },
] as const;

for (const { store, builder } of matrix) describe(`platforms and artifacts (real engine, registry and QEMU; ${store}, ${builder} builder)`, () => {
  let h: Harness;
  let repo: GitRepo;
  let images: Record<string, BuildRecord>;
  let sha: string;

  before(async () => {
    const database: Record<string, string> = store === 'postgres' ? { DATABASE_URL: await (await sharedPostgres()).createDatabase() } : {};
    h = await startHarness({ env: { BUILD_CONCURRENCY: '2', API_TOKEN, BUILDER: builder, ARTIFACT_MAX_BYTES: String(1024 * 1024), ...database } });
    await pushBusyboxIndex(h.registry);
    repo = await h.createRepo(OWNER, 'arch', files());
    sha = repo.head();
    images = await mergeHead(1);
  });

  let pr = 0;
  async function mergeHead(number = ++pr): Promise<Record<string, BuildRecord>> {
    pr = number;
    const answer = await h.merge(OWNER, 'arch', repo.head(), { number });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const headId = answer.body.build as number;
    await h.waitForBuild(headId);
    const group = await until(`the images of merge #${headId}`, async () => {
      const list = await h.service.store.listGroup(headId);
      return list.length && list.every((b) => (b.state === 'succeeded' || b.state === 'failed') && !h.service.worker?.isRunning(b.id)) ? list : undefined;
    }, 300_000);
    return Object.fromEntries(group.map((b) => [b.service!, b]));
  }
  after(async () => {
    await h?.close();
  });

  const manifest = async (name: string, ref: string) => {
    const res = await fetch(`${h.registry.url}/v2/${name}/manifests/${ref}`, { headers: { accept: ACCEPT } });
    return { status: res.status, type: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest'), body: res.ok ? ((await res.json()) as { manifests?: { digest: string; platform: { architecture: string } }[] }) : undefined };
  };
  const log = async (b: BuildRecord) => `${b.failure}\n${await h.service.logs.read(b.id)}`;

  it('pushes one index of two platforms, and every tag points at it', async () => {
    const arch = images.arch!;
    assert.equal(arch.state, 'succeeded', await log(arch));
    const top = await manifest('arch', '1.0.0');
    assert.ok(LIST_TYPES.includes(top.type!), `1.0.0 is a ${top.type}`);
    assert.deepEqual(top.body!.manifests!.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
    for (const tag of [`sha-${sha.slice(0, 7)}`, 'latest']) assert.equal((await manifest('arch', tag)).digest, top.digest, tag);
    // The store and the API know each platform's image.
    assert.deepEqual(arch.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(arch.platforms.map((p) => p.digest).sort(), top.body!.manifests!.map((m) => m.digest).sort());
    const view = (await (await fetch(`${h.url}/api/builds/${arch.id}`)).json()) as { platforms: { platform: string; digest: string }[] };
    assert.deepEqual(view.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64']);
  });

  it('docker pull of each platform runs that platform: aarch64 and x86_64', async () => {
    const ref = `${h.registry.host}/arch:1.0.0`;
    for (const [platform, expected] of [['linux/arm64', 'aarch64'], ['linux/amd64', 'x86_64']] as const) {
      await docker('pull', '--platform', platform, ref);
      assert.equal(await docker('run', '--rm', '--network', 'none', '--platform', platform, ref), expected, platform);
      await docker('rmi', ref);
    }
  });

  it('keeps one artifact per platform, downloadable through the API', async () => {
    const listed = (await (await fetch(`${h.url}/api/builds/${images.arch!.id}/artifacts`)).json()) as { artifacts: { name: string; platform: string; url: string }[] };
    assert.deepEqual(listed.artifacts.map((a) => `${a.name} ${a.platform}`), ['arch linux/amd64', 'arch linux/arm64']);
    for (const [platform, expected] of [['linux/arm64', 'aarch64'], ['linux/amd64', 'x86_64']]) {
      const res = await fetch(`${h.url}/api/builds/${images.arch!.id}/artifacts/arch?platform=${platform}`);
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(untar(gunzipSync(Buffer.from(await res.arrayBuffer()))), { arch: `${expected}\n` });
    }
  });

  it('copies an artifact out of a FROM scratch output stage; the API serves the very blob the registry holds', async () => {
    const dist = images.dist!;
    assert.equal(dist.state, 'succeeded', await log(dist));
    const [artifact] = dist.artifacts;
    assert.ok(artifact);
    const res = await fetch(`${h.url}/api/builds/${dist.id}/artifacts/dist`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(untar(gunzipSync(body)), { 'dist/out.txt': `built-${run}\n`, 'dist/sub/app.txt': 'hello from the repository\n' });
    // Straight from the Registry API, by the digest the artifact's manifest names (no dockhook code).
    const art = (await (await fetch(`${h.registry.url}/v2/dist/manifests/${artifact.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { artifactType: string; layers: { digest: string; size: number }[] };
    assert.equal(art.artifactType, 'application/vnd.dockhook.artifact.v1');
    const blob = Buffer.from(await (await fetch(`${h.registry.url}/v2/dist/blobs/${art.layers[0]!.digest}`)).arrayBuffer());
    assert.ok(blob.equals(body), 'the download is the registry blob, byte for byte');
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, art.layers[0]!.digest);
  });

  it('a missing path and an oversized artifact fail the build with their messages', async () => {
    assert.equal(images.missing!.state, 'failed');
    assert.match(images.missing!.failure ?? '', /\/not\/there/);
    assert.equal(images.big!.state, 'failed');
    assert.match(images.big!.failure ?? '', /1(\.0)? MiB|1048576/);
  });

  it('a platform the engine cannot run fails before anything is built, saying why', async () => {
    const win = images.win!;
    assert.equal(win.state, 'failed');
    assert.match(win.failure ?? '', /windows\/amd64 cannot run on this engine: it runs linux containers/);
    assert.doesNotMatch(await h.service.logs.read(win.id), /building .*win/);
    assert.equal((await manifest('win', `_platform-${sha.slice(0, 7)}-linux-amd64`)).status, 404);
  });

  it('a version bump alone tags the same index, with its platforms and artifacts, without building', async () => {
    await repo.commit({ 'dockerInfo.json': dockerInfo('1.0.1') }, 'arch: 1.0.1');
    const next = await mergeHead();
    const arch = next.arch!;
    assert.equal(arch.state, 'succeeded', await log(arch));
    assert.match(await h.service.logs.read(arch.id), /inputs unchanged since/);
    assert.doesNotMatch(await h.service.logs.read(arch.id), /building .*for linux/);
    const top = await manifest('arch', '1.0.0');
    assert.equal((await manifest('arch', '1.0.1')).digest, top.digest);
    assert.equal((await manifest('arch', `sha-${repo.head().slice(0, 7)}`)).digest, top.digest);
    assert.deepEqual(arch.platforms, images.arch!.platforms);
    assert.deepEqual(arch.artifacts, images.arch!.artifacts);
  });

  it('deleting the version deletes its per-platform images and its artifacts', async () => {
    const arch = images.arch!;
    const top = await manifest('arch', '1.0.0');
    // 1.0.1 is the same index (a version bump): both go.
    const res = await fetch(`${h.url}/api/images/arch/tags/1.0.0?shared=delete`, { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(res.status, 200, await res.clone().text());
    for (const m of top.body!.manifests!) assert.equal((await manifest('arch', m.digest)).status, 404, `child ${m.platform.architecture} is gone`);
    for (const a of arch.artifacts) assert.equal((await manifest('arch', a.digest)).status, 404, `artifact ${a.platform} is gone`);
    const tags = (await (await fetch(`${h.registry.url}/v2/arch/tags/list`)).json()) as { tags: string[] | null };
    assert.deepEqual(tags.tags ?? [], []);
  });
});
