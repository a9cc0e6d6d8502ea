import type Docker from 'dockerode';

/**
 * How dockhook finds the containers of a deployed service again: by labels,
 * never by what it remembers. A service has at most two: the stable one,
 * named after the service, and during a swap the candidate,
 * `<service>-<sha7>`. Whatever a crash left is read from these alone.
 */
export const LABELS = {
  service: 'dockhook.service',
  sha: 'dockhook.sha',
  build: 'dockhook.build',
  version: 'dockhook.version',
  /** Without a HEALTHCHECK, the seconds a candidate must run unrestarted: recovery waits as the swap would have. */
  waitSeconds: 'dockhook.wait-seconds',
} as const;

/** The restart policy of every container dockhook runs; set to `no` on the old one for the length of a swap. */
export const RESTART_POLICY = 'unless-stopped';

/** A container name for a service_name: `team/api` → `team_api` (names take [a-zA-Z0-9_.-]). */
export function containerName(service: string): string {
  return service.replaceAll('/', '_');
}

export function candidateName(service: string, sha: string): string {
  return `${containerName(service)}-${sha.slice(0, 7)}`;
}

export interface ServiceContainer {
  id: string;
  /** Without the engine's leading slash. */
  name: string;
  state: string;
  sha?: string;
  build?: number;
  version?: string;
  waitSeconds?: number;
}

/** Every container labelled as the service's, running or not. */
export async function serviceContainers(docker: Docker, service: string): Promise<{ stable?: ServiceContainer; candidates: ServiceContainer[] }> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.service}=${service}`] } });
  const stableName = containerName(service);
  const all = list.map((c): ServiceContainer => {
    const wait = Number(c.Labels[LABELS.waitSeconds]);
    return {
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      state: c.State,
      sha: c.Labels[LABELS.sha],
      build: c.Labels[LABELS.build] ? Number(c.Labels[LABELS.build]) : undefined,
      version: c.Labels[LABELS.version],
      waitSeconds: Number.isFinite(wait) && wait > 0 ? wait : undefined,
    };
  });
  return { stable: all.find((c) => c.name === stableName), candidates: all.filter((c) => c.name !== stableName) };
}

/** The last `lines` lines of a container's output (stdout and stderr, demultiplexed). */
export async function logTail(docker: Docker, id: string, lines = 50): Promise<string[]> {
  const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
  const text: string[] = [];
  // Without a TTY the engine frames each chunk: 1 byte stream, 3 zero, 4 bytes length.
  let at = 0;
  const framed = raw.length >= 8 && raw[0]! <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0;
  if (!framed) text.push(raw.toString('utf8'));
  else {
    while (at + 8 <= raw.length) {
      const size = raw.readUInt32BE(at + 4);
      text.push(raw.subarray(at + 8, at + 8 + size).toString('utf8'));
      at += 8 + size;
    }
  }
  return text.join('').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1).slice(-lines);
}
