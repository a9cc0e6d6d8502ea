/**
 * The Docker CLI, for the contender dockhook is compared with and for the
 * cache resets between rounds. Only images of the bench's own registry
 * (127.0.0.1:<its port>) are ever removed; busybox:latest stays.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface DockerCli {
  run(args: string[], extraEnv?: Record<string, string>): Promise<{ stdout: string; stderr: string }>;
}

/** A CLI with its own DOCKER_CONFIG (no login or context of the machine leaks in). */
export async function dockerCli(tmp: string): Promise<DockerCli> {
  const config = await mkdtemp(join(tmp, 'docker-config-'));
  return {
    async run(args, extraEnv = {}) {
      try {
        return await execFileP('docker', args, { env: { ...process.env, DOCKER_CONFIG: config, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 });
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${e.stderr?.trim() || e.message}`);
      }
    },
  };
}

export interface EngineFacts {
  serverVersion: string;
  apiVersion: string;
  clientVersion: string;
  storageDriver: string;
  buildx: boolean;
}

export async function engineFacts(cli: DockerCli): Promise<EngineFacts> {
  const { stdout } = await cli.run(['version', '--format', '{{.Server.Version}}|{{.Server.APIVersion}}|{{.Client.Version}}']);
  const [serverVersion = '?', apiVersion = '?', clientVersion = '?'] = stdout.trim().split('|');
  const driver = (await cli.run(['info', '--format', '{{.Driver}}'])).stdout.trim();
  const buildx = await cli.run(['buildx', 'version']).then(
    () => true,
    () => false,
  );
  return { serverVersion, apiVersion, clientVersion, storageDriver: driver, buildx };
}

/** Every image tagged for `registryHost` (one- and two-level names), removed with its untagged parents: the classic builder's cache. */
export async function removeRegistryImages(cli: DockerCli, registryHost: string): Promise<number> {
  const ids = new Set<string>();
  for (const pattern of [`${registryHost}/*`, `${registryHost}/*/*`]) {
    const { stdout } = await cli.run(['images', '-q', '--no-trunc', '--filter', `reference=${pattern}`]);
    for (const id of stdout.split('\n').map((s) => s.trim()).filter(Boolean)) ids.add(id);
  }
  if (ids.size > 0) await cli.run(['rmi', '-f', ...ids]);
  return ids.size;
}

/** A cold cache for both builders: the bench's images gone and BuildKit's cache emptied (busybox:latest is kept). */
export async function coldCache(cli: DockerCli, registryHost: string): Promise<void> {
  await removeRegistryImages(cli, registryHost);
  await cli.run(['builder', 'prune', '-af']);
}

/**
 * What a person does by hand: `docker build` (classic builder: this CLI has no
 * buildx, so it cannot drive BuildKit) with the same tags and labels dockhook
 * gives the image, then one `docker push` per tag, in the same order.
 */
export async function cliBuildAndPush(cli: DockerCli, dir: string, refs: string[], labels: Record<string, string>): Promise<{ buildMs: number }> {
  const args = ['build', ...refs.flatMap((r) => ['-t', r]), ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), dir];
  const t0 = Date.now();
  await cli.run(args, { DOCKER_BUILDKIT: '0' });
  const buildMs = Date.now() - t0;
  for (const ref of refs) await cli.run(['push', ref]);
  return { buildMs };
}
