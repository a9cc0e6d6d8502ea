import { access, readFile, readdir } from 'node:fs/promises';
import type Docker from 'dockerode';
import { isValidPlatform } from '../registry/image-index.js';

/**
 * Which platforms (OCI strings: linux/amd64, linux/arm64, linux/arm/v7) the
 * engine can run RUN steps and containers for: its own, plus those the host
 * kernel runs under QEMU through binfmt_misc.
 *
 * Only the kernel's binfmt_misc entries count, not what a package installed:
 * an entry works for containers when it is enabled and carries the F flag
 * (the kernel opened the interpreter when it was registered). Without F the
 * kernel looks the interpreter up inside the container at each exec, where
 * it is not, so such an entry is listed as unusable.
 *
 * The host's /proc tells about the engine only when both are on one machine:
 * for a remote engine (DOCKER_HOST tcp://other-host, ssh://) or when dockhook
 * itself runs in a container without the host's binfmt_misc, `emulated` is
 * 'unknown', never a guess.
 */

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

export interface RunnablePlatforms {
  /** The engine's own platform, e.g. linux/amd64. */
  native: string;
  /** The engine's architecture as it names it (x86_64, aarch64; Podman says amd64). */
  architecture: string;
  /** Platforms run under QEMU, sorted; 'unknown' when this host's binfmt_misc says nothing about the engine. */
  emulated: string[] | 'unknown';
  /** Why some emulation is missing or cannot be known, sentences joined by '; '. */
  problems?: string;
  /** binfmt_misc's state here: not mounted, or mounted (undefined when emulated is 'unknown' for another reason). */
  binfmt?: 'mounted' | 'not mounted';
  /** Foreign platforms whose handler is registered but cannot serve containers, with why. */
  unusable?: Record<string, string>;
}

/** One file of /proc/sys/fs/binfmt_misc, as the kernel prints it. */
export interface BinfmtEntry {
  /** The file's name: qemu-aarch64. */
  name: string;
  enabled: boolean;
  interpreter?: string;
  /** The flags line's letters (P, O, C, F), '' when none. */
  flags: string;
}

/** QEMU's architecture names (qemu-<arch>) and the platforms each runs. */
const QEMU_PLATFORMS: Record<string, string[]> = {
  x86_64: ['linux/amd64'],
  i386: ['linux/386'],
  aarch64: ['linux/arm64'],
  arm: ['linux/arm/v7', 'linux/arm/v6'],
  riscv64: ['linux/riscv64'],
  ppc64le: ['linux/ppc64le'],
  s390x: ['linux/s390x'],
  mips64el: ['linux/mips64le'],
  mips64: ['linux/mips64'],
  loongarch64: ['linux/loong64'],
};

/** Architecture names engines report (uname's, Go's, Debian's) → the OCI architecture[/variant]. */
const ARCHITECTURES: Record<string, string> = {
  x86_64: 'amd64', amd64: 'amd64', x64: 'amd64',
  aarch64: 'arm64', arm64: 'arm64', armv8: 'arm64', armv8l: 'arm/v7', // armv8l: a 32-bit kernel on an arm64 CPU
  armv7l: 'arm/v7', armv7: 'arm/v7', armhf: 'arm/v7', arm: 'arm/v7',
  armv6l: 'arm/v6', armv6: 'arm/v6', armel: 'arm/v6',
  i386: '386', i686: '386', i586: '386', '386': '386', x86: '386',
  riscv64: 'riscv64', ppc64le: 'ppc64le', s390x: 's390x',
  mips64: 'mips64', mips64el: 'mips64le', mips64le: 'mips64le',
  loongarch64: 'loong64', loong64: 'loong64',
};

/** Pure: `docker info`'s OSType and Architecture as an OCI platform (x86_64 → linux/amd64). An unknown architecture is kept as it is. */
export function nativePlatform(osType: string | undefined, architecture: string | undefined): string {
  const arch = (architecture ?? 'unknown').toLowerCase();
  return `${(osType || 'linux').toLowerCase()}/${ARCHITECTURES[arch] ?? arch}`;
}

