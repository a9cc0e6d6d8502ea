import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-fs';

const execFileAsync = promisify(execFile);

export const ARM64_BUSYBOX_IMAGE = 'dockhook-test/busybox:arm64';
/** Where the downloaded .deb stays between runs, so a rerun downloads nothing. */
export const DEB_CACHE = '/var/cache/dockhook-test';

/**
 * Makes sure the local engine has `dockhook-test/busybox:arm64`, a linux/arm64
 * image of Debian's busybox-static:arm64 (one static binary), and returns its
 * name. Nothing can be pulled from Docker Hub here, so it is built: the .deb
 * is fetched with apt (`dpkg --add-architecture arm64` and `apt-get update`
 * first, only when apt does not know the package yet; needs root), unpacked
 * with `dpkg-deb -x`, and built `FROM scratch` with platform=linux/arm64. Its
 * RUN step (busybox --install) is an arm64 binary, so the build also needs the
 * QEMU handler scripts/ensure-docker.sh enables. Memoised per process;
 * idempotent across processes (an image already there for arm64 is kept).
 */
let pending: Promise<string> | undefined;

export function ensureArm64BusyboxImage(docker = new Docker()): Promise<string> {
  pending ??= ensure(docker).catch((err: unknown) => {
    pending = undefined; // let a later call try again
    throw err;
  });
  return pending;
}

async function ensure(docker: Docker): Promise<string> {
  try {
    const info = await docker.getImage(ARM64_BUSYBOX_IMAGE).inspect();
    if (info.Architecture === 'arm64' && info.Os === 'linux') return ARM64_BUSYBOX_IMAGE;
  } catch {
    // not there yet
  }
  const deb = await cachedDeb();
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-arm64-busybox-'));
  try {
    await execFileAsync('dpkg-deb', ['-x', deb, join(dir, 'root')]);
    const context = join(dir, 'context');
    await mkdir(context);
    await copyFile(join(dir, 'root/bin/busybox'), join(context, 'busybox'));
    await chmod(join(context, 'busybox'), 0o755);
    // Users as in base-image.ts's amd64 busybox, so `USER nobody` and `id` work.
    await writeFile(join(context, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
    await writeFile(join(context, 'group'), 'root:x:0:\nnobody:x:65534:\n');
    await writeFile(join(context, 'Dockerfile'), [
      'FROM scratch',
      'COPY busybox /bin/busybox',
      'COPY passwd group /etc/',
      // An arm64 binary: runs under QEMU on an amd64 engine.
      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /root /var && chmod 1777 /tmp"]',
      'CMD ["/bin/sh"]',
      '',
    ].join('\n'));
    const stream = await docker.buildImage(pack(context) as unknown as NodeJS.ReadableStream, { t: ARM64_BUSYBOX_IMAGE, platform: 'linux/arm64', rm: true, forcerm: true, version: '1' });
    await followBuild(docker, stream);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const info = await docker.getImage(ARM64_BUSYBOX_IMAGE).inspect();
  if (info.Architecture !== 'arm64') throw new Error(`${ARM64_BUSYBOX_IMAGE} was built for ${info.Os}/${info.Architecture}, not linux/arm64`);
  return ARM64_BUSYBOX_IMAGE;
}

/** Follows a build's JSON stream; rejects with the engine's error line (e.g. exec format error without QEMU). */
function followBuild(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(new Error(`building ${ARM64_BUSYBOX_IMAGE}: ${err.message}\n${log}`)) : resolve()),
      (event: { stream?: string; error?: string }) => {
        if (event.stream) log += event.stream;
        if (event.error) log += event.error;
      },
    );
  });
}

async function findDeb(): Promise<string | undefined> {
  const names = await readdir(DEB_CACHE).catch(() => [] as string[]);
  const deb = names.filter((n) => /^busybox-static_.*_arm64\.deb$/.test(n)).sort().at(-1);
  return deb ? join(DEB_CACHE, deb) : undefined;
}

/** busybox-static_<version>_arm64.deb in DEB_CACHE, fetched once. */
async function cachedDeb(): Promise<string> {
  const cached = await findDeb();
  if (cached) return cached;
  if (process.getuid?.() !== 0) {
    throw new Error(`no busybox-static arm64 .deb in ${DEB_CACHE}, and fetching one needs root (dpkg --add-architecture arm64; apt-get update; apt-get download busybox-static:arm64)`);
  }
  const { stdout: foreign } = await execFileAsync('dpkg', ['--print-foreign-architectures']);
  if (!foreign.split('\n').includes('arm64')) await execFileAsync('dpkg', ['--add-architecture', 'arm64']);
  const known = await execFileAsync('apt-cache', ['show', 'busybox-static:arm64']).then(() => true, () => false);
  if (!known) await execFileAsync('apt-get', ['update', '-qq'], { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  await mkdir(DEB_CACHE, { recursive: true });
  // Downloaded into a folder of its own, then moved: a run cut short leaves no half .deb to find.
  const partial = await mkdtemp(join(DEB_CACHE, 'download-'));
  try {
    await execFileAsync('apt-get', ['download', '-qq', 'busybox-static:arm64'], { cwd: partial });
    const [name] = (await readdir(partial)).filter((n) => n.endsWith('.deb'));
    if (!name) throw new Error('apt-get download busybox-static:arm64 wrote no .deb');
    // apt names it busybox-static_1%3a1.35.0-4+b3_arm64.deb; keep the name, it sorts by version well enough.
    await rename(join(partial, name), join(DEB_CACHE, name));
    return join(DEB_CACHE, name);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}
