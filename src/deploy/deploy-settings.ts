import { posix } from 'node:path';
import { z } from 'zod';

/**
 * What a repository's dockerInfo.json may ask of the host when its image is
 * deployed (issue 14), checked against what the operator allows. Everything
 * here is untrusted input from the repository: the rules are a closed list
 * (unknown keys are refused, not ignored), and what would hand the host over
 * (privileged mode, host namespaces, capabilities, devices, the Docker
 * socket, host paths the operator did not list) is refused by name. Pure:
 * nothing here touches the engine or the disk.
 */

/** The operator's side: DEPLOY_IMAGES and DEPLOY_ALLOW_BINDS. */
export interface DeployPolicy {
  /** service_names that may be deployed at all. */
  images: string[];
  /** Absolute host paths a repository may bind-mount (the path itself or anything under it). */
  allowBinds: string[];
}

export interface PortBinding {
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface VolumeMount {
  /** A named volume, or (only when the operator allows it) an absolute host path. */
  source: string;
  kind: 'volume' | 'bind';
  target: string;
  readOnly: boolean;
}

/** A deploy the host will carry out: plain data, executed by the swap. */
export interface DeployPlan {
  service: string;
  ports: PortBinding[];
  volumes: VolumeMount[];
  /** From dockerInfo.json; the host's DEPLOY_ENV_DIR/<service>.env is laid over it at deploy time. */
  env: Record<string, string>;
  command?: string[];
  /** Without a HEALTHCHECK: how long the new container must run without a restart to count as healthy. */
  waitSeconds: number;
  /** Deploy merges into this branch (default: the repository's default branch). */
  branch?: string;
}

export type DeployDecision =
  | { outcome: 'none' }
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'refused'; field: string; reason: string }
  | { outcome: 'planned'; plan: DeployPlan };

/** Keys that hand the host over: named so the refusal says why, not just "unknown". */
const FORBIDDEN: Record<string, string> = {
  privileged: 'privileged mode gives the container the whole host',
  network_mode: 'the host network namespace (or another container\'s) is not given to a repository',
  network: 'the host network namespace (or another container\'s) is not given to a repository',
  pid: 'the host PID namespace is not given to a repository',
  pid_mode: 'the host PID namespace is not given to a repository',
  ipc: 'the host IPC namespace is not given to a repository',
  userns_mode: 'the host user namespace is not given to a repository',
  cap_add: 'added capabilities are not given to a repository',
  capabilities: 'added capabilities are not given to a repository',
  devices: 'host devices are not given to a repository',
  security_opt: 'security options (seccomp, AppArmor) are not relaxed for a repository',
  binds: 'host paths go in "volumes", and only those the operator lists in DEPLOY_ALLOW_BINDS',
  mounts: 'host paths go in "volumes", and only those the operator lists in DEPLOY_ALLOW_BINDS',
  user: 'the user is the image\'s (USER in the Dockerfile)',
  restart: 'dockhook sets the restart policy itself (unless-stopped)',
  name: 'dockhook names the container after the service',
  labels: 'dockhook\'s labels are how it finds its containers again',
};

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PORT = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/;

class Refusal extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const KNOWN = ['ports', 'volumes', 'env', 'command', 'wait_seconds', 'branch'] as const;

const shape = z
  .object({
    ports: z.array(z.string({ error: 'must be a string such as "8080:80"' }), { error: 'must be an array such as ["8080:80"]' }).max(20, 'at most 20 ports').default([]),
    volumes: z.array(z.string({ error: 'must be a string such as "appdata:/data"' }), { error: 'must be an array such as ["appdata:/data"]' }).max(20, 'at most 20 volumes').default([]),
    env: z
      .record(z.string().regex(ENV_NAME, 'names are letters, digits and _'), z.union([z.string(), z.number(), z.boolean()]).transform(String), { error: 'must be an object of NAME: "value"' })
      .default({}),
    command: z.array(z.string({ error: 'must be strings' }), { error: 'must be an array of strings (exec form)' }).min(1, 'must not be empty').max(100).optional(),
    wait_seconds: z.number({ error: 'must be a number of seconds' }).int('must be whole seconds').min(1, 'must be at least 1').max(600, 'must be at most 600').default(10),
    branch: z.string({ error: 'must be a branch name' }).min(1).max(255).optional(),
  })
  .strict();

function parsePort(spec: string, field: string): PortBinding {
  const m = PORT.exec(spec.trim());
  if (!m) throw new Refusal(field, `"${spec}" is not a port mapping: write "hostPort:containerPort", "127.0.0.1:8080:80" or "8080:80/udp"`);
  const [, hostIp, host, container, protocol] = m;
  const hostPort = Number(host);
  const containerPort = Number(container);
  for (const [what, n] of [['host port', hostPort], ['container port', containerPort]] as const) {
    if (n < 1 || n > 65535) throw new Refusal(field, `${what} ${n} is not between 1 and 65535`);
  }
  return { ...(hostIp ? { hostIp: hostIp.replace(/^\[|\]$/g, '') } : {}), hostPort, containerPort, protocol: (protocol as 'tcp' | 'udp' | undefined) ?? 'tcp' };
}

const SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/run/podman/podman.sock'];

/** The engine's socket, its folder, or any folder holding it (mounting / would hand it over too). */
function isDockerSocket(path: string): boolean {
  const p = posix.normalize(path).replace(/(.)\/+$/, '$1');
  if (SOCKETS.some((s) => s === p || s.startsWith(p === '/' ? '/' : `${p}/`))) return true;
  return /(^|\/)(docker|podman|containerd)\.sock$/.test(p) || p === '/var/run' || p === '/run' || p.startsWith('/var/run/docker') || p.startsWith('/run/docker') || p.startsWith('/run/containerd') || p.startsWith('/run/podman');
}

function bindAllowed(path: string, allowBinds: string[]): boolean {
  return allowBinds.some((allowed) => {
    const a = posix.normalize(allowed).replace(/\/+$/, '') || '/';
    return path === a || path.startsWith(a === '/' ? '/' : `${a}/`);
  });
}

function parseVolume(spec: string, field: string, policy: DeployPolicy): VolumeMount {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3) throw new Refusal(field, `"${spec}" is not a volume: write "name:/path/in/container" or "name:/path:ro"`);
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new Refusal(field, `"${spec}": the mode must be ro or rw, not ${mode}`);
  if (!target.startsWith('/')) throw new Refusal(field, `"${spec}": the container path must be absolute`);
  const readOnly = mode === 'ro';
  const normalTarget = posix.normalize(target).replace(/(.)\/+$/, '$1');
  if (source.startsWith('/') || source.startsWith('.') || source.startsWith('~')) {
    if (!source.startsWith('/')) throw new Refusal(field, `"${spec}": a host path must be absolute, and only paths the operator lists in DEPLOY_ALLOW_BINDS may be mounted`);
    const path = posix.normalize(source);
    if (isDockerSocket(path)) throw new Refusal(field, `"${spec}": the Docker socket (or the engine's run folder) is never mounted into a deployed container: it would give the repository the host`);
    if (!bindAllowed(path, policy.allowBinds)) {
      throw new Refusal(field, `"${spec}": host path ${path} is not in DEPLOY_ALLOW_BINDS; use a named volume ("data:${normalTarget}"), or ask the operator to list the path`);
    }
    return { source: path, kind: 'bind', target: normalTarget, readOnly };
  }
  if (!VOLUME_NAME.test(source)) throw new Refusal(field, `"${spec}": ${source} is not a volume name (letters, digits, _ . -)`);
  return { source, kind: 'volume', target: normalTarget, readOnly };
}

/**
 * The deploy an image's `deploy` entry asks for, or why there is none:
 * `none` when it asks for nothing, `skipped` when the operator does not allow
 * this image (DEPLOY_IMAGES), `refused` naming the field when it asks for
 * something the host does not give.
 */
export function planDeploy(service: string, raw: unknown, policy: DeployPolicy): DeployDecision {
  if (raw === undefined || raw === null) return { outcome: 'none' };
  if (!policy.images.includes(service)) {
    return { outcome: 'skipped', reason: `deploy skipped: ${service} is not in DEPLOY_IMAGES (the operator allows deploys per image; a repository cannot ask for one by itself)` };
  }
  try {
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new Refusal('deploy', 'must be an object like {"ports": ["8080:80"]}');
    for (const key of Object.keys(raw)) {
      const why = FORBIDDEN[key];
      if (why) throw new Refusal(`deploy.${key}`, `refused: ${why}`);
      if (!(KNOWN as readonly string[]).includes(key)) throw new Refusal(`deploy.${key}`, `is not a deploy setting; dockhook knows ${KNOWN.join(', ')}`);
    }
    const parsed = shape.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Refusal(['deploy', ...issue.path.map(String)].join('.'), issue.message);
    }
    const d = parsed.data;
    const ports = d.ports.map((p, i) => parsePort(p, `deploy.ports.${i}`));
    const seen = new Map<string, number>();
    ports.forEach((p, i) => {
      const key = `${p.hostIp ?? ''}:${p.hostPort}/${p.protocol}`;
      const first = seen.get(key);
      if (first !== undefined) throw new Refusal(`deploy.ports.${i}`, `host port ${p.hostPort}/${p.protocol} is already mapped by deploy.ports.${first}`);
      seen.set(key, i);
    });
    const volumes = d.volumes.map((v, i) => parseVolume(v, `deploy.volumes.${i}`, policy));
    return {
      outcome: 'planned',
      plan: { service, ports, volumes, env: d.env, ...(d.command ? { command: d.command } : {}), waitSeconds: d.wait_seconds, ...(d.branch ? { branch: d.branch } : {}) },
    };
  } catch (err) {
    if (err instanceof Refusal) return { outcome: 'refused', field: err.field, reason: `${err.field} ${err.message}` };
    throw err;
  }
}
