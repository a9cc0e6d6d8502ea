import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { LABELS, logTail, serviceContainers } from '../../src/deploy/containers.js';
import { planDeploy, type DeployPlan } from '../../src/deploy/deploy-settings.js';
import { recoverService, swapContainers, type SwapInput } from '../../src/deploy/swap.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { freePort } from '../support/ports.js';
import { servedText } from '../support/served-text.js';
import { until } from '../support/wait.js';

const docker = new Docker();
const run = randomUUID().slice(0, 8);
const service = `dh-deploy-${run}`;
const volume = `dh-deploy-data-${run}`;
const image = (v: string) => `dockhook-test/deploy-${run}:${v}`;

/** A tiny web server image: serves "<version>" at /, and at /data.txt what v1 wrote to the named volume. */
async function buildVersion(version: string, extra = ''): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-deploy-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM busybox:latest',
      `RUN mkdir -p /www && echo ${version} > /www/index.html`,
      extra,
      // v1 leaves a file in the volume; every version serves what is there.
      `CMD ["sh", "-c", "echo starting ${version}; [ -f /data/from-v1 ] || echo written-by-${version} > /data/from-v1; cp /data/from-v1 /www/data.txt; exec httpd -f -p 80 -h /www"]`,
      '',
    ].join('\n'));
    const stream = (await docker.buildImage(pack(dir) as unknown as NodeJS.ReadableStream, { t: image(version), rm: true, version: '1' } as never)) as unknown as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : out.find((e) => e.error) ? reject(new Error(out.find((e) => e.error)!.error)) : resolve())));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const get = servedText;

describe('the health-gated swap (real engine)', () => {
  let port: number;
  let plan: DeployPlan;
  let build = 0;
  const swap = (version: string, o: Partial<SwapInput> = {}) =>
    swapContainers(docker, { plan, image: image(version), sha: `${version}${'0'.repeat(40)}`.slice(0, 40), build: ++build, version, env: { MODE: 'test' }, log: () => {}, ...o });
  const running = async () => (await docker.listContainers({ filters: { label: [`${LABELS.service}=${service}`] } })).map((c) => c.Names[0]!.slice(1));

  before(async () => {
    await ensureBusyboxImage();
    port = await freePort();
    const decision = planDeploy(service, { ports: [`127.0.0.1:${port}:80`], volumes: [`${volume}:/data`], wait_seconds: 2 }, { images: [service], allowBinds: [] });
    assert.equal(decision.outcome, 'planned');
    plan = (decision as { plan: DeployPlan }).plan;
    await buildVersion('v1');
    await buildVersion('v2');
    await buildVersion('v3', 'HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD false');
    await buildVersion('v4', 'VOLUME /anon');
  });
  after(async () => {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.service}=${service}`] } })) await docker.getContainer(c.Id).remove({ force: true });
    await docker.getVolume(volume).remove().catch(() => undefined);
    for (const v of ['v1', 'v2', 'v3', 'v4']) await docker.getImage(image(v)).remove({ force: true }).catch(() => undefined);
  });

  it('v1 deploys and serves; v2 replaces it, and reads what v1 wrote to the named volume', async () => {
    assert.deepEqual(await swap('v1'), { outcome: 'success', container: service });
    assert.equal(await get(port), 'v1');
    const second = await swap('v2');
    assert.equal(second.outcome, 'success');
    assert.equal(await get(port), 'v2');
    assert.equal(await get(port, '/data.txt'), 'written-by-v1');
    assert.deepEqual(await running(), [service], 'one container, under the stable name');
    const info = await docker.getContainer(service).inspect();
    assert.equal(info.Config.Labels[LABELS.version], 'v2');
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
    assert.ok(info.Config.Env.includes('MODE=test'));
  });

  it('a v3 whose HEALTHCHECK fails never replaces v2: v2 serves again with its restart policy back, and v3 leaves its log lines', async () => {
    const lines: string[] = [];
    const result = await swap('v3', { log: (l) => lines.push(l) });
    assert.equal(result.outcome, 'failure');
    if (result.outcome !== 'failure') return;
    assert.match(result.reason, /HEALTHCHECK says unhealthy/);
    assert.ok(result.logTail.includes('starting v3'), result.logTail.join('\n'));
    assert.equal(await until('v2 serving again', async () => ((await get(port)) === 'v2' ? 'v2' : undefined), 20_000), 'v2');
    assert.deepEqual(await running(), [service]);
    const info = await docker.getContainer(service).inspect();
    assert.equal(info.Config.Labels[LABELS.version], 'v2');
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
    assert.ok(lines.some((l) => /rolling back/.test(l)), lines.join('\n'));
  });

  it('killed between stopping the old and starting the new: recovery by labels leaves exactly one, healthy, container', async () => {
    const crash = new Error('killed');
    await assert.rejects(swap('v1', { onStep: (step) => { if (step === 'stopped-old') throw crash; } }), crash);
    assert.deepEqual(await running(), [], 'nothing runs while the swap is cut off');
    const { candidates } = await serviceContainers(docker, service);
    assert.equal(candidates.length, 1);
    const lines = await recoverService(docker, service);
    assert.ok(lines.some((l) => /removed .*interrupted/.test(l)), lines.join('\n'));
    assert.deepEqual(await running(), [service]);
    assert.equal(await until('v2 serving after recovery', async () => ((await get(port)) === 'v2' ? 'v2' : undefined), 20_000), 'v2');
    assert.equal((await docker.getContainer(service).inspect()).HostConfig.RestartPolicy?.Name, 'unless-stopped');
  });

  it('killed after the new one started: recovery finishes the deploy once it proves healthy', async () => {
    const crash = new Error('killed');
    await assert.rejects(swap('v1', { onStep: (step) => { if (step === 'started') throw crash; } }), crash);
    const lines = await recoverService(docker, service);
    assert.ok(lines.some((l) => /finished the interrupted deploy/.test(l)), lines.join('\n'));
    assert.deepEqual(await running(), [service]);
    assert.equal((await docker.getContainer(service).inspect()).Config.Labels[LABELS.version], 'v1');
    assert.equal(await get(port), 'v1');
    assert.equal(await get(port, '/data.txt'), 'written-by-v1');
  });

  it('a service stopped by hand stays stopped through recovery', async () => {
    await docker.getContainer(service).stop({ t: 1 });
    assert.deepEqual(await recoverService(docker, service), []);
    assert.deepEqual(await running(), []);
    await docker.getContainer(service).start();
  });

  it("carries the old container's anonymous volumes over to the new one", async () => {
    assert.equal((await swap('v4')).outcome, 'success');
    const exec = await docker.getContainer(service).exec({ Cmd: ['sh', '-c', 'echo kept > /anon/file'], AttachStdout: true, AttachStderr: true });
    await new Promise<void>((resolve, reject) => exec.start({}, (err, stream) => (err ? reject(err) : stream!.on('end', resolve).resume())));
    const anon = (await docker.getContainer(service).inspect()).Mounts.find((m) => m.Destination === '/anon')!;
    assert.equal((await swap('v4', { sha: `v4b${'0'.repeat(40)}`.slice(0, 40) })).outcome, 'success');
    const mounts = (await docker.getContainer(service).inspect()).Mounts;
    assert.equal(mounts.find((m) => m.Destination === '/anon')?.Name, anon.Name, 'the same anonymous volume');
    assert.equal(mounts.find((m) => m.Destination === '/data')?.Name, volume, 'and the named one');
    await swap('v1');
  });

  it('logTail returns the last lines of both streams', async () => {
    assert.deepEqual(await logTail(docker, service, 1), ['starting v1']);
  });
});
