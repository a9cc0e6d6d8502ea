import type { PullCredentials } from '../engine/pull-credentials.js';

/**
 * Turns the engine's message for a failed build into one that says what to
 * do, for the failures a user meets in the first week. Pure: it sees the
 * engine's text and what dockhook knows, nothing else.
 */

export interface FailureContext {
  credentials: PullCredentials;
  /** The Dockerfile's text, when dockhook has it (for its `# syntax=` directive). */
  dockerfile?: string;
  buildArgs: Record<string, string>;
  registry: string;
}

// BuildKit: "pulling from host H failed with status code [manifests 1]: 401 Unauthorized", "failed to authorize", "unexpected status: 401".
// Classic: `Head "http://H/v2/…": no basic auth credentials`, "pull access denied for H/…".
const UNAUTHORIZED = /401 Unauthorized|no basic auth credentials|failed to authorize|authentication required|pull access denied|unauthorized: /i;
const HOST_PATTERNS = [/pulling from host (\S+?) failed/, /https?:\/\/([^/"\s]+)\/v2\//, /pull access denied for ([^/,\s]+)\//, /failed to fetch (?:anonymous )?token.*?https?:\/\/([^/"\s]+)\//];

function registryHostIn(message: string): string | undefined {
  for (const pattern of HOST_PATTERNS) {
    const m = pattern.exec(message);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** The `# syntax=` parser directive, if the Dockerfile starts with one (directives come before any other line). */
export function syntaxDirective(dockerfile: string | undefined): string | undefined {
  for (const line of (dockerfile ?? '').replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const directive = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!directive) return undefined;
    if (directive[1]!.toLowerCase() === 'syntax') return directive[2];
  }
  return undefined;
}

// What BuildKit says when it could not resolve or run the frontend image.
const FRONTEND_FAILED = /frontend|gateway|dockerfile:|resolve image config|failed to resolve source metadata/i;

export function explainBuildFailure(message: string, o: FailureContext): string | undefined {
  const syntax = o.buildArgs.BUILDKIT_SYNTAX ?? syntaxDirective(o.dockerfile);
  if (syntax && FRONTEND_FAILED.test(message) && message.includes(syntax.replace(/^docker\.io\//, '').split(':')[0]!)) {
    const name = syntax.split('@')[0]!;
    const how = o.buildArgs.BUILDKIT_SYNTAX
      ? `the build arg BUILDKIT_SYNTAX=${syntax} makes BuildKit fetch that frontend image, and it could not`
      : `the Dockerfile's "# syntax=${syntax}" line makes BuildKit fetch that frontend image, and it could not (no Docker Hub here, or its rate limit)`;
    return `${how}: ${message}. Either mirror the image into your registry (docker pull ${name} && docker tag ${name} ${o.registry}/${name.replace(/^docker\.io\//, '')} && docker push …) and add "BUILDKIT_SYNTAX": "${o.registry}/${name.replace(/^docker\.io\//, '')}" to build_args in dockerInfo.json, or delete the "# syntax=" line`;
  }
  if (UNAUTHORIZED.test(message)) {
    const host = registryHostIn(message);
    const known = o.credentials.hosts();
    const has = known.length ? `dockhook has credentials for ${known.join(', ')}` : 'dockhook has no registry credentials';
    const target = host ?? 'the registry named in FROM';
    const held =
      host && o.credentials.forHost(host)
        ? ` The credentials dockhook holds for ${host} were refused: check them.`
        : ` Add credentials for ${target} there (\`docker login ${host ?? '<registry>'}\` with DOCKER_CONFIG set to that folder writes them, when no credential helper is configured).`;
    return `the engine could not pull a base image from ${target}: the registry refused (${message}). ${has}; they come from ${o.credentials.sources}.${held}`;
  }
  return undefined;
}
