import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { UsageError, parseOptions } from './usage-error.js';
import { readIfThere, writeAtomically } from '../atomic-file.js';

/**
 * PostgreSQL's login for docker-compose.scale.yml, made once, the way
 * init-registry-auth makes the registry's: a random password in DIR/password
 * (the postgres image's POSTGRES_PASSWORD_FILE) and the whole URL in
 * DIR/database-url (dockhook's DATABASE_URL_FILE). Nobody picks or types a
 * database password, and none is printed.
 */

export const PASSWORD_FILE = 'password';
export const URL_FILE = 'database-url';

export const usage = `Usage: dockhook init-db-auth [--dir <dir>] [--user <name>] [--database <name>] [--host <host>] [--port <port>]

Makes PostgreSQL's login once, for docker-compose.scale.yml: a random password
in <dir>/${PASSWORD_FILE} (for the postgres image's POSTGRES_PASSWORD_FILE) and
postgres://<user>:<password>@<host>:<port>/<database> in <dir>/${URL_FILE}
(for dockhook's DATABASE_URL_FILE). Run again, it keeps the password and
rewrites the URL file only if it no longer matches. The password is never
printed.

The postgres image reads the password only when it creates its data
directory. To change it later, change it in PostgreSQL first
(ALTER ROLE <user> PASSWORD '...'), then write it to <dir>/${PASSWORD_FILE}
and run this again.

  --dir       where both files live (default /auth, compose's volume)
  --user      the PostgreSQL role (default dockhook; POSTGRES_USER must match)
  --database  the database (default dockhook; POSTGRES_DB must match)
  --host      where dockhook reaches PostgreSQL (default postgres, the compose service)
  --port      its port (default 5432)`;

/** Names used unquoted in a URL and by the postgres image: keep them plain. */
const NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const HOST = /^[A-Za-z0-9.-]+$/;

export type DbAuthOutcome = 'made both' | 'wrote url' | 'kept both';

const outcomes: Record<DbAuthOutcome, string> = {
  'made both': 'made a new password and the database URL',
  'wrote url': 'wrote the database URL for the password already there',
  'kept both': 'kept the password and database URL already there',
};

export interface DbAuthOptions {
  dir: string;
  user: string;
  database: string;
  host: string;
  port: number;
}

/** Makes what is missing, keeps the password that is there, and keeps the URL file in step with it. */
export async function ensureDatabaseCredentials(o: DbAuthOptions): Promise<DbAuthOutcome> {
  const passwordPath = join(o.dir, PASSWORD_FILE);
  const urlPath = join(o.dir, URL_FILE);
  let password = (await readIfThere(passwordPath))?.replace(/\r?\n$/, '');
  let outcome: DbAuthOutcome = 'wrote url';
  if (!password) {
    // 32 random bytes, URL-safe: nothing a URL, a shell or an env file would need escaped.
    password = randomBytes(32).toString('base64url');
    // Only its owner reads it (dockhook's uid; the postgres image reads it as root before it drops to postgres).
    await writeAtomically(passwordPath, `${password}\n`, 0o600);
    outcome = 'made both';
  }
  const url = `postgres://${o.user}:${encodeURIComponent(password)}@${o.host}:${o.port}/${o.database}`;
  if (outcome !== 'made both' && (await readIfThere(urlPath))?.replace(/\r?\n$/, '') === url) return 'kept both';
  await writeAtomically(urlPath, `${url}\n`, 0o600);
  return outcome;
}

function parse(args: string[]): DbAuthOptions {
  const v = parseOptions(args, {
    dir: { type: 'string' },
    user: { type: 'string' },
    database: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
  });
  const o = { dir: v.dir ?? '/auth', user: v.user ?? 'dockhook', database: v.database ?? 'dockhook', host: v.host ?? 'postgres', port: Number(v.port ?? '5432') };
  if (!NAME.test(o.user)) throw new UsageError(`--user: lowercase letters, digits and _ only, not starting with a digit: ${JSON.stringify(o.user)}`);
  if (!NAME.test(o.database)) throw new UsageError(`--database: lowercase letters, digits and _ only, not starting with a digit: ${JSON.stringify(o.database)}`);
  if (!HOST.test(o.host)) throw new UsageError(`--host: a host name or address, without a scheme or port: ${JSON.stringify(o.host)}`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new UsageError(`--port: a number from 1 to 65535: ${JSON.stringify(v.port)}`);
  return o;
}

export async function run(args: string[]): Promise<number> {
  const o = parse(args);
  try {
    const outcome = await ensureDatabaseCredentials(o);
    process.stdout.write(`init-db-auth: ${outcomes[outcome]} for ${o.user}@${o.host}:${o.port}/${o.database} in ${o.dir}\n`);
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS') process.stderr.write(`init-db-auth: cannot write in ${o.dir} (${code}): mount it writable for this user (uid ${process.getuid?.()})\n`);
    else if (code === 'ENOENT') process.stderr.write(`init-db-auth: ${o.dir} does not exist: create it or mount a volume there\n`);
    else throw err;
    return 1;
  }
}
