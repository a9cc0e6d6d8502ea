import { execFile, spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureBusyboxImage } from './base-image.js';

const run = promisify(execFile);

/**
 * A second real dockerd beside the first (the one scripts/ensure-docker.sh
 * starts), to act as a second build host. Every path and name of it differs
 * from the first's, or the two break each other:
 *
 * - data-root, exec-root, pidfile, socket and an empty --config-file (so an
 *   /etc/docker/daemon.json meant for the first is not read);
 * - containerd namespaces: without them both daemons would keep their
 *   containers and plugins in the same namespace of a shared system containerd;
 * - its own bridge dh2br0 (172.31.250.1/24) given with -b: RUN steps need a
 *   bridge network, and the alternative, --bip, would re-address the bridge
 *   it finds, the first engine's docker0. --iptables=false leaves the first's
 *   rules alone (the builds here need no network).
 *
 * It runs detached from the test process, so a later test file (a later
 * process) finds it answering and reuses it; nothing stops it. Its data-root
 * stays under ROOT across runs, which keeps busybox:latest and build caches
 * (later runs are faster). Stop it by hand with `kill $(cat /run/dh2.pid)`;
 * to start from nothing, then also `umount` the data-root (dockerd
 * bind-mounts it onto itself and leaves that mount) and delete ROOT.
 * Needs root (it is a dockerd, and it adds a network link).
 */
export interface SecondEngine {
  socketPath: string;
  /** unix://<socketPath>, for DOCKER_HOST. */
  dockerHost: string;
  docker: Docker;
}

const ROOT = '/var/lib/dockhook-test-engine2';
const EXEC_ROOT = '/run/dh2'; // short: containerd's socket paths under it must fit in 108 bytes
// In /run, which a reboot empties: a stale pid or socket in /var/lib could outlive the daemon.
const SOCKET = '/run/dh2.sock';
const PIDFILE = '/run/dh2.pid';
const LOG = `${ROOT}/dockerd.log`;
const BRIDGE = 'dh2br0';
const BRIDGE_ADDR = '172.31.250.1/24';
const READY_TIMEOUT_MS = 60_000;

let pending: Promise<SecondEngine> | undefined;

/** Memoised per process; makes sure the engine answers and has busybox:latest. */
export function ensureSecondEngine(): Promise<SecondEngine> {
  pending ??= ensure().catch((err: unknown) => {
    pending = undefined; // let a later call try again
    throw err;
  });
  return pending;
}

/**
 * Stops the second dockerd as a host shutdown would (SIGTERM: it stops its
 * containers) and starts it again: what `systemctl restart docker` does to
 * a deployed service. Containers with restart policy unless-stopped that
 * were running come back; stopped ones and policy `no` do not.
 */
export async function restartSecondEngine(): Promise<SecondEngine> {
  const pid = Number((await readFile(PIDFILE, 'utf8')).trim());
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (await daemonRunning()) {
    if (Date.now() > deadline) throw new Error(`the second dockerd (pid ${pid}) did not stop within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  pending = undefined;
  return ensureSecondEngine();
}

async function ensure(): Promise<SecondEngine> {
  const docker = new Docker({ socketPath: SOCKET });
  if (!(await answers(docker))) {
    if (process.getuid?.() !== 0) throw new Error('the second engine is a dockerd of its own: run the tests as root');
    await ensureBridge();
    // Another test process may have started it a moment ago: then only wait for it.
    const started = (await daemonRunning()) ? undefined : await startDaemon();
    await waitUntilAnswering(docker, started);
  }
  const dockerHost = `unix://${SOCKET}`;
  await ensureBusyboxImage('busybox:latest', dockerHost);
  return { socketPath: SOCKET, dockerHost, docker };
}

async function answers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

/** ip link/addr add fail when the bridge or address exists (a previous run, or another process now), so check after each. */
async function ensureBridge(): Promise<void> {
  const ip = (...args: string[]) => run('ip', args).then((r) => r.stdout);
  const exists = () => ip('link', 'show', BRIDGE).then(() => true, () => false);
  if (!(await exists())) await ip('link', 'add', BRIDGE, 'type', 'bridge').catch(async (err: Error) => {
    if (!(await exists())) throw err;
  });
  const hasAddr = async () => (await ip('-4', 'addr', 'show', 'dev', BRIDGE)).includes(`inet ${BRIDGE_ADDR} `);
  if (!(await hasAddr())) await ip('addr', 'add', BRIDGE_ADDR, 'dev', BRIDGE).catch(async (err: Error) => {
    if (!(await hasAddr())) throw err;
  });
  await ip('link', 'set', BRIDGE, 'up');
}

/** A dockerd of ours is alive if the pid in our pidfile is a dockerd. */
async function daemonRunning(): Promise<boolean> {
  try {
    const pid = (await readFile(PIDFILE, 'utf8')).trim();
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() === 'dockerd';
  } catch {
    return false;
  }
}

/** Resolves to a getter of why the dockerd we started has gone, if it has. */
async function startDaemon(): Promise<() => string | undefined> {
  await mkdir(ROOT, { recursive: true });
  await writeFile(`${ROOT}/daemon.json`, '{}\n');
  const args = [
    '--data-root', `${ROOT}/data`,
    '--exec-root', EXEC_ROOT,
    '--pidfile', PIDFILE,
    '-H', `unix://${SOCKET}`,
    '--config-file', `${ROOT}/daemon.json`,
    '--containerd-namespace', 'dockhook-engine2',
    '--containerd-plugins-namespace', 'dockhook-engine2-plugins',
    '--iptables=false',
    '-b', BRIDGE,
  ];
  // Appended to across runs (the log of an earlier start may explain a later failure), but not without end.
  const size = (await stat(LOG).catch(() => undefined))?.size ?? 0;
  const log = openSync(LOG, size > 4_000_000 ? 'w' : 'a');
  try {
    await writeFile(LOG, `--- ${new Date().toISOString()} dockerd ${args.join(' ')}\n`, { flag: 'a' });
    // Detached, its own session and output: it outlives this test process on purpose.
    const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] });
    let gone: string | undefined;
    child.once('error', (err) => (gone = `could not be run (${err.message})`));
    child.once('exit', (code, signal) => (gone ??= `exited (${signal ?? code})`));
    child.unref();
    return () => gone;
  } finally {
    closeSync(log);
  }
}

/** Polls /_ping. Ours exiting is fatal unless another process's dockerd holds the pidfile (it won the race; wait for that one). */
async function waitUntilAnswering(docker: Docker, gone?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let why = `did not answer on ${SOCKET} within ${READY_TIMEOUT_MS / 1000} s`;
  while (Date.now() < deadline) {
    if (await answers(docker)) return;
    const exited = gone?.();
    if (exited && !(await daemonRunning())) {
      why = exited;
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = (await readFile(LOG, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');
  throw new Error(`the second dockerd ${why}; ${LOG} ends:\n${tail}`);
}
