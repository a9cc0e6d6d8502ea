import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ensureBusyboxImage } from '../support/base-image.js';
import { findCompose } from '../support/compose.js';
import { mergedPullRequestPayload, postDelivery } from '../support/deliveries.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { until } from '../support/wait.js';

/**
 * The README's "When one machine is not enough" path, as compose-up.test.ts
 * does the single-machine one: a copy of the repository, `cp .env.example
 * .env` with three values filled in, then
 *
 *   docker-compose -f docker-compose.yml -f docker-compose.scale.yml up -d --build --scale worker=3
 *
 * with the stand-in images (test/rehearsal/stand-in-images.sh; postgres:16
 * is Debian bookworm's PostgreSQL 15 there) and the fake GitHub in
 * test/support reached through the host gateway. It checks that db-auth's
 * password opens the real PostgreSQL, that the receiver and the three
 * workers come up ready, that merges are built by the workers and not the
 * receiver, and that a worker container killed mid-build loses the build to
 * another worker once the lease runs out. The override file holds only what
 * points at the fakes.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROJECT = 'dockhookscalerehearsal';
const OWNER = 'scale-rehearsal';
const SECRET = `scale-rehearsal-secret-${process.pid}`;
const TOKEN = 'ghp_scalerehearsal0123456789';
const LEASE_SECONDS = 5;
const RESULTS = join(ROOT, 'test-results');
const SLOW = 20 * 60_000;
const FILES = ['-f', 'docker-compose.yml', '-f', 'docker-compose.scale.yml', '-f', 'rehearsal.override.yml'];

interface LogLine {
  msg?: string;
  role?: string;
  store?: string;
  worker?: string;
  build?: number;
  attempt?: number;
  [key: string]: unknown;
}

let dir: string;
let github: FakeGitHub;
const repos: GitRepo[] = [];
let compose: (args: string[], timeout?: number) => Promise<{ stdout: string; stderr: string }>;
let composeCmd: string[];

/** The repository's files as a clean clone has them (tracked files only). */
async function copyCheckout(to: string): Promise<void> {
  const { stdout } = await run('git', ['-C', ROOT, 'ls-files', '-z'], { maxBuffer: 16 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue;
    await mkdir(dirname(join(to, file)), { recursive: true });
    await copyFile(join(ROOT, file), join(to, file));
  }
}

/** The containers of one service, by compose's labels (v1 and v2 name them differently). */
async function containersOf(service: string, all = false): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', ...(all ? ['-a'] : []), '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', `label=com.docker.compose.service=${service}`, '--format', '{{.Names}}']);
  return stdout.split('\n').filter(Boolean).sort();
}