/** Pure: one platform in its canonical spelling (linux/arm64/v8 → linux/arm64, linux/arm → linux/arm/v7, linux/x86_64 → linux/amd64). */
export function normalizePlatform(platform: string): string {
  const parts = platform.trim().toLowerCase().split('/');
  // More than os/arch/variant is no platform: kept whole, so that validation refuses it rather than a part of it passing.
  if (parts.length > 3) return parts.join('/');
  const [os = '', arch = '', variant] = parts;
  const known = ARCHITECTURES[arch];
  if (known === 'arm64' && (variant === undefined || variant === 'v8')) return `${os}/arm64`;
  if (known?.startsWith('arm/') && arch === 'arm' && variant) return `${os}/arm/${variant}`;
  if (known) return `${os}/${known}`;
  return [os, arch, variant].filter(Boolean).join('/');
}

/** Pure: the canonical spelling of what a person wrote (dockerInfo.json, ?platform=), or undefined when it is no os/arch[/variant]. */
export function canonicalPlatform(platform: string): string | undefined {
  const normal = normalizePlatform(platform);
  return isValidPlatform(normal) ? normal : undefined;
}

/** Pure: the text of one /proc/sys/fs/binfmt_misc entry file. */
export function parseBinfmtEntry(name: string, text: string): BinfmtEntry {
  const lines = text.split('\n').map((l) => l.trim());
  const interpreter = lines.find((l) => l.startsWith('interpreter '))?.slice('interpreter '.length).trim();
  const flags = lines.find((l) => l.startsWith('flags:'))?.slice('flags:'.length).trim() ?? '';
  return { name, enabled: lines[0] === 'enabled', interpreter: interpreter || undefined, flags };
}

/** The QEMU architecture a platform needs (linux/arm64 → aarch64), or undefined when no QEMU handler is known for it. */
export function qemuArchFor(platform: string): string | undefined {
  const p = normalizePlatform(platform);
  return Object.entries(QEMU_PLATFORMS).find(([, platforms]) => platforms.includes(p))?.[0];
}

/**
 * Pure: the platforms the entries run for containers, and why the others
 * cannot. `interpreterExists` tells, for an entry without the F flag, whether
 * its interpreter is at least on this host (only the message changes).
 */
export function emulatedFrom(
  entries: BinfmtEntry[],
  native: string,
  interpreterExists: (path: string) => boolean = () => true,
): { emulated: string[]; unusable: Record<string, string> } {
  const emulated = new Set<string>();
  const unusable: Record<string, string> = {};
  for (const e of entries) {
    const arch = /^qemu-(.+)$/.exec(e.name)?.[1];
    const platforms = arch ? QEMU_PLATFORMS[arch] : undefined;
    if (!platforms) continue; // qemu-armeb, qemu-sparc…: no OCI platform dockhook builds for
    let why: string | undefined;
    if (!e.enabled) why = `the binfmt_misc handler ${e.name} is disabled`;
    else if (!e.flags.includes('F')) {
      why = e.interpreter && !interpreterExists(e.interpreter)
        ? `the binfmt_misc handler ${e.name} has no F flag and its interpreter ${e.interpreter} is missing`
        : `the binfmt_misc handler ${e.name} has no F flag, so containers cannot find its interpreter ${e.interpreter ?? ''}`.trimEnd();
    }
    for (const p of platforms) {
      if (p === native) continue;
      if (why) unusable[p] ??= why;
      else emulated.add(p);
    }
  }
  for (const p of emulated) delete unusable[p];
  return { emulated: [...emulated].sort(), unusable };
}

/** Every qemu-* entry in a binfmt_misc folder, or undefined when it is not mounted there (no `status` file). */
export async function readBinfmtEntries(dir = BINFMT_DIR): Promise<BinfmtEntry[] | undefined> {
  try {
    await access(`${dir}/status`);
  } catch {
    return undefined;
  }
  const names = (await readdir(dir)).filter((n) => n.startsWith('qemu-')).sort();
  const entries: BinfmtEntry[] = [];
  for (const name of names) {
    try {
      entries.push(parseBinfmtEntry(name, await readFile(`${dir}/${name}`, 'utf8')));
    } catch {
      // removed between readdir and read: not a handler any more
    }
  }
  return entries;
}

/** Where dockerode talks to: undefined for this host (a unix socket, or TCP to loopback), else the address. */
export function remoteEngine(docker: Docker): string | undefined {
  const modem = docker.modem as { socketPath?: unknown; host?: string; port?: number | string; protocol?: string };
  if (modem.socketPath) return undefined;
  const host = modem.host ?? '';
  if (modem.protocol !== 'ssh' && ['localhost', '127.0.0.1', '::1', '[::1]'].includes(host)) return undefined;
  return `${modem.protocol ?? 'tcp'}://${host}${modem.port ? `:${modem.port}` : ''}`;
}

