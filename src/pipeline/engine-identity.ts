import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type Docker from 'dockerode';

/**
 * Which engine answers at DOCKER_HOST. Podman's `podman system service`
 * speaks Docker's API (it claims API 1.41) but has no BuildKit, so the API
 * level alone cannot tell whether BuildKit is there: the engine's name can.
 */
export interface EngineIdentity {
  name: 'Docker' | 'Podman';
  /** The engine's own version (Podman's 4.3.1), not the Docker API level it speaks. */
  version: string;
  apiVersion: string;
  os: string;
}

interface VersionBody {
  Version?: string;
  ApiVersion?: string;
  Os?: string;
  Components?: { Name?: string; Version?: string }[] | null;
}

/** Pure: the answer of GET /version and its headers. Podman names itself in Components and sends Libpod-Api-Version. */
export function identifyFromVersion(body: VersionBody, headers: IncomingHttpHeaders = {}): EngineIdentity {
  const podman = body.Components?.find((c) => c.Name === 'Podman Engine');
  const libpod = headers['libpod-api-version'];
  const isPodman = podman !== undefined || (typeof libpod === 'string' && libpod !== '');
  return {
    name: isPodman ? 'Podman' : 'Docker',
    version: podman?.Version ?? body.Version ?? 'unknown',
    apiVersion: body.ApiVersion ?? 'unknown',
    os: body.Os ?? 'unknown',
  };
}

/**
 * GET /version through dockerode's modem (so DOCKER_HOST, TLS and timeouts
 * apply as for every other call), keeping the response headers, which
 * `docker.version()` drops: one request gives both of Podman's signals.
 */
export function identifyEngine(docker: Docker): Promise<EngineIdentity> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: '/version?', method: 'GET', isStream: true, statusCodes: { 200: true, 500: 'server error' } } as never,
      (err, result) => {
        if (err) return reject(err);
        const res = result as IncomingMessage; // isStream: the response itself
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try {
            resolve(identifyFromVersion(JSON.parse(Buffer.concat(chunks).toString('utf8')) as VersionBody, res.headers));
          } catch (e) {
            reject(new Error(`the engine's /version answer is not JSON: ${(e as Error).message}`));
          }
        });
      },
    );
  });
}
