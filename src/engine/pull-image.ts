import type Docker from 'dockerode';

/** `host/name:tag` or `host/name@sha256:…` → what POST /images/create takes (a digest goes in `tag`, which the engine accepts). */
export function pullParams(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon <= slash) return { fromImage: ref, tag: 'latest' };
  return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/**
 * POST /images/create, the credentials in X-Registry-Auth only. (dockerode's
 * pull(ref, { authconfig }) also serialises its options, authconfig included,
 * into the query string and the body.)
 */
export function pullStream(docker: Docker, ref: string, authconfig: object | undefined, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) =>
    docker.modem.dial(
      {
        path: '/images/create?',
        method: 'POST',
        options: pullParams(ref),
        authconfig,
        abortSignal: signal,
        isStream: true,
        statusCodes: { 200: true, 404: 'not found', 500: 'server error' },
      } as never,
      (err: Error | null, stream: unknown) => (err ? reject(err) : resolve(stream as NodeJS.ReadableStream)),
    ),
  );
}
