import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import { freePort } from '../support/ports.js';

/**
 * `dockhook build` as a person runs it (a subprocess of src/cli.ts, its own
 * temp working directory, a minimal environment), against a stand-in for
 * dockhook's POST /api/builds that records what it was sent and answers as
 * the test says. The API itself is tested in api-trigger.test.ts.
 */

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const TOKEN = 'api-token-cli-build-7f6e5d4c3b2a';
const SHA = '0123456789abcdef0123456789abcdef01234567';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Recorded {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let cwd: string;
let server: Server;
let url: string;
let port: number;
let requests: Recorded[] = [];
let answer: { status: number; body: string; type?: string } = { status: 202, body: JSON.stringify({ build: 42, sha: SHA, branch: 'main' }) };

function dockhook(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

const withService = (extra: Record<string, string> = {}) => ({ API_TOKEN: TOKEN, DOCKHOOK_URL: url, ...extra });

function assertNoToken(run: Run): void {
  assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN), `output shows the token:\n${run.stdout}${run.stderr}`);
}

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'dockhook-cli-build-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await rm(cwd, { recursive: true, force: true });
});
beforeEach(() => {
  requests = [];
  answer = { status: 202, body: JSON.stringify({ build: 42, sha: SHA, branch: 'main' }) };
});

