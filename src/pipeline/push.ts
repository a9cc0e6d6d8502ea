import type Docker from 'dockerode';
import { classifyEngineError, classifyPushError } from './engine-errors.js';
import { followProgress } from './progress.js';

export interface RegistryAuth {
  username: string;
  password: string;
}

/** Splits host:port/name:tag at the tag's colon, not the port's. */
export function splitReference(ref: string): { repository: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon <= slash) return { repository: ref, tag: 'latest' };
  return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/**
 * Pushes one reference and returns its manifest digest. The push is done only
 * when the stream ended without an error event and named a digest.
 */
export async function pushImage(
  docker: Docker,
  ref: string,
  options: { registry: string; auth?: RegistryAuth; signal: AbortSignal; onLine: (line: string) => void },
): Promise<string> {
  const { repository, tag } = splitReference(ref);
  const authconfig = options.auth ? { username: options.auth.username, password: options.auth.password, serveraddress: options.registry } : undefined;
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await docker.getImage(repository).push({ tag, authconfig, abortSignal: options.signal } as never)) as unknown as NodeJS.ReadableStream;
  } catch (err) {
    throw classifyEngineError(err, `pushing ${ref}`);
  }
  let digest: string | undefined;
  let result: Awaited<ReturnType<typeof followProgress>>;
  try {
    result = await followProgress(docker, stream, (event) => {
      // Layer progress bars are noise in a log file; keep the state changes.
      if (event.status && !event.progress) options.onLine(`${event.id ? `${event.id}: ` : ''}${event.status}`);
      if (event.aux?.Digest) digest = event.aux.Digest;
      const said = event.status && /digest: (sha256:[0-9a-f]{64})/.exec(event.status);
      if (said && !digest) digest = said[1];
    });
  } catch (err) {
    throw classifyEngineError(err, `pushing ${ref}`);
  }
  if (result.error) throw classifyPushError(result.error, ref);
  if (!digest) throw classifyPushError('the engine finished the push without reporting a digest', ref);
  return digest;
}