export interface PlatformOptions {
  /** binfmt_misc's folder; tests give a folder of fixtures. */
  binfmtDir?: string;
  /** Whether this process runs inside a container (default: /.dockerenv or /run/.containerenv exists). */
  inContainer?: () => Promise<boolean>;
}

const exists = async (path: string) => access(path).then(() => true, () => false);
const defaultInContainer = async () => (await exists('/.dockerenv')) || (await exists('/run/.containerenv'));

/** The engine's own platform and what this host's binfmt_misc adds. Throws only when the engine does not answer `info`. */
export async function runnablePlatforms(docker: Docker, options: PlatformOptions = {}): Promise<RunnablePlatforms> {
  const info = (await docker.info()) as { OSType?: string; Architecture?: string };
  const architecture = info.Architecture ?? 'unknown';
  const native = nativePlatform(info.OSType, architecture);
  const base = { native, architecture };
  const remote = remoteEngine(docker);
  if (remote) {
    return { ...base, emulated: 'unknown', problems: `the engine is remote (${remote}): this host's binfmt_misc says nothing about it` };
  }
  const dir = options.binfmtDir ?? BINFMT_DIR;
  const entries = await readBinfmtEntries(dir);
  if (!entries) {
    if (await (options.inContainer ?? defaultInContainer)()) {
      return { ...base, emulated: 'unknown', binfmt: 'not mounted', problems: `dockhook runs in a container without the host's binfmt_misc (${dir}), so it cannot tell which platforms the engine emulates` };
    }
    return { ...base, emulated: [], binfmt: 'not mounted', problems: `binfmt_misc is not mounted at ${dir}: no foreign platform can run` };
  }
  const paths = new Map<string, boolean>();
  for (const e of entries) if (e.interpreter && !e.flags.includes('F')) paths.set(e.interpreter, await exists(e.interpreter));
  const { emulated, unusable } = emulatedFrom(entries, native, (p) => paths.get(p) ?? true);
  const problems = [...new Set(Object.values(unusable))];
  const result: RunnablePlatforms = { ...base, emulated, binfmt: 'mounted' };
  if (Object.keys(unusable).length) result.unusable = unusable;
  if (problems.length) result.problems = problems.join('; ');
  else if (emulated.length === 0) result.problems = 'no QEMU handler is registered in binfmt_misc: only the native platform can run';
  return result;
}

/**
 * Why `platform` cannot run on the engine, with the fix, or undefined when it
 * can, or when that cannot be known (emulated 'unknown': the engine decides).
 */
export function platformProblem(platform: string, runnable: RunnablePlatforms): string | undefined {
  const p = normalizePlatform(platform);
  if (p === runnable.native) return undefined;
  const [os] = p.split('/');
  const [nativeOs] = runnable.native.split('/');
  if (os !== nativeOs) return `${platform} cannot run on this engine: it runs ${nativeOs} containers (${runnable.native})`;
  if (runnable.emulated === 'unknown' || runnable.emulated.includes(p)) return undefined;
  const qemu = qemuArchFor(p);
  if (!qemu) return `${platform} cannot run on this engine (${runnable.architecture}): QEMU has no handler dockhook knows for it`;
  const handler = `qemu-${qemu}`;
  const why = runnable.unusable?.[p]
    ?? (runnable.binfmt === 'not mounted' ? `binfmt_misc is not mounted, no QEMU handler for ${qemu}` : `no QEMU handler for ${qemu}`);
  return `${platform} cannot run on this engine (${runnable.architecture}, ${why}): install qemu-user-static, then \`mount -t binfmt_misc binfmt_misc ${BINFMT_DIR}\` and \`update-binfmts --enable ${handler}\``;
}

/** One line for doctor and logs: "linux/amd64 (native), linux/arm64, linux/arm/v7 (QEMU)". */
export function describePlatforms(r: RunnablePlatforms): string {
  if (r.emulated === 'unknown') return `${r.native} (native); emulated platforms unknown`;
  return r.emulated.length ? `${r.native} (native), ${r.emulated.join(', ')} (QEMU)` : `${r.native} (native) only`;
}
