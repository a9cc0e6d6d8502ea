import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { readIfThere, writeAtomically } from '../atomic-file.js';

/**
 * The registry's login, made once for docker-compose: a random password in
 * DIR/password (what dockhook reads through REGISTRY_PASSWORD_FILE) and its
 * bcrypt entry in DIR/htpasswd (what the registry reads). A person then fills
 * in no registry password at all, and none is ever printed.
 */

export const PASSWORD_FILE = 'password';
export const HTPASSWD_FILE = 'htpasswd';

/** Cost 10, as make-htpasswd.sh uses: htpasswd's default of 5 is quick to brute-force. */
const BCRYPT_COST = 10;

/** What a run changed: both files, only htpasswd (the password file was there), or nothing. */
export type CredentialsOutcome = 'made both' | 'wrote htpasswd' | 'kept both';

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

function htpasswdLine(user: string, password: string): string {
  return `${user}:${bcrypt.hashSync(password, BCRYPT_COST)}\n`;
}

/**
 * Makes what is missing and keeps what is there, so it can run at every
 * `docker compose up`. The password file is the truth: if the htpasswd entry
 * for USER does not match it (someone wrote a new password there), the entry
 * is replaced and other users' lines are kept. An htpasswd without a password
 * file is not ours to replace: that is an error saying what to do.
 */
export async function ensureRegistryCredentials(dir: string, user: string): Promise<CredentialsOutcome> {
  if (!/^[^:\s]+$/.test(user)) throw new CredentialsError(`the registry user name may not be empty or contain ':' or spaces: ${JSON.stringify(user)}`);
  const passwordPath = join(dir, PASSWORD_FILE);
  const htpasswdPath = join(dir, HTPASSWD_FILE);
  const [passwordFile, htpasswd] = await Promise.all([readIfThere(passwordPath), readIfThere(htpasswdPath)]);
  let password = passwordFile?.replace(/\r?\n$/, '');

  if (!password && htpasswd !== undefined) {
    throw new CredentialsError(
      `${htpasswdPath} exists but ${passwordPath} does not (or is empty), so dockhook cannot know the password: write it to ${passwordPath}, or delete ${htpasswdPath} to make new credentials`,
    );
  }
  let outcome: CredentialsOutcome = 'wrote htpasswd';
  if (!password) {
    // 32 random bytes, URL-safe: nothing a shell, an env file or Basic auth would need quoted.
    password = randomBytes(32).toString('base64url');
    // Only its owner (dockhook's user) reads it; the registry reads htpasswd only.
    await writeAtomically(passwordPath, `${password}\n`, 0o600);
    outcome = 'made both';
  }

  // A new password means there was no htpasswd (that case threw above), so only an existing pair is compared.
  const lines = (htpasswd ?? '').split('\n').filter((line) => line.trim() !== '');
  const entry = lines.find((line) => line.startsWith(`${user}:`));
  if (entry !== undefined && bcrypt.compareSync(password, entry.slice(user.length + 1))) return 'kept both';
  const others = lines.filter((line) => line !== entry);
  // World-readable like any htpasswd file: it holds hashes, and the registry may run as another user.
  await writeAtomically(htpasswdPath, [...others, htpasswdLine(user, password)].join('\n'), 0o644);
  return outcome;
}