describe('dockhook build', () => {
  it('is listed in the overview and has its own help', async () => {
    const top = await dockhook(['--help']);
    assert.match(top.stdout, /^ {2}build {2,}\S/m);
    const help = await dockhook(['build', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: dockhook build <owner\/repo> <ref> \[--force\] \[--image <name>\]\.\.\./);
    assert.match(help.stdout, /DOCKHOOK_URL/);
    assert.match(help.stdout, /API_TOKEN/);
    assert.deepEqual(requests, []);
  });

  it('POSTs repo and ref with the bearer token, and prints the queued build and its page', async () => {
    const run = await dockhook(['build', 'acme/app', 'main'], withService());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(requests.length, 1);
    const [req] = requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/api/builds');
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    assert.match(req.headers['content-type'] ?? '', /^application\/json/);
    // force and images only when given: a server without them must not see unknown fields.
    assert.deepEqual(JSON.parse(req.body), { repo: 'acme/app', ref: 'main' });
    assert.equal(run.stdout, `queued build #42 of acme/app@0123456\n  ${url}/builds/42\n`);
    assert.equal(run.stderr, '');
    assertNoToken(run);
  });

  it('sends force and the images when given; a repeated image once', async () => {
    const run = await dockhook(['build', 'acme/app', 'v1.2.3', '--force', '--image', 'api', '--image', 'team/worker', '--image', 'api'], withService());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(JSON.parse(requests[0]!.body), { repo: 'acme/app', ref: 'v1.2.3', force: true, images: ['api', 'team/worker'] });
  });

  it('a commit that already has a build: says which, suggests --force, exits 0', async () => {
    answer = { status: 200, body: JSON.stringify({ duplicate: 7, sha: SHA }) };
    const run = await dockhook(['build', 'acme/app', SHA], withService());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`^acme/app@0123456 already has build #7: ${url.replace(/\./g, '\\.')}/builds/7$`, 'm'));
    assert.match(run.stdout, /--force/);
    const forced = await dockhook(['build', 'acme/app', SHA, '--force'], withService());
    assert.doesNotMatch(forced.stdout, /run again with --force/, 'no suggestion to do what was just done');
  });

  it('an error answer: its message and hint on stderr, exit 1', async () => {
    answer = { status: 422, body: JSON.stringify({ error: 'ref nope not found in acme/app', hint: 'use a branch, a tag or a commit sha of that repository' }) };
    const run = await dockhook(['build', 'acme/app', 'nope'], withService());
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'dockhook build: 422 ref nope not found in acme/app\n  hint: use a branch, a tag or a commit sha of that repository\n');

    answer = { status: 401, body: JSON.stringify({ error: 'wrong API token' }) };
    const refused = await dockhook(['build', 'acme/app', 'main'], withService());
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^dockhook build: 401 wrong API token\n {2}hint: API_TOKEN must be the value dockhook runs with\n$/);
    assertNoToken(refused);

    answer = { status: 502, body: '<html>Bad Gateway</html>', type: 'text/html' };
    const proxy = await dockhook(['build', 'acme/app', 'main'], withService());
    assert.equal(proxy.code, 1);
    assert.match(proxy.stderr, /^dockhook build: 502 <html>Bad Gateway<\/html>$/m);
  });

  it('never prints the token, even when the server echoes it', async () => {
    answer = { status: 400, body: JSON.stringify({ error: `bad token ${TOKEN}` }) };
    const run = await dockhook(['build', 'acme/app', 'main'], withService());
    assert.equal(run.code, 1);
    assert.match(run.stderr, /bad token \[redacted\]/);
    assertNoToken(run);
  });

  it('without API_TOKEN: a usage error naming it, and no request', async () => {
    const run = await dockhook(['build', 'acme/app', 'main'], { DOCKHOOK_URL: url });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^dockhook build: API_TOKEN is required but missing or empty/);
    assert.match(run.stderr, /Usage: dockhook build/);
    assert.deepEqual(requests, []);
  });

  it('bad arguments: usage errors (exit 2), and no request', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /give the repository \(owner\/repo\) and the ref/],
      [['acme/app'], /give the ref to build/],
      [['acme/app', 'main', 'extra'], /unexpected argument "extra"/],
      [['acme', 'main'], /"acme" is not a GitHub repository: use owner\/repo/],
      [['acme/app', 'main', '--forse'], /Unknown option '--forse'/],
      [['acme/app', 'main', '--image', 'API'], /--image "API" is not an image name/],
      [['acme/app', 'main', '--force=yes'], /--force/],
      [['acme/app', 'main', '--url', 'ftp://x'], /--url must start with http:\/\/ or https:\/\//],
    ];
    for (const [args, message] of cases) {
      const run = await dockhook(['build', ...args], withService());
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, /Usage: dockhook build/);
    }
    assert.deepEqual(requests, []);
  });

  it('finds the service: --url over DOCKHOOK_URL over http://127.0.0.1:$PORT', async () => {
    const closed = await freePort();
    const byPort = await dockhook(['build', 'acme/app', 'main'], { API_TOKEN: TOKEN, PORT: String(port) });
    assert.equal(byPort.code, 0, byPort.stderr);
    assert.match(byPort.stdout, new RegExp(`^  http://127\\.0\\.0\\.1:${port}/builds/42$`, 'm'));
    const byFlag = await dockhook(['build', 'acme/app', 'main', '--url', `${url}/`], { API_TOKEN: TOKEN, DOCKHOOK_URL: `http://127.0.0.1:${closed}` });
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.match(byFlag.stdout, new RegExp(`^  ${url.replace(/\./g, '\\.')}/builds/42$`, 'm'), 'no double slash');
    assert.equal(requests.length, 2);
    assert.ok(requests.every((r) => r.url === '/api/builds'));
  });

  it('reads API_TOKEN_FILE and ./.env as dockhook does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockhook-cli-build-env-'));
    const previous = cwd;
    try {
      await writeFile(join(dir, 'token'), `${TOKEN}\n`);
      await writeFile(join(dir, '.env'), `DOCKHOOK_URL=${url}\nAPI_TOKEN_FILE=${join(dir, 'token')}\n`);
      cwd = dir;
      const run = await dockhook(['build', 'acme/app', 'main']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal(requests[0]?.headers.authorization, `Bearer ${TOKEN}`, 'the final newline is not part of the token');
      const both = await dockhook(['build', 'acme/app', 'main'], { API_TOKEN: TOKEN });
      assert.equal(both.code, 2);
      assert.match(both.stderr, /API_TOKEN and API_TOKEN_FILE are both set/);
    } finally {
      cwd = previous;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('dockhook not running: says where it looked, exit 1', async () => {
    const closed = await freePort();
    const run = await dockhook(['build', 'acme/app', 'main'], { API_TOKEN: TOKEN, DOCKHOOK_URL: `http://127.0.0.1:${closed}` });
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`^dockhook build: cannot reach dockhook at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
    assertNoToken(run);
  });
});
