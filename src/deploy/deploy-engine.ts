import Docker from 'dockerode';
import type { Logger } from '../log.js';
import { recoverService } from './swap.js';

/** DEPLOY_DOCKER_HOST (unix:///… or tcp://host:port) as a client; undefined: deploy on the engine that builds. */
export function deployEngine(host: string | undefined, buildEngine: Docker): Docker {
  if (!host) return buildEngine;
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port), protocol: 'http' });
}

/**
 * At a worker's start: a deploy cut off by a crash is finished or rolled
 * back from the containers' labels, for every image the operator allows.
 * A problem is logged, never fatal: the worker still builds.
 */
export async function recoverDeploys(docker: Docker, services: string[], log: Logger): Promise<void> {
  for (const service of services) {
    try {
      for (const line of await recoverService(docker, service)) log.warn({ service }, `deploy recovery: ${line}`);
    } catch (err) {
      log.error({ service, err: (err as Error).message }, 'deploy recovery failed; the service may need a look (docker ps -a --filter label=dockhook.service)');
    }
  }
}
