import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureBusyboxImage } from './base-image.js';
import { pipeCommands, stopProcess } from './processes.js';

const run = promisify(execFile);
const READY_TIMEOUT_MS = 20_000;

/**
 * A real Podman engine for tests: Debian's podman running
 * `podman system service` on a socket in a temp dir, the way rootless and
 * RHEL/Fedora users run it. Everything it keeps is in that temp dir (its own
 * storage, run root and libpod tmpdir), so it never touches the machine's
 * podman images and is gone after close().
 *
 * - No systemd here: `--cgroup-manager=cgroupfs --events-backend=file`
 *   (podman otherwise tries systemd's cgroups and the journal).
 * - The registries are plain HTTP on 127.0.0.1, which podman (unlike dockerd)
 *   only talks to when they are marked insecure: a registries.conf of the
 *   test's own, given through CONTAINERS_REGISTRIES_CONF, so /etc stays
 *   untouched. It also has no search registries, so `FROM busybox` can only
 *   mean the local image and never waits on Docker Hub.
 * - The base image: the docker engine's busybox:latest (base-image.ts),
 *   `docker save | podman load`, so both engines build from the same image.
 */
export interface TestPodman {
  socketPath: string;
  /** Its version, as `podman --version` prints it (4.3.1). */
  version: string;
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startPodman(opts: { insecureRegistries: string[] }): Promise<TestPodman> {
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-podman-'));
  const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') };
  // Global flags of every podman command here: the service and the CLI must see the same storage.
  const flags = [
    '--root', join(dir, 'root'),
    '--runroot', join(dir, 'run'),
    '--tmpdir', join(dir, 'libpod'),
    '--cgroup-manager=cgroupfs',
    '--events-backend=file',
  ];
  await writeFile(
    env.CONTAINERS_REGISTRIES_CONF,
    ['unqualified-search-registries = []', ...opts.insecureRegistries.flatMap((r) => ['', '[[registry]]', `location = ${JSON.stringify(r)}`, 'insecure = true'])].join('\n') + '\n',
  );
  let child: ChildProcess | undefined;
  try {
    const { stdout } = await run('podman', ['--version']).catch((err: Error) => {
      throw new Error(`podman is not usable (${err.message.split('\n')[0]}); install Debian's podman (bash scripts/ensure-docker.sh)`);
    });
    const version = /(\d+\.\d+\.\d+\S*)/.exec(stdout)?.[1] ?? stdout.trim();
    await loadBusybox(flags, env);
    const socketPath = join(dir, 'podman.sock');
    child = spawn('podman', [...flags, 'system', 'service', '--time=0', `unix://${socketPath}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    await waitForSocket(child, socketPath);
    const service = child;
    return {
      socketPath,
      version,
      async close() {
        await stopProcess(service);
        await cleanUp(dir);
      },
    };
  } catch (err) {
    if (child) await stopProcess(child);
    await cleanUp(dir);
    throw err;
  }
}

async function loadBusybox(flags: string[], env: NodeJS.ProcessEnv): Promise<void> {
  await ensureBusyboxImage();
  await pipeCommands({ cmd: 'docker', args: ['save', 'busybox:latest'] }, { cmd: 'podman', args: [...flags, 'load'], env }, 'docker save busybox:latest | podman load');
}

/** Resolves once GET /_ping answers on the socket; rejects with podman's output if it exits first. */
async function waitForSocket(child: ChildProcess, socketPath: string): Promise<void> {
  let output = '';
  child.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-4000)));
  let exited: string | undefined;
  child.once('error', (err) => (exited = `could not run podman: ${err.message}`));
  child.once('exit', (code, signal) => {
    live.delete(child);
    exited ??= `podman system service exited (${signal ?? code}):\n${output}`;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(exited);
    if (await ping(socketPath)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`podman system service did not answer on ${socketPath} within ${READY_TIMEOUT_MS / 1000} s:\n${output}`);
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}


/** Podman's overlay driver leaves mounts in its storage (its own home is one): unmount, deepest first, then delete. */
async function cleanUp(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
