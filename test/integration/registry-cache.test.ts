import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { loadPullCredentials, type PullCredentials } from '../../src/engine/pull-credentials.js';
import { createLogger } from '../../src/log.js';
import { buildImageWithReport, type BuildOutcome } from '../../src/pipeline/build.js';
import { chooseCacheRefs } from '../../src/pipeline/cache-refs.js';
import { pushImage } from '../../src/pipeline/push.js';
import { createRegistryClient, type RegistryClient } from '../../src/registry/client.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { ensureSecondEngine } from '../support/second-engine.js';

/**
 * A new build host is not a cold build host: an image built and pushed from
 * one engine, then built again (one file changed) on a second real engine
 * that never built it, with the registry's latest and previous version as
 * cachefrom. The registry wants a login, so the pulls (classic) and the cache
 * manifest fetches (BuildKit) must use the build's credentials.
 */

const run = promisify(execFile);
const USER = { username: 'dockhook', password: 'pw-cache-test-7c1e' };
type BuilderName = 'classic' | 'buildkit';

const engine1 = new Docker();
let engine2: Docker;
let registry: TestRegistry;
let client: RegistryClient;
let credentials: PullCredentials;
let base: string;
const cleanups: (() => Promise<unknown>)[] = [];

/** Builds `files` on `docker` the way run-build.ts hands a context to each builder (a tar stream, or folders for BuildKit's file sync). */
async function build(docker: Docker, builder: BuilderName, files: Record<string, string>, o: { tags: string[]; cacheFrom?: string[] }): Promise<BuildOutcome & { lines: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-cache-ctx-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    // The tar is read whole first: a child's stdout nobody reads yet is drained when it exits, and the classic build reads the context only after the cache pulls.
    const context = builder === 'classic' ? { tar: Readable.from([(await run('tar', ['-C', dir, '-cf', '-', '.'], { encoding: 'buffer' })).stdout]) } : { dirs: { context: dir, dockerfile: dir } };
    const lines: string[] = [];
    const outcome = await buildImageWithReport(docker, {
      context,
      dockerfile: 'Dockerfile',
      tags: o.tags,
      labels: {},
      buildArgs: {},
      cacheFrom: o.cacheFrom,
      credentials,
      signal: AbortSignal.timeout(180_000),
      onLine: (line) => lines.push(line),
    });
    return { ...outcome, lines };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function push(ref: string): Promise<void> {
  await pushImage(engine1, ref, { registry: registry.host, auth: USER, signal: AbortSignal.timeout(60_000), onLine: () => {} });
}

const removeImages = (docker: Docker, refs: string[]) => Promise.all(refs.map((r) => docker.getImage(r).remove({ force: true }).catch(() => undefined)));

/** The image's config as the registry holds it. */
async function registryConfig(name: string, tag: string): Promise<Record<string, unknown>> {
  const headers = { authorization: `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}` };
  const manifest = (await (await fetch(`${registry.url}/v2/${name}/manifests/${tag}`, { headers: { ...headers, accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json()) as {
    config: { digest: string };
  };
  return (await (await fetch(`${registry.url}/v2/${name}/blobs/${manifest.config.digest}`, { headers })).json()) as Record<string, unknown>;
}

/**
 * One image on the first engine, pushed as 1.0.0 and latest: a slow RUN
 * (unique to this run, so no engine has it cached from an earlier run) and a
 * COPY of app.txt. Returns what the second engine needs to build 1.1.0.
 */
async function pushFirstVersion(builder: BuilderName, name: string) {
  const repository = `${registry.host}/${name}`;
  const run = `RUN sleep 2 && echo base-${randomBytes(6).toString('hex')} > /base`;
  const dockerfile = `FROM ${base}\n${run}\nCOPY app.txt /app.txt\n`;
  const tags = [`${repository}:1.0.0`, `${repository}:latest`];
  cleanups.push(() => removeImages(engine1, tags), () => removeImages(engine2, [...tags, `${repository}:1.1.0`]));
  const first = await build(engine1, builder, { Dockerfile: dockerfile, 'app.txt': 'one\n' }, { tags, cacheFrom: chooseCacheRefs(repository, await client.listTags(name), '1.0.0') });
  for (const ref of tags) await push(ref);
  const diffIds = (await engine1.getImage(first.imageId).inspect()).RootFS.Layers!;
  return { repository, run, diffIds, files: { Dockerfile: dockerfile, 'app.txt': 'two\n' } };
}

describe('registry layer cache: a build host that never built the image reuses its unchanged layers (two real engines, one registry)', () => {
  before(async () => {
    await ensureBusyboxImage();
    ({ docker: engine2 } = await ensureSecondEngine());
    registry = await startRegistry({ auth: USER });
    client = createRegistryClient({ url: registry.url, auth: USER });
    credentials = loadPullCredentials({ registry: registry.host, registryAuth: USER, dockerConfigFile: join(tmpdir(), 'dockhook-no-such-config', 'config.json'), log: createLogger('silent') });
    // The base comes from the registry, so both engines have the very same one (each engine's own busybox:latest is a separate import).
    base = `${registry.host}/cache-test/busybox:base`;
    await engine1.getImage('busybox:latest').tag({ repo: `${registry.host}/cache-test/busybox`, tag: 'base' });
    await push(base);
    cleanups.push(() => removeImages(engine1, [base]), () => removeImages(engine2, [base]));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await registry?.close();
  });

  for (const builder of ['classic', 'buildkit'] as const) {
    describe(`${builder} builder`, () => {
      it('with cachefrom latest and the previous version, the unchanged RUN step comes from the registry, and the log says so', async () => {
        const name = `cache-${builder}-hit`;
        const v1 = await pushFirstVersion(builder, name);
        if (builder === 'buildkit') {
          assert.ok(typeof (await registryConfig(name, '1.0.0'))['moby.buildkit.cache.v0'] === 'string', 'the BuildKit image carries its inline cache metadata');
        } else {
          assert.equal((await registryConfig(name, '1.0.0'))['moby.buildkit.cache.v0'], undefined, 'the classic builder writes none');
        }

        const cacheFrom = chooseCacheRefs(v1.repository, await client.listTags(name), '1.1.0');
        assert.deepEqual(cacheFrom, [`${v1.repository}:latest`, `${v1.repository}:1.0.0`]);
        // A tag the registry lacks (deleted since it was listed, say) is no failure.
        const missing = `${v1.repository}:0.9.0`;
        const second = await build(engine2, builder, v1.files, { tags: [`${v1.repository}:1.1.0`], cacheFrom: [...cacheFrom, missing] });
        const log = second.lines.join('\n');

        const label = `[2/3] ${v1.run}`;
        assert.ok(second.lines.includes(`cached: ${label}`), log);
        assert.ok(!second.lines.some((l) => l.startsWith('cached: [3/3] COPY')), `the changed COPY is built again:\n${log}`);
        assert.equal(second.lines.at(-1), 'layers from cache: 1 of 2 steps', log);
        assert.deepEqual(second.cache, { cachedSteps: 1, totalSteps: 2, cached: [label] });
        if (builder === 'classic') {
          assert.ok(second.lines.includes(`cache: pulled ${v1.repository}:latest (Downloaded newer image for ${v1.repository}:latest)`), log);
          assert.ok(second.lines.some((l) => l.startsWith(`cache: pulled ${v1.repository}:1.0.0`)), log);
          assert.ok(second.lines.some((l) => l.startsWith(`cache: ${missing} not pulled (`) && l.endsWith('; building without it')), log);
        }
        // The very layer the first engine made, not an equal-looking rebuild: the same diff ID.
        const layers = (await engine2.getImage(second.imageId).inspect()).RootFS.Layers!;
        assert.equal(layers[1], v1.diffIds[1]);
        assert.notEqual(layers[2], v1.diffIds[2]);
      });

      it('without cachefrom, the same engine runs that step again although the registry has the image', async () => {
        const name = `cache-${builder}-miss`;
        const v1 = await pushFirstVersion(builder, name);
        const second = await build(engine2, builder, v1.files, { tags: [`${v1.repository}:1.1.0`] });
        const log = second.lines.join('\n');
        assert.ok(!second.lines.some((l) => l.startsWith('cached: ')), log);
        assert.equal(second.lines.at(-1), 'layers from cache: 0 of 2 steps', log);
        assert.deepEqual(second.cache, { cachedSteps: 0, totalSteps: 2, cached: [] });
      });
    });
  }

  describe('Podman', () => {
    let podman: TestPodman;
    before(async () => {
      podman = await startPodman({ insecureRegistries: [registry.host] });
    });
    after(async () => {
      await podman?.close();
    });

    it('gets no cachefrom (newer Podman answers a tagged one with 400) and pulls nothing, and its own cached steps are still reported', async () => {
      const docker = new Docker({ socketPath: podman.socketPath });
      const repository = `${registry.host}/cache-podman`;
      const dockerfile = `FROM busybox:latest\nRUN echo base-${randomBytes(6).toString('hex')} > /base\nCOPY app.txt /app.txt\n`;
      await build(docker, 'classic', { Dockerfile: dockerfile, 'app.txt': 'one\n' }, { tags: [`${repository}:1.0.0`] });
      const second = await build(docker, 'classic', { Dockerfile: dockerfile, 'app.txt': 'two\n' }, { tags: [`${repository}:1.1.0`], cacheFrom: [`${repository}:latest`, `${repository}:1.0.0`] });
      const log = second.lines.join('\n');
      assert.ok(second.lines.includes('cache: Podman takes no cachefrom images; building with its local cache only'), log);
      assert.ok(!second.lines.some((l) => l.startsWith('cache: pulled') || l.includes('not pulled')), log);
      assert.ok(second.lines.some((l) => /^cached: \[2\/3\] RUN echo base-/.test(l)), log);
      assert.equal(second.lines.at(-1), 'layers from cache: 1 of 2 steps', log);
    });
  });
});
