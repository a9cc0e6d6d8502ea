import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startEngineProxy } from '../support/engine-proxy.js';
import { docker, startHarness, type Harness } from '../support/harness.js';
import { startPodman, type TestPodman } from '../support/podman.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { until } from '../support/wait.js';

/**
 * dockhook against Podman's Docker-compatible API (`podman system service`,
 * DOCKER_HOST at its socket), as rootless and RHEL/Fedora users run it. The
 * image is built and pushed by Podman, then pulled and run by dockerd with
 * the docker CLI, as a person would: nothing mocked.
 */

const OWNER = 'podman-org';
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const sampleRepo = (name: string, version: string) => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version }),
  // A RUN step too: Podman must start a container (runc, cgroupfs, no systemd) to build it.
  Dockerfile: 'FROM busybox:latest\nCOPY . /app\nRUN echo built by podman > /app/built.txt\nCMD ["cat", "/app/message.txt", "/app/built.txt"]\n',
  'message.txt': `hello from ${name} ${version}\n`,
});

describe('Podman as the engine (podman system service, real registry, real dockerd for pull and run)', () => {
  let registry: TestRegistry;
  let podman: TestPodman;
  const harnesses: Harness[] = [];
  const harness = async (env: Record<string, string> = {}) => {
    const h = await startHarness({ dockerSocket: podman.socketPath, sharedRegistry: registry, env });
    harnesses.push(h);
    return h;
  };

  before(async () => {
    registry = await startRegistry();
    podman = await startPodman({ insecureRegistries: [registry.host] });
  });
  after(async () => {
    for (const h of harnesses) await h.close();
    await podman?.close();
    await registry?.close();
  });

  it('default settings: BUILDER=auto picks the classic builder, and a merge ends as an image dockerd pulls and runs', async () => {
    const h = await harness(); // BUILDER unset
    // Logged at start, once the engine answers: which engine, and the builder auto chose.
    const started = await until('the engine line in the log', async () => (await h.logText()).split('\n').find((l) => l.includes('"engine":"Podman"')));
    const line = JSON.parse(started) as Record<string, unknown>;
    assert.equal(line.builder, 'classic');
    assert.equal(line.engineVersion, podman.version);
    assert.match(String(line.msg), /Podman has no BuildKit/);

    const repo = await h.createRepo(OWNER, 'hello', sampleRepo('podman-hello', '1.0.0'));
    const sha = repo.head();
    const answer = await h.merge(OWNER, 'hello', sha, { number: 3 });
    assert.equal(answer.status, 202);
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', `${build.failure}\n${await h.service.logs.read(build.id)}`);
    assert.deepEqual(build.pushed.map((p) => p.tag).sort(), ['1.0.0', 'latest', `sha-${sha.slice(0, 7)}`].sort());
    for (const p of build.pushed) assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(h.github.statusesFor(sha).map((s) => s.state), ['pending', 'success']);
    // Podman's own step lines ("STEP 3/9: RUN …", each label a step too): the build really ran there.
    assert.match(await h.service.logs.read(build.id), /STEP 3\/\d+: RUN echo built by podman/);

    // The person's side: the docker CLI against dockerd (not Podman), from the registry.
    const ref = `${registry.host}/podman-hello:1.0.0`;
    try {
      await docker('pull', ref);
      assert.equal(await docker('run', '--rm', '--network', 'none', ref), 'hello from podman-hello 1.0.0\nbuilt by podman');
      const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', ref)) as Record<string, string>;
      assert.equal(labels['org.opencontainers.image.revision'], sha);
    } finally {
      await docker('rmi', '-f', ref).catch(() => '');
    }
  });

  it('BUILDER=buildkit on Podman fails the build with a message naming BUILDER=classic, not "unexpected - Not Found"', async () => {
    const h = await harness({ BUILDER: 'buildkit' });
    const repo = await h.createRepo(OWNER, 'forced', sampleRepo('podman-forced', '1.0.0'));
    const answer = await h.merge(OWNER, 'forced', repo.head());
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'failed');
    assert.match(build.failure ?? '', /refused BuildKit's session .*404.*set BUILDER=classic/);
    assert.doesNotMatch(build.failure ?? '', /unexpected/);
    assert.equal(build.attempts, 1, 'a refusal is not retried: retrying cannot change it');
    const failure = h.github.statusesFor(repo.head()).at(-1);
    assert.equal(failure?.state, 'failure');
    assert.match(failure?.description ?? '', /set BUILDER=classic$/, 'the whole fix fits in the commit status');
    // And at start the log warns: the engine probe runs beside the first build, so a build that fails at once may end first.
    await until('the start-up warning', async () => /BUILDER=buildkit, but Podman has no BuildKit: every build will fail; set BUILDER=classic/.test(await h.logText()), 10_000);
    // And a load balancer or an orchestrator sees it is not ready, with the same fix.
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { failed: string[]; checks: Record<string, string> };
    assert.deepEqual(body.failed, ['docker']);
    assert.match(body.checks.docker!, /set BUILDER=classic$/);
  });

  it('an engine down at start is asked at the first build, then logged and used', async () => {
    const engine = await startEngineProxy(podman.socketPath);
    try {
      await engine.down();
      const h = await startHarness({ dockerSocket: engine.socketPath, sharedRegistry: registry });
      harnesses.push(h);
      await until('the start-up probe to fail', async () => (await h.logText()).includes('asked again at the first build'));
      await engine.up();
      const repo = await h.createRepo(OWNER, 'late', sampleRepo('podman-late', '1.0.0'));
      const build = await h.waitForBuild((await h.merge(OWNER, 'late', repo.head())).body.build);
      assert.equal(build.state, 'succeeded', build.failure);
      const engineLines = (await h.logText()).split('\n').filter((l) => l.includes('"engine":"Podman"'));
      assert.equal(engineLines.length, 1, 'logged once, when first known');
      assert.equal(JSON.parse(engineLines[0]!).builder, 'classic');
    } finally {
      await engine.close();
    }
  });

  it('a registry Podman was not told is insecure: the push fails at once, with the line the README looks up', async () => {
    const plain = await startRegistry(); // not in the test's registries.conf
    try {
      const h = await startHarness({ dockerSocket: podman.socketPath, sharedRegistry: plain });
      harnesses.push(h);
      const repo = await h.createRepo(OWNER, 'https', sampleRepo('podman-https', '1.0.0'));
      const build = await h.waitForBuild((await h.merge(OWNER, 'https', repo.head())).body.build);
      assert.equal(build.state, 'failed');
      assert.match(build.failure ?? '', /server gave HTTP response to HTTPS client/);
      assert.equal(build.attempts, 1);
    } finally {
      await plain.close();
    }
  });

  it('/readyz answers ready against Podman', async () => {
    const h = await harness();
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 200);
    const { platforms, ...rest } = (await ready.json()) as { platforms: { native: string; emulated: unknown } };
    assert.deepEqual(rest, { ready: true, checks: { docker: 'ok', registry: 'ok', store: 'ok' } });
    // Podman answers docker info like dockerd does: its own platform, and the host's QEMU handlers.
    assert.equal(platforms.native, 'linux/amd64');
  });

  it('doctor names Podman and the builder, and fails BUILDER=buildkit there', async () => {
    const h = harnesses[0] ?? (await harness());
    const cwd = await mkdtemp(join(tmpdir(), 'dockhook-podman-cli-'));
    const doctor = (extra: Record<string, string>) =>
      new Promise<{ code: number; stdout: string }>((resolve) => {
        const env = {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: cwd,
          DOCKER_HOST: `unix://${podman.socketPath}`,
          WEBHOOK_SECRET: 'podman-doctor-secret-0123456789',
          GITHUB_TOKEN: h.config.github.mode === 'token' ? h.config.github.token : '',
          GITHUB_API_URL: h.github.apiUrl,
          REGISTRY: registry.host,
          ...extra,
        };
        execFile(process.execPath, ['--import', TSX, CLI, 'doctor'], { cwd, env, timeout: 60_000 }, (err, stdout) => {
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout });
        });
      });
    try {
      const auto = await doctor({});
      const version = podman.version.replace(/\./g, '\\.');
      assert.match(auto.stdout, new RegExp(`^ok {3}engine: Podman ${version} at ${podman.socketPath.replace(/\./g, '\\.')}; builds with the classic builder \\(BUILDER=auto: Podman has no BuildKit\\)$`, 'm'));
      assert.equal(auto.code, 0, auto.stdout);

      const forced = await doctor({ BUILDER: 'buildkit' });
      assert.match(forced.stdout, new RegExp(`^FAIL engine: Podman ${version} at \\S+: BUILDER=buildkit, but Podman has no BuildKit: every build will fail {2}→ fix: set BUILDER=classic`, 'm'));
      assert.equal(forced.code, 1);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
