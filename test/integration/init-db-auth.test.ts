import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';

/**
 * `dockhook init-db-auth`, what docker-compose.scale.yml's one-shot db-auth
 * runs: a subprocess of src/cli.ts with a minimal environment, as
 * cli.test.ts runs the other commands. That the password opens a real
 * PostgreSQL with password auth is shown by the scale rehearsal
 * (test/rehearsal/compose-scale.test.ts), where the postgres image reads it.
 */

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function dockhook(args: string[], cwd: string): Promise<Run> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

describe('dockhook init-db-auth (what docker-compose.scale.yml runs)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockhook-db-auth-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const read = (name: string) => readFile(join(dir, name), 'utf8');
  /** dockhook's view, as compose configures it: the URL only through DATABASE_URL_FILE. */
  const configWith = (env: Record<string, string> = {}) =>
    loadConfig({ WEBHOOK_SECRET: 's3cret-for-the-test', GITHUB_TOKEN: 'ghp_dbauth', REGISTRY: 'localhost:5000', ROLE: 'worker', DATABASE_URL_FILE: join(dir, 'database-url'), ...env });

  it('makes a password and the URL that holds it, 0600 both, printing neither; dockhook takes the URL from DATABASE_URL_FILE', async () => {
    const first = await dockhook(['init-db-auth', '--dir', dir], dir);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `init-db-auth: made a new password and the database URL for dockhook@postgres:5432/dockhook in ${dir}\n`);
    const password = (await read('password')).trimEnd();
    assert.match(password, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.equal(await read('database-url'), `postgres://dockhook:${password}@postgres:5432/dockhook\n`);
    for (const f of ['password', 'database-url']) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f);
    assert.ok(!first.stdout.includes(password) && !first.stderr.includes(password));

    const config = configWith();
    assert.equal(config.databaseUrl, `postgres://dockhook:${password}@postgres:5432/dockhook`);
    assert.equal(config.role, 'worker');
    // A DATABASE_URL left in .env as well is refused, as for the other *_FILE settings.
    assert.throws(() => configWith({ DATABASE_URL: 'postgres://x:y@h/d' }), /DATABASE_URL and DATABASE_URL_FILE are both set/);
  });

  it('keeps both at the next start; a changed host or password file rewrites only the URL', async () => {
    const password = await read('password');
    const url = await read('database-url');
    const again = await dockhook(['init-db-auth', '--dir', dir], dir);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /kept the password and database URL already there/);
    assert.equal(await read('password'), password);
    assert.equal(await read('database-url'), url);

    const moved = await dockhook(['init-db-auth', '--dir', dir, '--host', 'db.lan', '--port', '6432', '--database', 'builds'], dir);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /wrote the database URL for the password already there for dockhook@db\.lan:6432\/builds/);
    assert.equal(await read('password'), password, 'the password is the truth: never replaced');
    assert.equal(await read('database-url'), `postgres://dockhook:${password.trimEnd()}@db.lan:6432/builds\n`);

    await writeFile(join(dir, 'password'), 'chosen-by-a-person\n');
    const chosen = await dockhook(['init-db-auth', '--dir', dir], dir);
    assert.equal(chosen.code, 0, chosen.stderr);
    assert.equal(configWith().databaseUrl, 'postgres://dockhook:chosen-by-a-person@postgres:5432/dockhook');
  });

  it('refuses names that would need quoting, and says what is wrong with the folder', async () => {
    const badUser = await dockhook(['init-db-auth', '--dir', dir, '--user', 'Dock Hook'], dir);
    assert.equal(badUser.code, 2);
    assert.match(badUser.stderr, /--user: lowercase letters, digits and _ only/);
    const badPort = await dockhook(['init-db-auth', '--dir', dir, '--port', '99999'], dir);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--port: a number from 1 to 65535/);
    const missing = await dockhook(['init-db-auth', '--dir', join(dir, 'nope')], dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist: create it or mount a volume there/);
    const help = await dockhook(['init-db-auth', '--help'], dir);
    assert.match(help.stdout, /^Usage: dockhook init-db-auth/);
    const top = await dockhook(['--help'], dir);
    assert.match(top.stdout, /^ {2}init-db-auth +make PostgreSQL's password/m);
  });
});
