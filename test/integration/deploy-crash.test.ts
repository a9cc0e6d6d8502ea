import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { LABELS, serviceContainers } from '../../src/deploy/containers.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { mergedPullRequestPayload, postDelivery } from '../support/deliveries.js';
import { spawnDockhook, type DockhookProcess } from '../support/dockhook-process.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { dockhookEnv, SECRET, TOKEN } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { ensureSecondEngine, restartSecondEngine } from '../support/second-engine.js';
import { servedText } from '../support/served-text.js';
import { until } from '../support/wait.js';

const run = randomUUID().slice(0, 8);
const OWNER = 'crash-org';
const service = `svc-${run}`;

// httpd as PID 1 ignores SIGTERM, so `docker stop` waits its 10 s: the window between stopping the old container and starting the new one.
const dockerfile = (version: string) =>
  `FROM busybox:latest\nRUN mkdir -p /www && echo ${version} > /www/index.html && echo ${run}\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n`;

const get = servedText;

describe('deploys survive a killed dockhook and a restarted engine (real processes, second engine)', () => {
  let github: FakeGitHub;
  let registry: TestRegistry;
  let repo: GitRepo;
  let dataDir: string;
  let engine: Docker;
  let env: Record<string, string>;
  let port: number;
  let pr = 0;
  const procs: DockhookProcess[] = [];

  before(async () => {
    await ensureBusyboxImage();
    const second = await ensureSecondEngine();
    engine = second.docker;
    github = await startFakeGitHub({ token: TOKEN });
    registry = await startRegistry();
    dataDir = await mkdtemp(join(tmpdir(), 'dockhook-deploy-crash-'));
    port = await freePort();
    repo = await createGitRepo({ 'dockerInfo.json': info('1.0.0'), Dockerfile: dockerfile('v1') });
    github.addRepo(OWNER, 'svc', repo);
    // Builds on the first engine, deploys on the second.
    env = dockhookEnv(github, registry, dataDir, { DEPLOY_IMAGES: service, DEPLOY_DOCKER_HOST: second.dockerHost, LOG_LEVEL: 'info', BUILD_CONCURRENCY: '1' });
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const c of await engine.listContainers({ all: true, filters: { label: [`${LABELS.service}=${service}`] } })) await engine.getContainer(c.Id).remove({ force: true });
    await github?.close();
    await registry?.close();
    await repo?.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  const info = (v: string) => JSON.stringify({ service_name: service, version: v, deploy: { ports: [`127.0.0.1:${port}:80`], wait_seconds: 2 } });
  const running = async () => (await engine.listContainers({ filters: { label: [`${LABELS.service}=${service}`] } })).map((c) => c.Names[0]!.slice(1));
  async function start(): Promise<DockhookProcess> {
    const p = await spawnDockhook(env);
    procs.push(p);
    return p;
  }
  async function merge(p: DockhookProcess): Promise<number> {
    const res = await postDelivery(`${p.url}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'svc', sha: repo.head(), number: ++pr }));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.build as number;
  }
  const deploymentOf = async (p: DockhookProcess, version: string) => {
    const list = (await (await fetch(`${p.url}/api/deployments?service=${service}`)).json()) as { deployments: { version: string; state: string; reason?: string }[] };
    // The deploy a crash cut off is marked failed ("interrupted") when the re-run takes its turn: wait for the re-run's own.
    return list.deployments.find((d) => d.version === version && d.state !== 'in_progress' && !/^interrupted/.test(d.reason ?? ''));
  };

  it('SIGKILL between stopping the old container and starting the new: after the restart exactly one runs, healthy, and the deploy completes', async () => {
    let p = await start();
    await merge(p);
    assert.equal((await until('v1 deployed', () => deploymentOf(p, '1.0.0'), 180_000)).state, 'success');
    assert.equal(await get(port), 'v1');

    await repo.commit({ 'dockerInfo.json': info('2.0.0'), Dockerfile: dockerfile('v2') }, 'v2');
    const events = (await engine.getEvents({ filters: { type: ['container'], event: ['kill'], label: [`${LABELS.service}=${service}`] } })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const killed = new Promise<void>((resolve) => events.once('data', () => resolve()));
    const buildId = await merge(p);
    await killed; // the engine is stopping v1: dockhook is between stop-old and start-new
    events.destroy();
    p.kill('SIGKILL');
    await p.exited;
    const { candidates } = await serviceContainers(engine, service);
    assert.equal(candidates.length, 1, 'the new container was created and not started');

    p = await start();
    const after = await until('exactly one container running', async () => {
      const names = await running();
      return names.length === 1 ? names : undefined;
    }, 60_000);
    assert.deepEqual(after, [service]);
    // The interrupted build runs again; it finds its tags pushed and deploys v2 by the same swap.
    const v2 = await until('v2 deployed after the restart', () => deploymentOf(p, '2.0.0'), 180_000);
    assert.equal(v2.state, 'success', JSON.stringify(v2));
    assert.equal(await get(port), 'v2');
    assert.deepEqual(await running(), [service]);
    const peek = new SqliteStore(dataDir);
    const interrupted = (await peek.listDeployments({ service, limit: 10 })).filter((d) => d.buildId === buildId);
    await peek.close();
    assert.ok(interrupted.some((d) => d.state === 'failure' && /interrupted/.test(d.reason ?? '')), JSON.stringify(interrupted));
    p.kill('SIGTERM');
    await p.exited;
  });

  it('restarting the engine after a swap brings back the new version only', async () => {
    const before = await running();
    assert.deepEqual(before, [service]);
    await restartSecondEngine();
    const back = await until('the service back after the engine restart', async () => {
      const names = await running();
      return names.length ? names : undefined;
    }, 60_000);
    assert.deepEqual(back, [service], 'the old container did not come back');
    assert.equal(await until('v2 serving', async () => ((await get(port)) === 'v2' ? 'v2' : undefined), 30_000), 'v2');
    const all = await engine.listContainers({ all: true, filters: { label: [`${LABELS.service}=${service}`] } });
    assert.equal(all.length, 1, 'no stopped old container is left to come back later');
  });
});
