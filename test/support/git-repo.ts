import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Environment for every git process the test support starts. The developer's
 * (or CI's) own ~/.gitconfig and /etc/gitconfig must not leak in: a global
 * `commit.gpgsign=true`, `core.autocrlf` or hooks path would make tests behave
 * differently from machine to machine.
 */
export const gitEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};

/** Identity passed with -c so commits do not depend on any config file. */
const identity = ['-c', 'user.name=Dockhook Test', '-c', 'user.email=test@dockhook.invalid', '-c', 'commit.gpgsign=false'];

export interface GitRepo {
  dir: string;
  branch: string;
  /** Sha of the current HEAD commit. */
  head(): string;
  /** Writes (string/Buffer) or deletes (null) files, commits, and returns the new sha. */
  commit(files: Record<string, string | Buffer | null>, message?: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** Runs git in `dir` and returns trimmed stdout. */
export async function git(dir: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', ['-C', dir, ...args], { env: gitEnv, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** Resolves a repo-relative path, refusing anything that would escape the work tree. */
function safeJoin(dir: string, rel: string): string {
  const clean = normalize(rel);
  if (rel === '' || isAbsolute(rel) || clean === '..' || clean.startsWith(`..${sep}`) || clean.split(sep).includes('.git')) {
    throw new Error(`createGitRepo: refusing file path ${JSON.stringify(rel)}`);
  }
  return join(dir, clean);
}

async function applyFiles(dir: string, files: Record<string, string | Buffer | null>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const target = safeJoin(dir, rel);
    if (content === null) {
      await rm(target, { recursive: true, force: true });
    } else {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
  }
}

async function commitAll(dir: string, message: string): Promise<string> {
  await git(dir, ['add', '-A']);
  // --allow-empty: a test may want a fresh sha without changing any file
  // (e.g. to trigger a second build of identical content).
  await git(dir, [...identity, 'commit', '--quiet', '--allow-empty', '--no-verify', '-m', message]);
  return git(dir, ['rev-parse', 'HEAD']);
}

/** Creates a real git repository in a temp dir with `files` as its first commit. */
export async function createGitRepo(
  files: Record<string, string | Buffer>,
  opts: { branch?: string } = {},
): Promise<GitRepo> {
  const branch = opts.branch ?? 'main';
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-repo-'));
  await git(dir, ['init', '--quiet', '-b', branch]);
  await applyFiles(dir, files);
  await commitAll(dir, 'Initial commit');

  return {
    dir,
    branch,
    head: () => execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { env: gitEnv, encoding: 'utf8' }).trim(),
    async commit(changes, message = 'Update files') {
      await applyFiles(dir, changes);
      return commitAll(dir, message);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
