import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { classifyEngineError } from './engine-errors.js';

export type BuilderSetting = 'auto' | 'buildkit' | 'classic';
export type Builder = 'buildkit' | 'classic';

// BuildKit sessions through the API arrived with API 1.39 (Docker 18.09), on Linux engines only.
const BUILDKIT_MIN_API = [1, 39];

function apiAtLeast(version: string, minimum: number[]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > minimum[0]! || (major === minimum[0] && minor >= minimum[1]!);
}

/**
 * BUILDER=auto picks BuildKit where the engine supports it (it measured faster
 * here, and it closes the classic builder's cache-poisoning flaw,
 * CVE-2024-24557), else the classic builder. Asked at the first build, not at
 * start-up, because the engine may not be up yet; remembered once known.
 */
export function createBuilderChooser(docker: Docker, setting: BuilderSetting, log: Logger): () => Promise<Builder> {
  if (setting !== 'auto') return () => Promise.resolve(setting);
  let chosen: Builder | undefined;
  return async () => {
    if (chosen) return chosen;
    let version: Docker.DockerVersion;
    try {
      version = await docker.version();
    } catch (err) {
      throw classifyEngineError(err, 'asking the engine which builders it supports');
    }
    const buildkit = version.Os === 'linux' && apiAtLeast(version.ApiVersion, BUILDKIT_MIN_API);
    chosen = buildkit ? 'buildkit' : 'classic';
    log.info({ builder: chosen, engine: version.Version, api: version.ApiVersion }, buildkit ? 'using BuildKit (BUILDER=auto)' : 'engine too old for BuildKit; using the classic builder (BUILDER=auto)');
    return chosen;
  };
}
