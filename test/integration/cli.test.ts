import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { freePort } from '../support/ports.js';
import { SECRET as HARNESS_SECRET, startHarness, type Harness } from '../support/harness.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { loadConfig } from '../../src/config.js';
import { checkRegistry } from '../../src/cli/doctor-checks.js';

/**
 * `dockhook` as a person runs it: a subprocess of src/cli.ts, its own temp
 * working directory (so no developer .env leaks in) and a minimal environment
 * (so no GITHUB_TOKEN of the machine or CI does).
 */

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const TOKEN = 'ghp_clitest0123456789abcdef';
const SECRET = 'cli-test-webhook-secret-0f9e8d7c';
const REGISTRY_USER = 'dockhook';
const REGISTRY_PASSWORD = 'registry-pass-5b4a3c2d1e';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let cwd: string;

function dockhook(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  if (process.env.DOCKER_HOST) base.DOCKER_HOST = process.env.DOCKER_HOST;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

const linesOf = (run: Run, name: string) => run.stdout.split('\n').filter((l) => l.slice(5).startsWith(`${name}:`));

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'dockhook-cli-'));
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('dockhook --help', () => {
  it('lists the commands, and each command has its own help', async () => {
    const top = await dockhook(['--help']);
    assert.equal(top.code, 0);
    for (const name of ['serve', 'send-test-delivery', 'doctor']) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'));
    for (const name of ['serve', 'send-test-delivery', 'doctor']) {
      const help = await dockhook([name, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: dockhook ${name}`));
    }
  });

  it('refuses an unknown command or option with exit code 2', async () => {
    const unknown = await dockhook(['undeploy']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "undeploy"/);
    const badOption = await dockhook(['doctor', '--verbose']);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /Unknown option '--verbose'/);
  });
});

describe('dockhook doctor (real engine, real registry with htpasswd, fake GitHub)', () => {
  let registry: TestRegistry;
  let github: FakeGitHub;
  let repo: GitRepo;
  let agent: Server;
  let agentUrl: string;

  before(async () => {
    registry = await startRegistry({ auth: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } });
    github = await startFakeGitHub({ token: TOKEN });
    repo = await createGitRepo({ 'README.md': 'doctor\n' });
    github.addRepo('acme', 'app', repo);
    // The ngrok agent's API, answering as documented.
    agent = createServer((_req, res) => {
      const tunnels = [{ name: 'dockhook', public_url: 'https://doc-tor.ngrok-free.app', proto: 'https', config: { addr: 'http://dockhook:3000', inspect: true } }];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tunnels, uri: '/api/tunnels' }));
    });
    await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
    agentUrl = `http://127.0.0.1:${(agent.address() as AddressInfo).port}`;
  });
  after(async () => {
    await registry?.close();
    await github?.close();
    await repo?.cleanup();
    agent?.closeAllConnections();
    await new Promise((resolve) => agent?.close(resolve));
  });

  const goodEnv = () => ({
    WEBHOOK_SECRET: SECRET,
    GITHUB_TOKEN: TOKEN,
    GITHUB_API_URL: github.apiUrl,
    REGISTRY: registry.host,
    REGISTRY_USERNAME: REGISTRY_USER,
    REGISTRY_PASSWORD,
    WEBHOOK_REPOS: 'acme/app',
    NGROK_API_URL: agentUrl,
    DATA_DIR: join(cwd, 'data'),
  });

  const assertNoSecrets = (run: Run) => {
    for (const secret of [SECRET, TOKEN, REGISTRY_PASSWORD, 'wrong-password-1234', 'ghp_wrongtoken999']) {
      assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), `output shows a secret:\n${run.stdout}${run.stderr}`);
    }
  };

  it('says ok for each check when everything is right, and exits 0', async () => {
    const run = await dockhook(['doctor'], goodEnv());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^ok {3}config: /m);
    assert.match(run.stdout, /^ok {3}engine: Docker \d+\.\d+\.\d+\S* at \S+/m);
    // scripts/ensure-docker.sh enables QEMU for arm64 and arm (the tests' engine is amd64 here).
    assert.match(run.stdout, /^ok {3}platforms: can run linux\/\S+ \(native\)(, \S+)* \(QEMU\)$/m);
    if (/platforms: can run linux\/amd64 /.test(run.stdout)) assert.match(run.stdout, /^ok {3}platforms: .*linux\/arm64.*\(QEMU\)$/m);
    assert.match(run.stdout, new RegExp(`^ok {3}registry: ${registry.url.replace(/\./g, '\\.')} accepts the credentials of REGISTRY_USERNAME=${REGISTRY_USER}`, 'm'));
    assert.match(run.stdout, /^ok {3}github: GITHUB_TOKEN is valid: dockhook-bot/m);
    assert.match(run.stdout, /^ok {3}github: dockhook-bot may write commit statuses to acme\/app$/m);
    assert.match(run.stdout, /^ok {3}webhook secret: WEBHOOK_SECRET is set \(\d+ characters\)$/m);
    assert.match(run.stdout, /^ok {3}ngrok: public URL https:\/\/doc-tor\.ngrok-free\.app/m);
    assert.doesNotMatch(run.stdout, /^(FAIL|warn)/m);
    assertNoSecrets(run);
  });

  it('names REGISTRY_PASSWORD when the registry refuses the credentials, and exits 1', async () => {
    const run = await dockhook(['doctor'], { ...goodEnv(), REGISTRY_PASSWORD: 'wrong-password-1234' });
    assert.equal(run.code, 1);
    const [line] = linesOf(run, 'registry');
    assert.match(line, /^FAIL registry: .*refused the credentials of REGISTRY_USERNAME=dockhook {2}→ fix: .*REGISTRY_PASSWORD/);
    assert.match(run.stdout, /^ok {3}engine: /m, 'the other checks still run');
    assertNoSecrets(run);
  });

  it('fails on a token GitHub refuses', async () => {
    const run = await dockhook(['doctor'], { ...goodEnv(), GITHUB_TOKEN: 'ghp_wrongtoken999' });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^FAIL github: .*refused GITHUB_TOKEN \(401 Bad credentials\) {2}→ fix: /m);
    assertNoSecrets(run);
  });

  it('fails on a repository the token cannot see, and warns when there is no repository to check', async () => {
    const missing = await dockhook(['doctor', '--repo', 'acme/nope'], goodEnv());
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /^FAIL github: acme\/nope does not exist or the token cannot see it/m);

    const { WEBHOOK_REPOS: _unused, ...env } = goodEnv();
    const none = await dockhook(['doctor'], env);
    assert.equal(none.code, 0, none.stdout);
    assert.match(none.stdout, /^warn github: cannot check the permission to write commit statuses without a repository {2}→ fix: set WEBHOOK_REPOS/m);
  });

  it('warns about a short webhook secret without showing it', async () => {
    const run = await dockhook(['doctor'], { ...goodEnv(), WEBHOOK_SECRET: 'shorty' });
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^warn webhook secret: WEBHOOK_SECRET is set but short \(6 characters\)/m);
    assert.ok(!run.stdout.includes('shorty'));
  });

  it('fails when the registry, the engine or GitHub cannot be reached', async () => {
    const closed = await freePort(); // nobody listens there
    const run = await dockhook(['doctor'], {
      ...goodEnv(),
      REGISTRY: `127.0.0.1:${closed}`,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      GITHUB_API_URL: `http://127.0.0.1:${closed}`,
    });
    assert.equal(run.code, 1);
    assert.match(run.stdout, new RegExp(`^FAIL github: cannot reach http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`, 'm'));
    assert.equal(run.stderr, '', 'no stray logging from the clients');
    assert.match(run.stdout, new RegExp(`^FAIL registry: cannot reach http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\) {2}→ fix: start the registry`, 'm'));
    assert.match(run.stdout, /^FAIL engine: cannot reach the engine at \/nonexistent\/docker\.sock \(ENOENT\)/m);
    assert.doesNotMatch(run.stdout, /platforms:/, 'no platforms line without an engine');
  });

  it('lists every configuration problem by variable name and exits non-zero', async () => {
    const run = await dockhook(['doctor'], { GITHUB_TOKEN: TOKEN, BUILD_CONCURRENCY: 'many' });
    assert.notEqual(run.code, 0);
    assert.match(run.stdout, /^FAIL config: WEBHOOK_SECRET is required but missing or empty/m);
    assert.match(run.stdout, /^FAIL config: REGISTRY is required but missing or empty/m);
    assert.match(run.stdout, /^FAIL config: BUILD_CONCURRENCY: /m);
    assert.match(run.stdout, /^skip registry, github/m);
  });

  it('reads the settings from ./.env as npm start does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockhook-cli-env-'));
    const previous = cwd;
    try {
      const lines = Object.entries(goodEnv()).map(([k, v]) => `${k}=${v}`);
      await writeFile(join(dir, '.env'), `${lines.join('\n')}\n`);
      cwd = dir;
      const run = await dockhook(['doctor']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /^ok {3}registry: /m);
    } finally {
      cwd = previous;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dockhook send-test-delivery (against a running dockhook)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('signs the example merged pull request so dockhook accepts it', async () => {
    const run = await dockhook(['send-test-delivery', '--url', h.url, '--repo', 'acme/not-served', '--sha', 'a'.repeat(40)], { WEBHOOK_SECRET: HARNESS_SECRET });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`^POST ${h.url.replace(/\./g, '\\.')}/webhook$`, 'm'));
    assert.match(run.stdout, /pull_request closed \(merged\) acme\/not-served@aaaaaaa into master/);
    // 202 = a build was queued; 200 = accepted and ignored. Either way the signature was good.
    assert.match(run.stdout, /^(202 Accepted|200 OK)$/m);
    assert.ok(!run.stdout.includes(HARNESS_SECRET));
    const queued = /"build":(\d+)/.exec(run.stdout);
    if (queued) assert.equal((await h.service.store.get(Number(queued[1])))?.repo, 'not-served');
  });

  it('shows 401 and what to fix when the secret differs, and exits 1', async () => {
    const run = await dockhook(['send-test-delivery', '--url', `${h.url}/webhook`], { WEBHOOK_SECRET: 'not-the-secret-of-this-server' });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^401 Unauthorized$/m);
    assert.match(run.stdout, /→ fix: the secret differs from the WEBHOOK_SECRET/);
  });

  it('names WEBHOOK_SECRET when it is missing, and needs --url', async () => {
    const missing = await dockhook(['send-test-delivery', '--url', h.url]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /WEBHOOK_SECRET is required but missing or empty/);
    const noUrl = await dockhook(['send-test-delivery'], { WEBHOOK_SECRET: SECRET });
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /--url is required/);
  });
});

