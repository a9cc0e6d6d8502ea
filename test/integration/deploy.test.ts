import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { LABELS } from '../../src/deploy/containers.js';
import type { BuildRecord } from '../../src/store/store.js';
import { mergedPullRequestPayload } from '../support/deliveries.js';
import type { GitRepo } from '../support/git-repo.js';
import { startHarness, type Harness } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { servedText } from '../support/served-text.js';
import { until } from '../support/wait.js';

const engine = new Docker();
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const API_TOKEN = 'api-token-for-deploys-5e4d';

/** `dockhook <args>` as a person runs it: a subprocess of src/cli.ts. */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', ...env }, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}
const run = randomUUID().slice(0, 8);
const OWNER = 'deploy-org';
const web = `web-${run}`;
const volume = `web-data-${run}`;

const dockerfile = (version: string, extra = '') =>
  [
    'FROM busybox:latest',
    `RUN mkdir -p /www && echo ${version} > /www/index.html && echo ${run}`,
    extra,
    `CMD ["sh", "-c", "echo starting ${version}; [ -f /data/from-v1 ] || echo written-by-${version} > /data/from-v1; cp /data/from-v1 /www/data.txt; exec httpd -f -p 80 -h /www"]`,
    '',
  ].join('\n');

const get = servedText;

