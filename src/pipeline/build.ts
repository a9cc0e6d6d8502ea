import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { openBuildSession } from '../engine/build-session.js';
import type { PullCredentials } from '../engine/pull-credentials.js';
import { BuildError } from '../errors.js';
import { CacheTally, type CacheReport } from './cache-report.js';
import { classifyEngineError } from './engine-errors.js';
import { identifyEngine } from './engine-identity.js';
import { followProgress } from './progress.js';
import { pullStream } from '../engine/pull-image.js';

export type { CacheReport } from './cache-report.js';

export interface BuildImageOptions {
  /**
   * Classic builder: the context tar. BuildKit: the folders its file sync
   * serves, as the docker CLI does (`context`, and `dockerfile` holding the
   * Dockerfile at the same relative path).
   */
  context: { tar: Readable } | { dirs: { context: string; dockerfile: string } };
  /** Dockerfile path inside the context. */
  dockerfile: string;
  /** Full references the image gets, e.g. localhost:5000/api:1.4.2. */
  tags: string[];
  labels: Record<string, string>;
  buildArgs: Record<string, string>;
  target?: string;
  /**
   * os/arch[/variant] to build for (the engine's `platform`, API 1.32+);
   * undefined builds for the engine's own. The classic builder is also asked
   * to pull: with a base image already local for another platform it fails
   * with "does not match the specified platform" otherwise.
   */
  platform?: string;
  /**
   * Images whose layers the build may reuse (`cachefrom`), full references
   * such as localhost:5000/api:latest (chooseCacheRefs in cache-refs.ts).
   * BuildKit reads their inline cache from the registry itself; for the
   * classic builder they are pulled first, best effort. A reference the
   * registry lacks is skipped, never a failed build.
   */
  cacheFrom?: string[];
  /** For pulls of base images during the build, and of cacheFrom images for the classic builder. */
  credentials: PullCredentials;
  signal: AbortSignal;
  onLine: (line: string) => void;
  /** A message that says what to do, for a failure dockhook recognises. */
  explain?: (engineMessage: string) => string | undefined;
}

/**
 * POST /build. BuildKit gets a session of dockhook's own; the classic builder
 * gets the pull credentials per registry in the request. `cacheFrom` is what
 * goes in `cachefrom`: the refs the caller chose, or none (Podman).
 */
async function startBuild(docker: Docker, o: BuildImageOptions, cacheFrom: string[]): Promise<{ stream: NodeJS.ReadableStream; close: () => void }> {
  const query = {
    t: o.tags,
    dockerfile: o.dockerfile,
    labels: o.labels,
    target: o.target,
    ...(o.platform ? { platform: o.platform } : {}),
    rm: true,
    forcerm: true,
    // One JSON-encoded list, unlike `t` (a repeated parameter): docker-modem would repeat an array, which the engine refuses (400).
    // Left out when empty: newer Podman refuses an empty `cachefrom=`.
    ...(cacheFrom.length ? { cachefrom: JSON.stringify(cacheFrom) } : {}),
  };
  if ('tar' in o.context) {
    // No BUILDKIT_INLINE_CACHE here: the classic builder writes no cache metadata and would warn that the argument was not consumed.
    const stream = await docker.buildImage(o.context.tar, {
      ...query,
      buildargs: o.buildArgs,
      version: '1',
      ...(o.platform ? { pull: '1' } : {}),
      registryconfig: o.credentials.registryConfig(),
      abortSignal: o.signal,
    } as unknown as Docker.ImageBuildOptions);
    return { stream, close: () => {} };
  }
  const session = await openBuildSession(docker, { credentials: o.credentials, dirs: o.context.dirs });
  try {
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
      docker.modem.dial(
        {
          path: '/build?',
          method: 'POST',
          // remote=client-session: the engine reads the context and the Dockerfile through the session, not the body.
          // BUILDKIT_INLINE_CACHE=1: the image's config carries its cache metadata, so the next build, on any host, can take it as cachefrom.
          options: { ...query, buildargs: { BUILDKIT_INLINE_CACHE: '1', ...o.buildArgs }, version: '2', session: session.id, remote: 'client-session' },
          file: Readable.from([]),
          abortSignal: o.signal,
          isStream: true,
          statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
        } as never,
        (err: Error | null, stream: unknown) => (err ? reject(err) : resolve(stream as NodeJS.ReadableStream)),
      ),
    );
    return { stream, close: () => session.close() };
  } catch (err) {
    session.close();
    throw err;
  }
}

const aborted = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason : new BuildError('build aborted'));

