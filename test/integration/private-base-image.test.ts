import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ensureBusyboxImage } from '../support/base-image.js';
import { docker, startHarness, type Harness } from '../support/harness.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

const run = promisify(execFile);
const OWNER = 'octo-org';
// Two registries with different users: A is dockhook's REGISTRY, B holds a base image only config.json can open.
const A_USER = { username: 'dockhook-a', password: 'pw-for-registry-a-3f9c' };
const B_USER = { username: 'team-b', password: 'pw-for-registry-b-81de' };

/** The docker CLI with its own config dir, so the machine's ~/.docker is never touched. */
async function dockerWith(configDir: string, args: string[], input?: string): Promise<string> {
  const child = run('docker', args, { env: { ...process.env, DOCKER_CONFIG: configDir } });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return (await child).stdout.trim();
}

/** Pushes busybox to `registry` as `name`, logged in as `user`, then removes every local copy so a build must pull it. */
async function pushBase(registry: TestRegistry, user: { username: string; password: string }, name: string): Promise<string> {
  const config = await mkdtemp(join(tmpdir(), 'dockhook-cli-config-'));
  try {
    await dockerWith(config, ['login', registry.host, '-u', user.username, '--password-stdin'], user.password);
    const ref = `${registry.host}/${name}`;
    await docker('tag', 'busybox:latest', ref);
    await dockerWith(config, ['push', ref]);
    await docker('rmi', ref);
    return ref;
  } finally {
    await rm(config, { recursive: true, force: true });
  }
}

/** A config.json the way `docker login` writes it: base64 user:password under "auth". */
async function writeDockerConfig(dir: string, auths: Record<string, { username: string; password: string }>, extra: object = {}): Promise<void> {
  const entries = Object.fromEntries(Object.entries(auths).map(([host, u]) => [host, { auth: Buffer.from(`${u.username}:${u.password}`).toString('base64') }]));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: entries, ...extra }, null, 2));
}

const dockerfile = (ownBase: string, otherBase: string) =>
  `FROM ${otherBase} AS other\nRUN echo from-b > /b.txt\nFROM ${ownBase}\nCOPY --from=other /b.txt /b.txt\nRUN echo from-a > /a.txt\nCMD ["cat", "/a.txt", "/b.txt"]\n`;

describe('base images from private registries (two htpasswd registries, real engine)', () => {
  let registryA: TestRegistry;
  let registryB: TestRegistry;
  let ownBase: string;
  let otherBase: string;
  let configDir: string;

  before(async () => {
    await ensureBusyboxImage();
    [registryA, registryB] = await Promise.all([startRegistry({ auth: A_USER }), startRegistry({ auth: B_USER })]);
    ownBase = await pushBase(registryA, A_USER, 'our-base:1');
    otherBase = await pushBase(registryB, B_USER, 'team-base:1');
    configDir = await mkdtemp(join(tmpdir(), 'dockhook-docker-config-'));
    // A credential helper is named too: dockhook says it does not run it, and uses the auths it has.
    await writeDockerConfig(configDir, { [registryB.host]: B_USER }, { credHelpers: { 'ghcr.io': 'desktop' } });
  });
  after(async () => {
    await Promise.all([registryA?.close(), registryB?.close()]);
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  for (const builder of ['buildkit', 'classic'] as const) {
    describe(`${builder} builder`, () => {
      let h: Harness;
      before(async () => {
        h = await startHarness({
          sharedRegistry: registryA,
          env: { BUILDER: builder, REGISTRY_USERNAME: A_USER.username, REGISTRY_PASSWORD: A_USER.password, DOCKER_CONFIG: configDir },
        });
      });
      after(async () => {
        await h?.close();
      });

      it('pulls FROM REGISTRY with its own login and FROM another registry with config.json, and pushes to REGISTRY', async () => {
        // Neither base is local: the build has to pull both, each with its own registry's credentials.
        for (const ref of [ownBase, otherBase]) await docker('rmi', ref).catch(() => '');
        const name = `app-${builder}`;
        const repo = await h.createRepo(OWNER, name, { 'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }), Dockerfile: dockerfile(ownBase, otherBase) });
        const answer = await h.merge(OWNER, name, repo.head());
        const build = await h.waitForBuild(answer.body.build);
        assert.equal(build.state, 'succeeded', build.failure);
        const ref = `${registryA.host}/${name}:1.0.0`;
        await docker('rmi', ref).catch(() => '');
        const config = await mkdtemp(join(tmpdir(), 'dockhook-cli-config-'));
        try {
          await dockerWith(config, ['login', registryA.host, '-u', A_USER.username, '--password-stdin'], A_USER.password);
          await dockerWith(config, ['pull', ref]);
        } finally {
          await rm(config, { recursive: true, force: true });
        }
        assert.equal(await docker('run', '--rm', '--network', 'none', ref), 'from-a\nfrom-b');

        const log = await h.service.logs.read(build.id);
        const serviceLog = await h.logText();
        for (const secret of [A_USER.password, B_USER.password, Buffer.from(`${B_USER.username}:${B_USER.password}`).toString('base64')]) {
          assert.ok(!log.includes(secret), 'a password reached the build log');
          assert.ok(!serviceLog.includes(secret), 'a password reached the service log');
        }
        // Logged once at start: the helper is not run, and which registry lacks credentials.
        assert.match(serviceLog, /credential helpers, which dockhook does not run/);
        assert.match(serviceLog, /ghcr\.io/);
      });
    });
  }

  for (const builder of ['buildkit', 'classic'] as const) {
    describe(`a registry without credentials (${builder} builder)`, () => {
      let h: Harness;
      let emptyConfig: string;
      before(async () => {
        emptyConfig = await mkdtemp(join(tmpdir(), 'dockhook-docker-config-'));
        await writeDockerConfig(emptyConfig, {});
        h = await startHarness({
          sharedRegistry: registryA,
          env: { BUILDER: builder, REGISTRY_USERNAME: A_USER.username, REGISTRY_PASSWORD: A_USER.password, DOCKER_CONFIG: emptyConfig },
        });
      });
      after(async () => {
        await h?.close();
        await rm(emptyConfig, { recursive: true, force: true });
      });

      it('fails naming the registry and where credentials come from', async () => {
        await docker('rmi', otherBase).catch(() => '');
        const name = `lacking-${builder}`;
        const repo = await h.createRepo(OWNER, name, {
          'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }),
          Dockerfile: `FROM ${otherBase}\nRUN true\n`,
        });
        const answer = await h.merge(OWNER, name, repo.head());
        const build = await h.waitForBuild(answer.body.build);
        assert.equal(build.state, 'failed');
        const failure = build.failure ?? '';
        assert.ok(failure.includes(registryB.host), failure);
        assert.match(failure, /DOCKER_CONFIG/);
        assert.match(failure, /REGISTRY_USERNAME\/REGISTRY_PASSWORD/);
        assert.ok(failure.includes(`Add credentials for ${registryB.host}`), failure);
        assert.ok(!failure.includes(A_USER.password));
      });
    });
  }
});
