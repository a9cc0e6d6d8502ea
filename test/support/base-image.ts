import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pipeCommands } from './processes.js';

const execFileAsync = promisify(execFile);
const IMAGE = 'busybox:latest';
const BUSYBOX = '/bin/busybox'; // Debian's busybox-static: one static binary, no libraries needed

/**
 * Makes sure `busybox:latest` exists in the local Docker engine, so test
 * Dockerfiles can say `FROM busybox`. Nothing can be pulled from Docker Hub
 * here, so when it is missing it is built from the host's static busybox with
 * `docker import`. Memoised per process; across processes a race only means two
 * equivalent imports, the last of which keeps the tag.
 */
const pending = new Map<string, Promise<void>>();

/**
 * `image` exists for the unit test of this helper, which must not touch the
 * shared busybox:latest; `dockerHost` (unix://...) for an engine other than
 * the default one (second-engine.ts).
 */
export function ensureBusyboxImage(image = IMAGE, dockerHost?: string): Promise<void> {
  const key = `${dockerHost ?? ''} ${image}`;
  let p = pending.get(key);
  if (!p) {
    const env = dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env;
    p = ensure(image, env).catch((err: unknown) => {
      pending.delete(key); // let a later call try again
      throw err;
    });
    pending.set(key, p);
  }
  return p;
}

async function imageExists(image: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await execFileAsync('docker', ['image', 'inspect', image], { env });
    return true;
  } catch {
    return false;
  }
}

async function ensure(image: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (await imageExists(image, env)) return;
  const root = await mkdtemp(join(tmpdir(), 'dockhook-busybox-'));
  try {
    await buildRootfs(root);
    await importRootfs(root, image, env);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function buildRootfs(root: string): Promise<void> {
  for (const d of ['bin', 'etc', 'root', 'tmp', 'var', 'proc', 'sys', 'dev']) await mkdir(join(root, d));
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  // Link every applet this busybox has (sh, cat, wget, ...), not a guessed list.
  const { stdout } = await execFileAsync(BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (applet && applet !== 'busybox' && !applet.includes('/')) await symlink('busybox', join(root, 'bin', applet));
  }
  // Users, so that `USER nobody` and `id` work in test Dockerfiles.
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n');
}

/** tar the rootfs (owned by root) and pipe it into `docker import`. */
function importRootfs(root: string, image: string, env: NodeJS.ProcessEnv): Promise<void> {
  return pipeCommands(
    { cmd: 'tar', args: ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'] },
    { cmd: 'docker', args: ['import', '-c', 'CMD ["/bin/sh"]', '-', image], env },
    `docker import of ${image}`,
  );
}