describe('deploy after push (real engine, real registry)', () => {
  let h: Harness;
  let repo: GitRepo;
  let port: number;
  let pr = 0;
  const info = (version: string, deploy: Record<string, unknown>) => JSON.stringify({ service_name: web, version, deploy });
  const deploySettings = () => ({ ports: [`127.0.0.1:${port}:80`], volumes: [`${volume}:/data`], env: { MODE: 'from-repo' }, wait_seconds: 2 });

  let envDir: string;
  const HOST_SECRET = 'host-only-secret-9d8c';

  before(async () => {
    port = await freePort();
    // The deploy's secret lives on the host, never in the repository.
    envDir = await mkdtemp(join(tmpdir(), 'dockhook-deploy-env-'));
    await writeFile(join(envDir, `${web}.env`), `API_KEY=${HOST_SECRET}\nMODE=from-host\n`);
    h = await startHarness({ env: { DEPLOY_IMAGES: web, DEPLOY_ENV_DIR: envDir, PUBLIC_URL: 'https://dockhook.example.com', API_TOKEN, BUILD_BRANCHES: 'main,feature' } });
    repo = await h.createRepo(OWNER, 'web', { 'dockerInfo.json': info('1.0.0', deploySettings()), Dockerfile: dockerfile('v1') });
  });
  after(async () => {
    await h?.close();
    for (const c of await engine.listContainers({ all: true, filters: { label: [`${LABELS.service}=${web}`] } })) await engine.getContainer(c.Id).remove({ force: true });
    await engine.getVolume(volume).remove().catch(() => undefined);
    await rm(envDir, { recursive: true, force: true });
  });

  async function mergeHead(): Promise<BuildRecord> {
    const answer = await h.merge(OWNER, 'web', repo.head(), { number: ++pr });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    return h.waitForBuild(answer.body.build as number, 180_000);
  }
  const deployments = () => h.service.store.listDeployments({ service: web, limit: 10 });
  const running = async () => (await engine.listContainers({ filters: { label: [`${LABELS.service}=${web}`] } })).map((c) => c.Names[0]!.slice(1));

  it('a merge deploys v1: its port serves v1, from the image pulled by digest', async () => {
    const build = await mergeHead();
    assert.equal(build.state, 'succeeded', build.failure);
    const [d] = await deployments();
    assert.equal(d?.state, 'success', JSON.stringify(d));
    assert.equal(d!.digest, build.pushed.find((p) => p.tag === '1.0.0')?.digest);
    assert.equal(await get(port), 'v1');
    const c = await engine.getContainer(web).inspect();
    assert.equal(c.Config.Image, `${h.registry.host}/${web}@${d!.digest}`);
    // DEPLOY_ENV_DIR/<service>.env is laid over the repository's env, and never logged.
    assert.ok(c.Config.Env.includes(`API_KEY=${HOST_SECRET}`), c.Config.Env.join(' '));
    assert.ok(c.Config.Env.includes('MODE=from-host'));
    assert.doesNotMatch(await h.service.logs.read(build.id), new RegExp(HOST_SECRET));
    assert.ok(!d!.log.join('\n').includes(HOST_SECRET));
    // GitHub's Deployments API: a deployment for the merge SHA, in_progress then success, log_url the build page.
    const [gh] = h.github.deploymentsFor(OWNER, 'web');
    assert.equal(gh?.sha, build.sha);
    assert.equal(gh!.environment, 'production');
    assert.equal(d!.githubId, gh!.id);
    const states = h.github.deploymentStatuses(gh!.id).filter((x) => !x.added_by_github);
    assert.deepEqual(states.map((x) => x.state), ['in_progress', 'success']);
    assert.equal(states[1]!.log_url, `https://dockhook.example.com/builds/${build.id}`);
  });

  it('merging v2 swaps it in: v2 serves, v1 is gone, and v2 reads what v1 wrote to the named volume', async () => {
    await repo.commit({ 'dockerInfo.json': info('2.0.0', deploySettings()), Dockerfile: dockerfile('v2') }, 'v2');
    const build = await mergeHead();
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal((await deployments())[0]?.state, 'success');
    assert.equal(await get(port), 'v2');
    assert.equal(await get(port, '/data.txt'), 'written-by-v1');
    assert.deepEqual(await running(), [web]);
  });

  it('a v3 whose HEALTHCHECK fails: the build succeeds, the deploy fails with v3\'s log lines, v2 serves again', async () => {
    await repo.commit({ 'dockerInfo.json': info('3.0.0', deploySettings()), Dockerfile: dockerfile('v3', 'HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD false') }, 'v3');
    const build = await mergeHead();
    assert.equal(build.state, 'succeeded', build.failure);
    const [d] = await deployments();
    assert.equal(d?.state, 'failure');
    assert.match(d!.reason ?? '', /did not become healthy/);
    const failed = h.github.deploymentStatuses(d!.githubId!).filter((x) => !x.added_by_github).at(-1);
    assert.equal(failed?.state, 'failure');
    assert.match(failed!.description ?? '', /did not become healthy/);
    assert.ok(d!.log.includes('| starting v3'), d!.log.join('\n'));
    assert.equal(await until('v2 serving again', async () => ((await get(port)) === 'v2' ? 'v2' : undefined), 20_000), 'v2');
    assert.equal((await engine.getContainer(web).inspect()).HostConfig.RestartPolicy?.Name, 'unless-stopped');
    // The build's API view and page show the deploy, its state and its log lines.
    const view = (await (await fetch(`${h.url}/api/builds/${build.id}`)).json()) as { deployments: { state: string; log: string[] }[] };
    assert.equal(view.deployments[0]?.state, 'failure');
    assert.ok(view.deployments[0]!.log.includes('| starting v3'));
    const page = await (await fetch(`${h.url}/builds/${build.id}`)).text();
    assert.match(page, /<h2>Deploys<\/h2>/);
    assert.match(page, /\| starting v3/);
  });

  it('a deploy entry asking for privileged mode or a host path is refused, naming the field; the build still succeeds', async () => {
    for (const [ask, field] of [[{ privileged: true }, /deploy\.privileged/], [{ volumes: ['/etc:/host-etc'] }, /deploy\.volumes\.0 .*not in DEPLOY_ALLOW_BINDS/], [{ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, /Docker socket/]] as const) {
      await repo.commit({ 'dockerInfo.json': info(`4.0.${pr}`, { ...deploySettings(), ...ask }), Dockerfile: dockerfile('v4') }, 'bad deploy');
      const build = await mergeHead();
      assert.equal(build.state, 'succeeded', build.failure);
      const [d] = await deployments();
      assert.equal(d?.state, 'failure');
      assert.match(d!.reason ?? '', field);
      assert.equal(await get(port), 'v2', 'nothing was swapped');
    }
  });

  it('rolls back by CLI and API to an earlier version, by the same swap', async () => {
    const rolled = await cli(['deploy', web, '1.0.0'], { DOCKHOOK_URL: h.url, API_TOKEN });
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.match(rolled.stdout, new RegExp(`deployed ${web} 1\\.0\\.0`));
    assert.equal(await get(port), 'v1');
    assert.equal(await get(port, '/data.txt'), 'written-by-v1', 'the named volume survived every swap');
    assert.deepEqual(await running(), [web]);

    const api = (path: string, init: RequestInit = {}) => fetch(`${h.url}${path}`, { ...init, headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    const res = await api('/api/deployments', { method: 'POST', body: JSON.stringify({ service: web, version: '2.0.0' }) });
    assert.equal(res.status, 201);
    const d = (await res.json()) as { state: string; trigger: string; version: string };
    assert.deepEqual([d.state, d.trigger, d.version], ['success', 'manual', '2.0.0']);
    assert.equal(await get(port), 'v2');

    const list = (await (await api(`/api/deployments?service=${web}`)).json()) as { deployments: { version: string; state: string }[] };
    assert.deepEqual(list.deployments.slice(0, 3).map((x) => `${x.version} ${x.state}`), ['2.0.0 success', '1.0.0 success', `4.0.${pr - 1} failure`]);
    assert.equal((await fetch(`${h.url}/api/deployments`, { method: 'POST', body: '{}' })).status, 401);
    const unknown = await api('/api/deployments', { method: 'POST', body: JSON.stringify({ service: web, version: '9.9.9' }) });
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: string }).error, /no successful build pushed .*:9\.9\.9/);
    const failed = await cli(['deploy', web, '9.9.9'], { DOCKHOOK_URL: h.url, API_TOKEN });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /404 no successful build pushed/);
  });

  it('a merge into another branch than the deploy branch builds and does not deploy', async () => {
    await repo.commit({ 'dockerInfo.json': info('5.0.0', deploySettings()), Dockerfile: dockerfile('v5') }, 'v5 on a feature branch');
    const answer = await h.deliver(mergedPullRequestPayload({ owner: OWNER, repo: 'web', sha: repo.head(), branch: 'feature', defaultBranch: 'main', number: ++pr }));
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const build = await h.waitForBuild(answer.body.build as number, 180_000);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.match(await h.service.logs.read(build.id), /deploy: not for feature \(deploys follow main\)/);
    assert.equal((await h.service.store.listDeployments({ buildId: build.id, limit: 5 })).length, 0);
    assert.equal(await get(port), 'v2');
  });

  it('a forced manual build of the default branch deploys under the same rules', async () => {
    const res = await fetch(`${h.url}/api/builds`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ repo: `${OWNER}/web`, ref: 'main', force: true }) });
    assert.equal(res.status, 202, await res.clone().text());
    const build = await h.waitForBuild(((await res.json()) as { build: number }).build, 180_000);
    assert.equal(build.state, 'succeeded', build.failure);
    const [d] = await h.service.store.listDeployments({ buildId: build.id, limit: 1 });
    assert.deepEqual([d?.state, d?.trigger, d?.version], ['success', 'manual', '5.0.0']);
    assert.equal(await get(port), 'v5');
  });

  it('an image the operator did not list in DEPLOY_IMAGES is not deployed, with the note saying why', async () => {
    const other = `other-${run}`;
    const r = await h.createRepo(OWNER, 'other', { 'dockerInfo.json': JSON.stringify({ service_name: other, version: '1.0.0', deploy: { ports: ['127.0.0.1:1:80'] } }), Dockerfile: dockerfile('o1') });
    const answer = await h.merge(OWNER, 'other', r.head(), { number: 1 });
    const build = await h.waitForBuild(answer.body.build as number, 180_000);
    assert.equal(build.state, 'succeeded', build.failure);
    const [d] = await h.service.store.listDeployments({ service: other, limit: 1 });
    assert.equal(d?.state, 'skipped');
    assert.match(d!.reason ?? '', new RegExp(`${other} is not in DEPLOY_IMAGES`));
    assert.match(await h.service.logs.read(build.id), /is not in DEPLOY_IMAGES/);
    assert.deepEqual((await engine.listContainers({ all: true, filters: { label: [`${LABELS.service}=${other}`] } })).length, 0);
  });
});
