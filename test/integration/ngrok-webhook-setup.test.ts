import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createGitHubClient, type GitHubClient } from '../../src/github.js';
import { createLogger, type Logger } from '../../src/log.js';
import { NgrokDiscoveryError, discoverPublicUrl, pickPublicUrl } from '../../src/ngrok.js';
import { ensureRepoWebhook } from '../../src/webhook-setup.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { mergedPullRequestPayload, postDelivery } from '../support/deliveries.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { docker } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';

const SECRET = 'ngrok-test-secret-7c1d9e0b4a';
const TOKEN = 'ghp_ngroktest0123456789';
const OWNER = 'acme';

/** A logger whose output the test can read back, to prove what is (and is not) logged. */
function capturedLogger(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger('debug', sink), text: () => lines.join('') };
}

interface FakeAgent {
  url: string;
  port: number;
  /** GET /api/tunnels requests answered so far. */
  requests: number;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The ngrok agent's local API as documented (GET /api/tunnels): answers with
 * no tunnels for the first `emptyAnswers` requests, as the agent does while
 * its session connects; /api/endpoints only when `endpoints` is given, as
 * agents before that route answer 404. Listens only when listen() is called, so requests
 * before that get connection refused.
 */
async function fakeAgent(opts: { tunnels: object[]; emptyAnswers?: number; status?: number; endpoints?: object[] }): Promise<FakeAgent> {
  const port = await freePort();
  let server: Server | undefined;
  const agent: FakeAgent = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: 0,
    listen: () =>
      new Promise((resolve, reject) => {
        server = createServer((req, res) => {
          // Newer agents also list a v3 config's endpoints here; older ones answer 404.
          if (req.url === '/api/endpoints' && req.method === 'GET' && opts.endpoints) {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ endpoints: opts.endpoints }));
            return;
          }
          if (req.url !== '/api/tunnels' || req.method !== 'GET') {
            res.writeHead(404).end();
            return;
          }
          agent.requests += 1;
          if (opts.status) {
            res.writeHead(opts.status, { 'content-type': 'text/plain' }).end('nope');
            return;
          }
          const tunnels = agent.requests <= (opts.emptyAnswers ?? 0) ? [] : opts.tunnels;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tunnels, uri: '/api/tunnels' }));
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return agent;
}

/** A tunnel entry exactly as ngrok's agent API reports one. */
const tunnel = (name: string, publicUrl: string, addr: string) => ({
  name,
  ID: `${name}-id`,
  uri: `/api/tunnels/${name}`,
  public_url: publicUrl,
  proto: publicUrl.split(':')[0],
  config: { addr, inspect: true },
  metrics: { conns: { count: 0, gauge: 0, rate1: 0, rate5: 0, rate15: 0, p50: 0, p90: 0, p95: 0, p99: 0 }, http: { count: 0, rate1: 0, rate5: 0, rate15: 0, p50: 0, p90: 0, p95: 0, p99: 0 } },
});

