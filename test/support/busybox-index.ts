import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureArm64BusyboxImage } from './arm64-busybox.js';
import { ensureBusyboxImage } from './base-image.js';
import { pushTestManifestList } from './registry-server.js';

const execFileAsync = promisify(execFile);

async function docker(...args: string[]): Promise<string> {
  return (await execFileAsync('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/**
 * Puts a two-platform `busybox` into a test registry, as Docker Hub's would
 * be: the amd64 image made from the host's /bin/busybox (base-image.ts) and
 * the arm64 one from Debian's busybox-static:arm64 (arm64-busybox.ts), each
 * pushed under its own tag, then a manifest list naming both under `tag`.
 * A Dockerfile `FROM ${DOCKHOOK_REGISTRY}/busybox:<tag>` then resolves on
 * either platform, with nothing from Docker Hub. Returns the list's digest.
 * Uses the docker CLI and plain HTTP, none of dockhook's own code.
 */
export async function pushBusyboxIndex(registry: { host: string; url: string }, tag = 'multi', name = 'busybox'): Promise<string> {
  await ensureBusyboxImage();
  const arm64 = await ensureArm64BusyboxImage();
  const platforms = [
    { local: 'busybox:latest', tag: `${tag}-amd64`, platform: { os: 'linux', architecture: 'amd64' } },
    { local: arm64, tag: `${tag}-arm64`, platform: { os: 'linux', architecture: 'arm64' } },
  ];
  for (const p of platforms) {
    const ref = `${registry.host}/${name}:${p.tag}`;
    await docker('tag', p.local, ref);
    await docker('push', ref);
    await docker('rmi', ref);
  }
  return pushTestManifestList(registry.url, name, tag, platforms.map((p) => ({ reference: p.tag, platform: p.platform })));
}
