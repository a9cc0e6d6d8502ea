import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

/**
 * A real PostgreSQL server for tests: Debian's `postgresql` package (newest
 * /usr/lib/postgresql/<ver>/bin), its own cluster in a fresh temp folder,
 * listening on 127.0.0.1 on a free port, with its unix socket inside that
 * folder. It never uses or touches the cluster Debian's postinst may have
 * started on 5432.
 *
 * - PostgreSQL refuses to run as root, so as root every binary runs as the
 *   `postgres` system user (`runuser -u postgres --`); as another user it
 *   runs as that user.
 * - Auth is trust (local and 127.0.0.1), so any password works; the role
 *   `dockhook` still gets the password `secret-pw` so URLs look like real
 *   ones (and code that needs a password in the URL has one).
 * - fsync, synchronous_commit and full_page_writes are off: the data is
 *   throwaway, and that makes initdb/CREATE DATABASE fast.
 * - One server serves many tests: createDatabase() gives each its own DB.
 * - Cleanup: destroy(). Anything not destroyed (sharedPostgres() never is) is
 *   killed and deleted by a synchronous process 'exit' handler. A process
 *   that dies without running it (SIGKILL) leaves its folder and server
 *   behind; the next startPostgres() sweeps those (their owner pid is gone).
 */
export interface TestPostgres {
  /** postgres://dockhook:secret-pw@127.0.0.1:PORT/dockhook */
  url: string;
  port: number;
  /** A fresh database (a unique name when none is given); resolves to its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Fast shutdown (pg_ctl -m fast); start() brings it back on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop() and delete the temp folder. */
  destroy(): Promise<void>;
}

const ROLE = 'dockhook';
const PASSWORD = 'secret-pw';
const PREFIX = 'dockhook-pg-';

interface Cluster {
  dir: string;
  bin: string;
  asUser: string[];
}

const live = new Set<Cluster>();
process.once('exit', () => {
  for (const c of live) killSync(c);
});

/** The newest installed version's bin folder. */
async function binDir(): Promise<string> {
  const base = '/usr/lib/postgresql';
  const versions = (await readdir(base).catch(() => [] as string[]))
    .filter((v) => existsSync(join(base, v, 'bin/initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error(`no PostgreSQL server in ${base}/<version>/bin: apt-get install postgresql (or bash scripts/ensure-docker.sh)`);
  return join(base, versions[0], 'bin');
}

/** How to run a PostgreSQL binary: as `postgres` when we are root, which it must not run as. */
async function runAs(): Promise<{ asUser: string[]; owner?: { uid: number; gid: number } }> {
  if (process.getuid?.() !== 0) return { asUser: [] };
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout);
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout);
    return { asUser: ['runuser', '-u', 'postgres', '--'], owner: { uid, gid } };
  } catch {
    throw new Error('PostgreSQL cannot run as root and there is no `postgres` user to run it as: apt-get install postgresql');
  }
}

function pgRun(c: Cluster, tool: string, args: string[]): Promise<unknown> {
  const [cmd, ...pre] = [...c.asUser, join(c.bin, tool)];
  // cwd: the postgres user may not be allowed into ours.
  return run(cmd!, [...pre, ...args], { cwd: c.dir });
}

async function pgCtl(c: Cluster, args: string[]): Promise<void> {
  try {
    await pgRun(c, 'pg_ctl', ['-D', join(c.dir, 'data'), ...args]);
  } catch (err) {
    const log = await readFile(join(c.dir, 'log'), 'utf8').catch(() => '');
    throw new Error(`pg_ctl ${args.join(' ')} failed: ${(err as Error).message}\n--- server log (tail) ---\n${log.split('\n').slice(-20).join('\n')}`);
  }
}

/** pg_ctl -w waits until the server accepts connections (or 60 s). */
const startCluster = (c: Cluster) => pgCtl(c, ['-l', join(c.dir, 'log'), '-w', '-t', '60', 'start']);
const stopCluster = (c: Cluster, mode: string) => pgCtl(c, ['-m', mode, '-w', '-t', '60', 'stop']);

function killSync(c: Cluster): void {
  live.delete(c);
  if (existsSync(join(c.dir, 'data/postmaster.pid'))) {
    const [cmd, ...pre] = [...c.asUser, join(c.bin, 'pg_ctl')];
    try {
      execFileSync(cmd!, [...pre, '-D', join(c.dir, 'data'), '-m', 'immediate', '-w', 'stop'], { cwd: '/', stdio: 'ignore' });
    } catch {
      // already stopped
    }
  }
  rmSync(c.dir, { recursive: true, force: true });
}

/** Folders of test processes that died without their exit handler: stop their server and delete them. */
async function sweepOrphans(bin: string, asUser: string[]): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => NaN));
    if (!owner || isAlive(owner)) continue;
    killSync({ dir, bin, asUser });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = await binDir();
  const { asUser, owner } = await runAs();
  await sweepOrphans(bin, asUser);
  const dir = await mkdtemp(join(tmpdir(), PREFIX));
  const c: Cluster = { dir, bin, asUser };
  live.add(c);
  try {
    await writeFile(join(dir, 'owner.pid'), String(process.pid));
    await mkdir(join(dir, 'sock'));
    await writeFile(join(dir, 'pwfile'), `${PASSWORD}\n`);
    if (owner) for (const p of [dir, join(dir, 'sock'), join(dir, 'pwfile')]) await chown(p, owner.uid, owner.gid);
    // The superuser is `dockhook` (so createDatabase needs no second role); --no-sync: throwaway data.
    await pgRun(c, 'initdb', ['-D', join(dir, 'data'), '-U', ROLE, `--pwfile=${join(dir, 'pwfile')}`, '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    const port = await freePort();
    const conf = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${join(dir, 'sock')}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
    ];
    await writeFile(join(dir, 'data/postgresql.conf'), `${await readFile(join(dir, 'data/postgresql.conf'), 'utf8')}\n# dockhook test server\n${conf.join('\n')}\n`);
    await startCluster(c);
    const urlFor = (db: string) => `postgres://${ROLE}:${PASSWORD}@127.0.0.1:${port}/${db}`;
    await query(urlFor('postgres'), `CREATE DATABASE ${ROLE}`);
    return {
      url: urlFor(ROLE),
      port,
      async createDatabase(name = `t_${randomBytes(6).toString('hex')}`) {
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`createDatabase: ${JSON.stringify(name)} is not a plain lower-case identifier`);
        await query(urlFor('postgres'), `CREATE DATABASE ${name}`);
        return urlFor(name);
      },
      stop: () => stopCluster(c, 'fast'),
      start: () => startCluster(c),
      async destroy() {
        live.delete(c);
        if (existsSync(join(dir, 'data/postmaster.pid'))) await stopCluster(c, 'fast');
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    killSync(c);
    throw err;
  }
}

async function query(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let shared: Promise<TestPostgres> | undefined;

/** One server per test process, for tests that only need databases (not stop/start: use startPostgres() for those). Never destroy it; the exit handler does. */
export function sharedPostgres(): Promise<TestPostgres> {
  shared ??= startPostgres().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}