describe('discoverPublicUrl (a fake ngrok agent API)', () => {
  it('waits through connection refused and an empty tunnel list, then returns the https URL of the tunnel to dockhook', async () => {
    const agent = await fakeAgent({
      emptyAnswers: 2,
      tunnels: [tunnel('other', 'https://other-1.ngrok-free.app', 'http://grafana:8080'), tunnel('dockhook', 'https://abc-123.ngrok-free.app', 'http://dockhook:3000')],
    });
    const { log, text } = capturedLogger();
    // The agent comes up a moment after dockhook starts asking.
    const late = setTimeout(() => void agent.listen(), 250);
    try {
      const url = await discoverPublicUrl({ apiUrl: agent.url, upstream: '3000', attempts: 40, delayMs: 50, log });
      assert.equal(url, 'https://abc-123.ngrok-free.app');
      assert.equal(agent.requests, 3, 'two empty answers, then the tunnels');
      assert.match(text(), /ECONNREFUSED/, 'the refused tries were retried, not fatal');
      assert.match(text(), /no tunnel yet/);
    } finally {
      clearTimeout(late);
      await agent.close();
    }
  });

  it('also reads /api/endpoints, where newer agents list the endpoints of a v3 config', async () => {
    const agent = await fakeAgent({
      tunnels: [],
      endpoints: [{ name: 'dockhook', uri: '/api/endpoints/dockhook', url: 'https://v3-endpoint.ngrok-free.app', upstream: { url: 'http://dockhook:3000', protocol: 'http1' }, inspect: true }],
    });
    await agent.listen();
    try {
      assert.equal(await discoverPublicUrl({ apiUrl: agent.url, upstream: '3000', attempts: 1 }), 'https://v3-endpoint.ngrok-free.app');
    } finally {
      await agent.close();
    }
  });

  it('gives up after the bounded number of tries with an error that says what to do', async () => {
    const agent = await fakeAgent({ tunnels: [] });
    await agent.listen();
    try {
      const started = Date.now();
      await assert.rejects(discoverPublicUrl({ apiUrl: agent.url, attempts: 3, delayMs: 20 }), (err: Error) => {
        assert.ok(err instanceof NgrokDiscoveryError);
        assert.match(err.message, /after 3 tries: the agent has no tunnel yet/);
        assert.match(err.message, /NGROK_AUTHTOKEN/);
        assert.match(err.message, /PUBLIC_URL/);
        return true;
      });
      assert.equal(agent.requests, 3);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await agent.close();
    }
  });

  it('fails at once when the address is not an agent API (no pointless retries)', async () => {
    const agent = await fakeAgent({ tunnels: [], status: 404 });
    await agent.listen();
    try {
      await assert.rejects(discoverPublicUrl({ apiUrl: agent.url, attempts: 10, delayMs: 1000 }), /answered 404.*NGROK_API_URL/s);
      assert.equal(agent.requests, 1);
    } finally {
      await agent.close();
    }
  });

  it('picks the tunnel whose upstream is dockhook, else the first https one', () => {
    const tunnels = [
      tunnel('plain', 'http://plain.ngrok-free.app', 'http://dockhook:3000'),
      tunnel('grafana', 'https://graf.ngrok-free.app', 'http://grafana:8080'),
      tunnel('dockhook', 'https://hook.ngrok-free.app/', 'localhost:3000'),
    ];
    assert.equal(pickPublicUrl(tunnels, '3000'), 'https://hook.ngrok-free.app');
    assert.equal(pickPublicUrl(tunnels, 'http://dockhook:3000'), 'https://graf.ngrok-free.app', 'host differs from localhost: fall back to the first https');
    assert.equal(pickPublicUrl(tunnels, '4000'), 'https://graf.ngrok-free.app');
    assert.equal(pickPublicUrl([tunnel('x', 'http://x.ngrok.io', '3000')], '3000'), undefined, 'http only: nothing GitHub should post secrets to');
  });
});

