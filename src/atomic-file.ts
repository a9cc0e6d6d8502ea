import { chmod, readFile, rename, writeFile } from 'node:fs/promises';

/** The file's text, or undefined when there is no such file (any other error is thrown). */
export async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Write-then-rename: a reader (a starting dockhook) never sees half a file, and a crash leaves the old one or none. */
export async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode); // the umask may have taken bits writeFile's mode asked for
  await rename(tmp, path);
}
