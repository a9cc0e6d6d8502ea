import { BuildError } from '../errors.js';

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

// A missing route: Podman answers "Not Found", dockerd {"message": "page not found"}. A missing
// image or container is a 404 too, but its message names the thing ("No such image: …").
const NO_SUCH_ROUTE = /- (404 )?(Not Found|page not found)\s*$/i;

/**
 * The engine refused BuildKit's session (POST /session answered 404): it has no
 * BuildKit, as Podman has none. dockerode's own session reports this as
 * "(HTTP code 404) unexpected - Not Found", which tells a user nothing.
 * Undefined for any other error.
 */
export function classifySessionError(err: unknown): BuildError | undefined {
  const e = err as { statusCode?: number; reason?: unknown; message?: string } | undefined;
  if (e?.statusCode !== 404) return undefined;
  const message = e.message ?? '';
  if (!/session/i.test(String(e.reason ?? '')) && !/session/i.test(message) && !NO_SUCH_ROUTE.test(message)) return undefined;
  return new BuildError(
    // Short enough for a commit status (140 characters), the fix included.
    "the engine refused BuildKit's session (POST /session: 404 Not Found; Podman has no BuildKit): set BUILDER=classic",
    { cause: err },
  );
}

/** An error from dockerode itself (not from a build step): the engine could not be reached or refused the call. */
export function classifyEngineError(err: unknown, what: string): BuildError {
  if (err instanceof BuildError) return err;
  // Only BuildKit's session can be a missing route on an engine that answers at all (see classifySessionError).
  const refused = classifySessionError(err);
  if (refused) return refused;
  const code = (err as NodeJS.ErrnoException).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new BuildError(`Docker engine unreachable while ${what} (${code}): check DOCKER_HOST or that dockerd runs`, { transient: true, cause: err });
  }
  const statusCode = (err as { statusCode?: number }).statusCode;
  const transient = statusCode !== undefined && statusCode >= 500 && /connection refused|timeout|EOF|no such host/i.test(message);
  return new BuildError(`Docker engine error while ${what}: ${message.replace(/^\(HTTP code \d+\)\s*/, '')}`, { transient, cause: err });
}

// What the engine says when the registry, not the request, is the problem for now.
const TRANSIENT_PUSH = /connection refused|connection reset|no such host|i\/o timeout|TLS handshake timeout|EOF|502 Bad Gateway|503 Service Unavailable|504 Gateway|received unexpected HTTP status: 5\d\d|dial tcp/i;
const AUTH_PUSH = /unauthorized|authentication required|no basic auth credentials|denied/i;

export function classifyPushError(message: string, ref: string): BuildError {
  if (AUTH_PUSH.test(message)) {
    return new BuildError(`registry refused the push of ${ref}: ${message}; check REGISTRY_USERNAME and REGISTRY_PASSWORD`);
  }
  if (TRANSIENT_PUSH.test(message)) return new BuildError(`registry unreachable while pushing ${ref}: ${message}`, { transient: true });
  return new BuildError(`push of ${ref} failed: ${message}`);
}