describe('ensureRepoWebhook (fake GitHub)', () => {
  let github: FakeGitHub;
  let octokit: GitHubClient;
  const repos: GitRepo[] = [];

  before(async () => {
    github = await startFakeGitHub({ token: TOKEN });
    octokit = createGitHubClient({ token: TOKEN, baseUrl: github.apiUrl, log: createLogger('silent') });
  });
  after(async () => {
    await github?.close();
    await Promise.all(repos.map((r) => r.cleanup()));
  });

  async function addRepo(name: string): Promise<void> {
    const repo = await createGitRepo({ 'README.md': `# ${name}\n` });
    repos.push(repo);
    github.addRepo(OWNER, name, repo);
  }
  const writes = () => github.requests.filter((r) => r.server === 'api' && r.method !== 'GET');

  it('creates the hook when there is none, then leaves it alone when it is already right', async () => {
    await addRepo('fresh');
    const { log, text } = capturedLogger();
    const url = 'https://first-1.ngrok-free.app/webhook';

    const created = await ensureRepoWebhook(octokit, { owner: OWNER, repo: 'fresh', url, secret: SECRET, log });
    assert.equal(created.action, 'created');
    const [hook] = github.hooks.get(`${OWNER}/fresh`)!;
    assert.deepEqual(
      { active: hook.active, events: hook.events, url: hook.config.url, content_type: hook.config.content_type, insecure_ssl: hook.config.insecure_ssl, secret: hook.config.secret },
      { active: true, events: ['pull_request'], url, content_type: 'json', insecure_ssl: '0', secret: SECRET },
    );

    const before = writes().length;
    const again = await ensureRepoWebhook(octokit, { owner: OWNER, repo: 'fresh', url, secret: SECRET, log });
    assert.deepEqual(again, { action: 'unchanged', hookId: hook.id });
    assert.equal(writes().length, before, 'no write when nothing differs');
    assert.equal(github.hooks.get(`${OWNER}/fresh`)!.length, 1);
    assert.ok(!text().includes(SECRET), 'the secret is never logged');
  });

  it('repoints the hook of an older tunnel instead of piling up a new one, and keeps unrelated hooks', async () => {
    await addRepo('moved');
    // What a previous run left: a hook on last session's random ngrok URL, plus someone's CI hook.
    await octokit.rest.repos.createWebhook({ owner: OWNER, repo: 'moved', config: { url: 'https://ci.example.com/hook', content_type: 'json' }, events: ['push'] });
    const old = await octokit.rest.repos.createWebhook({
      owner: OWNER,
      repo: 'moved',
      events: ['pull_request'],
      config: { url: 'https://old-9f3a.ngrok-free.app/webhook', content_type: 'json', secret: 'an-older-secret' },
    });
    const { log, text } = capturedLogger();
    const url = 'https://new-77aa.ngrok-free.app/webhook';

    const result = await ensureRepoWebhook(octokit, { owner: OWNER, repo: 'moved', url, secret: SECRET, log });
    assert.deepEqual(result, { action: 'updated', hookId: old.data.id, previousUrl: 'https://old-9f3a.ngrok-free.app/webhook' });
    const hooks = github.hooks.get(`${OWNER}/moved`)!;
    assert.deepEqual(hooks.map((h) => h.config.url).sort(), ['https://ci.example.com/hook', url]);
    const moved = hooks.find((h) => h.id === old.data.id)!;
    assert.equal(moved.config.secret, SECRET, 'the secret is set along with the new URL');
    assert.equal(moved.config.content_type, 'json');
    assert.ok(
      github.requests.some((r) => r.method === 'PATCH' && r.path === `/repos/${OWNER}/moved/hooks/${old.data.id}/config`),
      'config changed through PATCH …/hooks/{id}/config',
    );
    assert.match(text(), /webhook updated/);
    assert.ok(!text().includes(SECRET) && !text().includes('an-older-secret'));

    // GitHub's own answers never show the secret either.
    const listed = await octokit.rest.repos.listWebhooks({ owner: OWNER, repo: 'moved' });
    assert.ok(!JSON.stringify(listed.data).includes(SECRET));
  });

  it('fixes a hook at the right URL whose config or events are wrong', async () => {
    await addRepo('wrong');
    const url = 'https://same-1.ngrok-free.app/webhook';
    const made = await octokit.rest.repos.createWebhook({ owner: OWNER, repo: 'wrong', active: false, events: ['push'], config: { url, content_type: 'form' } });
    const { log } = capturedLogger();

    const result = await ensureRepoWebhook(octokit, { owner: OWNER, repo: 'wrong', url, secret: SECRET, log });
    assert.deepEqual(result, { action: 'updated', hookId: made.data.id, previousUrl: undefined });
    const [hook] = github.hooks.get(`${OWNER}/wrong`)!;
    assert.equal(hook.active, true);
    assert.deepEqual(hook.events.sort(), ['pull_request', 'push']);
    assert.equal(hook.config.content_type, 'json');
    assert.equal(hook.config.secret, SECRET);
  });

  it('explains a repository the token cannot manage, without the secret', async () => {
    const { log } = capturedLogger();
    await assert.rejects(ensureRepoWebhook(octokit, { owner: OWNER, repo: 'missing', url: 'https://x.ngrok-free.app/webhook', secret: SECRET, log }), (err: Error) => {
      assert.match(err.message, /acme\/missing failed \(404\)/);
      assert.match(err.message, /admin/);
      assert.ok(!err.message.includes(SECRET));
      return true;
    });
  });
});

