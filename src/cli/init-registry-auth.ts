import { CredentialsError, HTPASSWD_FILE, PASSWORD_FILE, ensureRegistryCredentials } from '../registry/credentials-files.js';
import { parseOptions } from './usage-error.js';

export const usage = `Usage: dockhook init-registry-auth [--dir <dir>] [--user <name>]

Makes the registry's login once, so nobody has to choose or type it:
a random password in <dir>/${PASSWORD_FILE} (for dockhook's
REGISTRY_PASSWORD_FILE) and its bcrypt entry in <dir>/${HTPASSWD_FILE} (for the
registry's REGISTRY_AUTH_HTPASSWD_PATH). Run again, it keeps both; if the
password file was changed, it rewrites the user's htpasswd entry to match.
docker-compose.yml runs it as the one-shot service registry-auth. The
password is never printed; to log in to the registry from this machine:

  docker compose exec dockhook cat /auth/password | docker login localhost:5000 -u dockhook --password-stdin

  --dir   where both files live (default /auth, compose's volume)
  --user  the registry user name (default dockhook; REGISTRY_USERNAME must match)`;

const outcomes = {
  'made both': 'made a new password and its htpasswd entry',
  'wrote htpasswd': 'wrote the htpasswd entry for the password already there',
  'kept both': 'kept the password and htpasswd already there',
} as const;

export async function run(args: string[]): Promise<number> {
  const v = parseOptions(args, { dir: { type: 'string' }, user: { type: 'string' } });
  const dir = v.dir ?? '/auth';
  const user = v.user ?? 'dockhook';
  try {
    const outcome = await ensureRegistryCredentials(dir, user);
    process.stdout.write(`init-registry-auth: ${outcomes[outcome]} for user ${user} in ${dir}\n`);
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof CredentialsError) process.stderr.write(`init-registry-auth: ${err.message}\n`);
    else if (code === 'EACCES' || code === 'EROFS') process.stderr.write(`init-registry-auth: cannot write in ${dir} (${code}): mount it writable for this user (uid ${process.getuid?.()})\n`);
    else if (code === 'ENOENT') process.stderr.write(`init-registry-auth: ${dir} does not exist: create it or mount a volume there\n`);
    else throw err;
    return 1;
  }
}