/** A container's JSON log lines (pino); other lines are left out. */
async function logLines(container: string): Promise<LogLine[]> {
  const { stdout } = await run('docker', ['logs', container], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function build(id: number): Promise<any> {
  return (await getJson(`http://localhost:3000/api/builds/${id}`)).body;
}

async function newRepo(name: string, dockerfile: string): Promise<GitRepo> {
  const repo = await createGitRepo({ 'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }), Dockerfile: dockerfile });
  github.addRepo(OWNER, name, repo);
  repos.push(repo);
  return repo;
}

describe('docker compose up --scale worker=3 with docker-compose.scale.yml (stand-in images, fake GitHub)', { timeout: 2 * SLOW }, () => {
  before(async () => {
    await run('bash', [join(ROOT, 'test/rehearsal/stand-in-images.sh')], { timeout: SLOW, maxBuffer: 64 * 1024 * 1024 });
    await ensureBusyboxImage();
    const cmd = await findCompose();
    composeCmd = cmd;
    dir = await mkdtemp(join(tmpdir(), 'dockhook-scale-rehearsal-'));
    await copyCheckout(dir);
    // An exec that hangs should fail its test, not the file's 10-minute limit.
    compose = (args, timeout = args[0] === 'exec' || args[0] === 'logs' ? 60_000 : SLOW) =>
      new Promise((resolve, reject) => {
        const child = execFile(cmd[0]!, [...cmd.slice(1), '-p', PROJECT, ...FILES, ...args], { cwd: dir, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
          err ? reject(Object.assign(err, { message: `${err.message}\n${stdout}\n${stderr}` })) : resolve({ stdout, stderr }),
        );
        // `exec -T` reads its stdin until it ends: give it an empty one.
        child.stdin?.end();
      });

    github = await startFakeGitHub({ token: TOKEN, listenHost: '0.0.0.0', urlHost: 'host.docker.internal' });

    // The README: cp .env.example .env, three values. A short lease, which a person may set too, keeps the takeover quick.
    const example = await readFile(join(dir, '.env.example'), 'utf8');
    const filled = example
      .replace(/^WEBHOOK_SECRET=$/m, `WEBHOOK_SECRET=${SECRET}`)
      .replace(/^GITHUB_TOKEN=$/m, `GITHUB_TOKEN=${TOKEN}`)
      .replace(/^NGROK_AUTHTOKEN=$/m, 'NGROK_AUTHTOKEN=rehearsal-ngrok-token');
    assert.notEqual(filled, example);
    await writeFile(join(dir, '.env'), `${filled}\nLEASE_SECONDS=${LEASE_SECONDS}\n`);

    const githubUrl = `http://host.docker.internal:${new URL(github.apiUrl).port}`;
    const pointAtFakes = ['    extra_hosts: ["host.docker.internal:host-gateway"]', '    environment:', `      GITHUB_API_URL: ${githubUrl}`];
    await writeFile(join(dir, 'rehearsal.override.yml'), ['services:', '  dockhook:', ...pointAtFakes, '  worker:', ...pointAtFakes, ''].join('\n'));
    await compose(['down', '-v', '--remove-orphans'], 120_000).catch(() => undefined);
    await compose(['up', '-d', '--build', '--scale', 'worker=3']);
  }, { timeout: 2 * SLOW });

  after(async () => {
    if (dir) {
      const logs = await compose(['logs', '--no-color']).catch((err: Error) => ({ stdout: err.message, stderr: '' }));
      await mkdir(RESULTS, { recursive: true });
      await writeFile(join(RESULTS, 'compose-scale-rehearsal.log'), logs.stdout + logs.stderr);
      await compose(['down', '-v', '--remove-orphans'], 120_000).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    await github?.close();
    for (const r of repos) await r.cleanup();
  }, { timeout: 5 * 60_000 });

  it("starts: db-auth's password opens PostgreSQL, the receiver and three workers are ready on it", async () => {
    const auth = await compose(['logs', '--no-color', 'db-auth']);
    assert.match(auth.stdout, /init-db-auth: made a new password and the database URL for dockhook@postgres:5432\/dockhook in \/auth/);

    const ready = await until('the receiver answers /readyz with 200', async () => {
      const r = await getJson('http://localhost:3000/readyz').catch(() => undefined);
      return r?.status === 200 ? r.body : undefined;
    }, 180_000, 1000);
    // A receiver builds nothing: its readiness does not ask an engine.
    assert.deepEqual(ready.checks, { registry: 'ok', store: 'ok' });
    const [receiver] = await containersOf('dockhook');
    const listening = (await logLines(receiver!)).find((l) => l.msg === 'dockhook is listening');
    assert.equal(listening?.role, 'receiver');
    assert.equal(listening?.store, 'postgres');

    const workers = await containersOf('worker');
    assert.equal(workers.length, 3);
    const names = new Set<string>();
    for (const [i, container] of workers.entries()) {
      const line = await until(`${container} is listening`, async () => (await logLines(container)).find((l) => l.msg === 'dockhook is listening'), 60_000, 500);
      assert.equal(line.role, 'worker');
      assert.equal(line.store, 'postgres');
      names.add(line.worker!);
      const probe = "fetch('http://127.0.0.1:3000/readyz').then(async (r) => console.log(r.status, await r.text()))";
      const out = await compose(['exec', '-T', '--index', String(i + 1), 'worker', 'node', '-e', probe]);
      assert.match(out.stdout, /^200 .*"docker":"ok".*"store":"ok"/);
    }
    assert.equal(names.size, 3, 'each replica names itself');

    // The password is PostgreSQL's real one (scram over the network); a wrong one is refused. The URL is read
    // inside the container, so it is on no command line.
    const login = async (which: 'right' | 'wrong') => {
      const script = [
        "let url = require('fs').readFileSync('/db-auth/database-url', 'utf8').trim();",
        "if (process.argv[1] === 'wrong') url = url.replace(/:[^:@]+@/, ':wrong@');",
        "const c = new (require('pg').Client)({ connectionString: url });",
        "c.connect().then(() => { console.log('in'); return c.end(); }, (e) => console.log('refused:', e.message));",
      ].join(' ');
      return (await compose(['exec', '-T', '--index', '1', 'worker', 'node', '-e', script, which])).stdout.trim();
    };
    assert.equal(await login('right'), 'in');
    assert.match(await login('wrong'), /^refused: password authentication failed for user "dockhook"$/);
    const url = (await compose(['exec', '-T', 'dockhook', 'cat', '/db-auth/database-url'])).stdout.trim();
    assert.match(url, /^postgres:\/\/dockhook:[A-Za-z0-9_-]{43}@postgres:5432\/dockhook$/);
  });

  it('builds merges of three repositories on the workers, never on the receiver', async () => {
    const ids: number[] = [];
    for (const name of ['alpha', 'bravo', 'charlie']) {
      const repo = await newRepo(name, `FROM busybox:latest\nRUN echo built ${name}\n`);
      const sent = await postDelivery('http://localhost:3000/webhook', SECRET, mergedPullRequestPayload({ owner: OWNER, repo: name, sha: repo.head() }));
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
      ids.push(sent.body.build as number);
    }
    for (const id of ids) {
      const done = await until(`build ${id} to finish`, async () => {
        const b = await build(id);
        return b && (b.state === 'succeeded' || b.state === 'failed') ? b : undefined;
      }, 300_000, 1000);
      assert.equal(done.state, 'succeeded', done.failure);
      assert.deepEqual(done.pushed.map((p: { tag: string }) => p.tag).sort(), ['1.0.0', 'latest', `sha-${done.shortSha}`].sort());
    }
    const started = new Map<number, string>();
    for (const container of await containersOf('worker')) {
      for (const l of await logLines(container)) if (l.msg === 'build started' && ids.includes(l.build!)) started.set(l.build!, container);
    }
    assert.deepEqual([...started.keys()].sort(), [...ids].sort(), 'every build started on a worker');
    const [receiver] = await containersOf('dockhook');
    assert.ok(!(await logLines(receiver!)).some((l) => l.msg === 'build started'), 'the receiver ran none');
  });

  it('docker kill of the worker running a build: another worker takes it over after the lease, the rest keep running', async () => {
    // Unique per run: the host's engine keeps its build cache between runs, and a cached sleep would end before the kill.
    const repo = await newRepo('victim', `FROM busybox:latest\nRUN sleep 8 && echo ${randomUUID()}\nRUN echo survived\n`);
    const sent = await postDelivery('http://localhost:3000/webhook', SECRET, mergedPullRequestPayload({ owner: OWNER, repo: 'victim', sha: repo.head(), number: 7 }));
    assert.equal(sent.status, 202);
    const id = sent.body.build as number;
    const workers = await containersOf('worker');
    const victim = await until('a worker to start the build', async () => {
      for (const c of workers) if ((await logLines(c)).some((l) => l.msg === 'build started' && l.build === id)) return c;
      return undefined;
    }, 60_000, 250);
    await new Promise((r) => setTimeout(r, 2000));
    await run('docker', ['kill', victim]);
    const killedAt = Date.now();

    const survivors = workers.filter((c) => c !== victim);
    const takenBy = await until('another worker to take it over', async () => {
      for (const c of survivors) if ((await logLines(c)).some((l) => l.msg === 'build started' && l.build === id && l.attempt === 2)) return c;
      return undefined;
    }, (LEASE_SECONDS + 15) * 1000, 250).catch(async (err: Error) => {
      // What the survivors were doing, and what the store says: the first things to read when this fails.
      const tails = await Promise.all(survivors.map(async (c) => `${c}:\n${(await logLines(c)).slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
      throw new Error(`${err.message}\nbuild: ${JSON.stringify(await build(id))}\n${tails.join('\n')}`);
    });
    assert.ok(survivors.includes(takenBy));
    assert.ok(Date.now() - killedAt <= (LEASE_SECONDS + 15) * 1000);
    const done = await until('the build to finish', async () => {
      const b = await build(id);
      return b && (b.state === 'succeeded' || b.state === 'failed') ? b : undefined;
    }, 180_000, 1000);
    assert.equal(done.state, 'succeeded', done.failure);
    assert.equal(done.attempts, 2);
    const tags = done.pushed.map((p: { tag: string }) => p.tag);
    assert.deepEqual(tags, [...new Set(tags)], 'each tag pushed once');

    // The killed one stays down (docker kill counts as a stop for restart: unless-stopped); the others run on.
    assert.deepEqual(await containersOf('worker'), survivors);
    assert.equal((await getJson('http://localhost:3000/readyz')).status, 200);
  });

  it("backs up and restores with the README's pg_dump and pg_restore lines, COMPOSE_FILE naming the files", async () => {
    const count = async () => (await getJson('http://localhost:3000/api/builds')).body.builds.length as number;
    const before = await count();
    assert.ok(before >= 4);
    // The README's lines, run by a shell as a person would (the dump goes through the host's stdout).
    const env = { ...process.env, COMPOSE_FILE: 'docker-compose.yml:docker-compose.scale.yml:rehearsal.override.yml', COMPOSE_PROJECT_NAME: PROJECT };
    const c = composeCmd.join(' ');
    await run('bash', ['-c', `${c} exec -T postgres pg_dump -U dockhook -Fc dockhook > backup.dump </dev/null`], { cwd: dir, env, timeout: 120_000 });
    assert.equal((await readFile(join(dir, 'backup.dump'))).subarray(0, 5).toString(), 'PGDMP', 'a pg_dump custom-format archive');
    await run('bash', ['-c', `${c} exec -T postgres pg_restore -U dockhook -d dockhook --clean --if-exists < backup.dump`], { cwd: dir, env, timeout: 120_000 });
    assert.equal(await count(), before, 'the same builds after the restore');
    assert.equal((await getJson('http://localhost:3000/readyz')).status, 200);
  });

  it("never prints the database password: not in any container's log", async () => {
    const password = (await compose(['exec', '-T', 'dockhook', 'cat', '/db-auth/password'])).stdout.trim();
    assert.ok(password.length >= 40);
    const logs = await compose(['logs', '--no-color']);
    assert.ok(!logs.stdout.includes(password) && !logs.stderr.includes(password));
  });
});