describe('dockhook serve with NGROK_API_URL (real serve path, real engine and registry)', () => {
  const PUBLIC = 'https://dockhook-e2e.ngrok-free.app';
  let github: FakeGitHub;
  let registry: TestRegistry;
  let agent: FakeAgent;
  let repo: GitRepo;
  let child: ChildProcess | undefined;
  let dataDir: string;
  let port: number;
  let output = '';

  before(async () => {
    await ensureBusyboxImage();
    github = await startFakeGitHub({ token: TOKEN });
    registry = await startRegistry();
    repo = await createGitRepo({
      'dockerInfo.json': JSON.stringify({ service_name: 'tunnelled', version: '1.0.0' }),
      Dockerfile: 'FROM busybox:latest\nCOPY message.txt /message.txt\n',
      'message.txt': 'through the tunnel\n',
    });
    github.addRepo(OWNER, 'tunnelled', repo);
    dataDir = await mkdtemp(join(tmpdir(), 'dockhook-serve-'));
    port = await freePort();
    agent = await fakeAgent({ emptyAnswers: 1, tunnels: [tunnel('dockhook', PUBLIC, `http://localhost:${port}`)] });
    await agent.listen();
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await agent?.close();
    await github?.close();
    await registry?.close();
    await repo?.cleanup();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    const left = await docker('images', '--format', '{{.Repository}}:{{.Tag}}', `${registry.host}/tunnelled`).catch(() => '');
    for (const ref of left.split('\n').filter(Boolean)) await docker('rmi', '-f', ref).catch(() => '');
  });

  it('logs the webhook URL, sets up the webhook, and links commit statuses to the tunnel', async () => {
    const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
    child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'serve'], {
      // A temp cwd: no developer .env can leak in. A minimal environment for the same reason.
      cwd: dataDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
        WEBHOOK_SECRET: SECRET,
        GITHUB_TOKEN: TOKEN,
        GITHUB_API_URL: github.apiUrl,
        REGISTRY: registry.host,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        NGROK_API_URL: agent.url,
        WEBHOOK_REPOS: `${OWNER}/tunnelled`,
        LOG_LEVEL: 'info',
        SHUTDOWN_GRACE_SECONDS: '5',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));

    const until = async (what: string, check: () => boolean, ms = 60_000) => {
      const deadline = Date.now() + ms;
      while (!check()) {
        if (child!.exitCode !== null) throw new Error(`dockhook exited (${child!.exitCode}) while waiting for ${what}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    const webhookUrl = `${PUBLIC}/webhook`;
    await until('the webhook URL log line', () => output.includes(`webhook URL: ${webhookUrl}`));
    await until('the webhook', () => github.hooks.get(`${OWNER}/tunnelled`)?.some((h) => h.config.url === webhookUrl) ?? false);
    const [hook] = github.hooks.get(`${OWNER}/tunnelled`)!;
    assert.deepEqual(hook.events, ['pull_request']);
    assert.equal(hook.config.secret, SECRET);

    // A merge arrives (through the tunnel, in real life): its statuses link to the tunnel's URL.
    const sha = repo.head();
    const answer = await postDelivery(`http://127.0.0.1:${port}/webhook`, SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'tunnelled', sha }));
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const buildId = answer.body.build as number;
    await until('the final commit status', () => github.statusesFor(sha).some((s) => s.state !== 'pending'), 120_000);
    const statuses = github.statusesFor(sha);
    assert.deepEqual(statuses.map((s) => s.state), ['pending', 'success'], JSON.stringify(statuses));
    for (const s of statuses) assert.equal(s.target_url, `${PUBLIC}/builds/${buildId}`);

    assert.ok(!output.includes(SECRET), 'the secret is never logged');
    assert.ok(!output.includes(TOKEN), 'the token is never logged');
  });
});