/** host[:port] of a reference, as Docker reads it (no dot, colon or `localhost` before the first slash: Docker Hub). */
function registryHostOfRef(ref: string): string {
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  return first && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

/**
 * The classic builder only takes cachefrom images the engine already has, so
 * buildImage pulls them first, with the build's own pull credentials. Best
 * effort: a tag the registry lacks, or a failed pull, means a build without
 * that image's layers, said in the log. Exported for a caller that wants the
 * pulls done before it opens the context stream (a second pull of an image
 * the engine has is one manifest request).
 */
export async function pullCacheImages(docker: Docker, refs: string[], o: Pick<BuildImageOptions, 'credentials' | 'signal' | 'onLine'>): Promise<void> {
  for (const ref of refs) {
    if (o.signal.aborted) throw aborted(o.signal);
    const host = registryHostOfRef(ref);
    const credential = o.credentials.forHost(host);
    const authconfig = credential ? { ...credential, serveraddress: host } : undefined;
    let outcome: string | undefined;
    let error: string | undefined;
    try {
      const stream = await pullStream(docker, ref, authconfig, o.signal);
      const result = await followProgress(docker, stream, (event) => {
        const status = event.status && /^Status: (.*)$/.exec(event.status);
        if (status) outcome = status[1];
      });
      error = result.error;
    } catch (err) {
      if (o.signal.aborted) throw aborted(o.signal);
      // dockerode's "(HTTP code 404) not found - manifest for … not found": the engine's own words are enough.
      error = (err as Error).message.replace(/^\(HTTP code \d+\) [^-]*- /, '');
    }
    if (error) o.onLine(`cache: ${ref} not pulled (${error.trim()}); building without it`);
    else o.onLine(`cache: pulled ${ref}${outcome ? ` (${outcome})` : ''}`);
  }
}

export interface BuildOutcome {
  imageId: string;
  /** Which steps came from the layer cache (also in the log). */
  cache: CacheReport;
}

/** Builds on the engine and returns the image ID; a failed step is a permanent BuildError. */
export async function buildImage(docker: Docker, o: BuildImageOptions): Promise<string> {
  return (await buildImageWithReport(docker, o)).imageId;
}

const engineNames = new WeakMap<Docker, Promise<string | undefined>>();

/** The engine's name (Docker, Podman), asked once per client; undefined if it cannot say (then the build's own call reports the failure). */
function engineName(docker: Docker): Promise<string | undefined> {
  let name = engineNames.get(docker);
  if (!name) {
    name = identifyEngine(docker).then(
      (engine) => engine.name,
      () => {
        engineNames.delete(docker);
        return undefined;
      },
    );
    engineNames.set(docker, name);
  }
  return name;
}

/**
 * What goes in `cachefrom`. BuildKit: the refs as they are (the engine reads
 * their cache from the registry). Docker's classic builder: the same, after
 * pulling them. Podman: none. Its `cachefrom` is buildah's --cache-from, a
 * cache repository that --cache-to fills, and newer Podman answers a tagged
 * reference with 400; on 4.3 (which accepts one) a pulled image gave no cache
 * hit, so nothing is pulled either.
 */
async function prepareCacheFrom(docker: Docker, o: BuildImageOptions): Promise<string[]> {
  const refs = o.cacheFrom ?? [];
  if (!refs.length || !('tar' in o.context)) return refs;
  if ((await engineName(docker)) === 'Podman') {
    o.onLine('cache: Podman takes no cachefrom images; building with its local cache only');
    return [];
  }
  await pullCacheImages(docker, refs, o);
  return refs;
}

/** buildImage, also returning which steps came from the layer cache. */
export async function buildImageWithReport(docker: Docker, o: BuildImageOptions): Promise<BuildOutcome> {
  const cacheFrom = await prepareCacheFrom(docker, o);
  let started: Awaited<ReturnType<typeof startBuild>>;
  try {
    started = await startBuild(docker, o, cacheFrom);
  } catch (err) {
    throw classifyEngineError(err, 'starting the build');
  }
  try {
    return await finishBuild(docker, o, started.stream);
  } finally {
    started.close();
  }
}

async function finishBuild(docker: Docker, o: BuildImageOptions, stream: NodeJS.ReadableStream): Promise<BuildOutcome> {
  const classic = 'tar' in o.context;
  const tally = new CacheTally();
  let imageId: string | undefined;
  let result: Awaited<ReturnType<typeof followProgress>>;
  try {
    result = await followProgress(docker, stream, (event) => {
      const text = event.stream?.replace(/\n$/, '');
      if (text?.trim()) {
        o.onLine(text);
        if (classic) {
          for (const line of text.split(/\r?\n/)) {
            const cached = tally.classicLine(line);
            if (cached) o.onLine(cached);
          }
        }
      } else if (event.status) o.onLine(event.status);
      if (event.step && !classic) {
        const cached = tally.buildkitStep(event.step);
        if (cached) o.onLine(cached);
      }
      if (event.error) o.onLine(`ERROR: ${event.error}`);
      if (event.aux?.ID) imageId = event.aux.ID;
      const built = event.stream && /Successfully built ([0-9a-f]{12,})|Built image: (sha256:[0-9a-f]{64})/.exec(event.stream);
      if (built && !imageId) imageId = built[1] ?? built[2];
    });
  } catch (err) {
    if (o.signal.aborted) throw aborted(o.signal);
    throw classifyEngineError(err, 'building');
  }
  if (o.signal.aborted) throw aborted(o.signal);
  if (result.error) {
    const message = result.error.trim();
    throw new BuildError(o.explain?.(message) ?? `docker build failed: ${message}`);
  }
  if (!imageId) {
    // Older engines only print "Successfully tagged": ask for the first tag instead of guessing.
    try {
      imageId = (await docker.getImage(o.tags[0]!).inspect()).Id;
    } catch (err) {
      throw classifyEngineError(err, 'finding the built image');
    }
  }
  o.onLine(tally.summary());
  return { imageId, cache: tally.report() };
}