describe('dockhook init-registry-auth (what compose runs; a real registry reads the result)', () => {
  let dir: string;
  let reg: TestRegistry | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockhook-auth-'));
  });
  after(async () => {
    await reg?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** dockhook's own view, as compose configures it: the password only through REGISTRY_PASSWORD_FILE. */
  const registryCheck = (host: string) =>
    checkRegistry(loadConfig({ WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, REGISTRY: host, REGISTRY_USERNAME: REGISTRY_USER, REGISTRY_PASSWORD_FILE: join(dir, 'password') }));

  it('makes a password and an htpasswd entry that the registry accepts and dockhook reads, printing neither', async () => {
    const first = await dockhook(['init-registry-auth', '--dir', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /made a new password and its htpasswd entry for user dockhook/);
    const password = (await readFile(join(dir, 'password'), 'utf8')).trim();
    assert.ok(password.length >= 40, 'a long random password');
    assert.ok(!first.stdout.includes(password) && !first.stderr.includes(password), 'the password is not printed');
    assert.equal((await stat(join(dir, 'password'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'htpasswd'))).mode & 0o777, 0o644);

    reg = await startRegistry({ htpasswdFile: join(dir, 'htpasswd') });
    const ok = await registryCheck(reg.host);
    assert.equal(ok.level, 'ok', ok.message);
    // And a wrong password is refused, so the check above meant something.
    const wrong = await checkRegistry(loadConfig({ WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, REGISTRY: reg.host, REGISTRY_USERNAME: REGISTRY_USER, REGISTRY_PASSWORD: 'not-it' }));
    assert.equal(wrong.level, 'FAIL');
  });

  it('keeps both at the next start; a new password written to the file replaces the entry', async () => {
    const htpasswd = await readFile(join(dir, 'htpasswd'), 'utf8');
    const again = await dockhook(['init-registry-auth', '--dir', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /kept the password and htpasswd already there/);
    assert.equal(await readFile(join(dir, 'htpasswd'), 'utf8'), htpasswd, 'unchanged');

    await writeFile(join(dir, 'password'), 'a-password-chosen-by-a-person\n');
    const changed = await dockhook(['init-registry-auth', '--dir', dir]);
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /wrote the htpasswd entry for the password already there/);
    await reg!.stop();
    await reg!.start();
    const ok = await registryCheck(reg!.host);
    assert.equal(ok.level, 'ok', ok.message);
  });

  it('will not replace an htpasswd it cannot know the password of, and says what to do', async () => {
    const other = await mkdtemp(join(tmpdir(), 'dockhook-auth-'));
    try {
      await writeFile(join(other, 'htpasswd'), 'someone:$2y$10$abcdefghijklmnopqrstuuu1234567890abcdefghijklmnopqrstu\n');
      const run = await dockhook(['init-registry-auth', '--dir', other]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /htpasswd exists but .*password does not .*write it to .*password, or delete .*htpasswd to make new credentials/);
      assert.equal(await readFile(join(other, 'htpasswd'), 'utf8').then((t) => t.startsWith('someone:')), true, 'left as it was');
      const missing = await dockhook(['init-registry-auth', '--dir', join(other, 'nope')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /does not exist: create it or mount a volume there/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
