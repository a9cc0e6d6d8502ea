import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { openBuildSession } from '../engine/build-session.js';
import type { PullCredentials } from '../engine/pull-credentials.js';
import { BuildError } from '../errors.js';
import { classifyEngineError } from './engine-errors.js';
import { followProgress } from './progress.js';

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
  /** For pulls of base images during the build. */
  credentials: PullCredentials;
  signal: AbortSignal;
  onLine: (line: string) => void;
  /** A message that says what to do, for a failure dockhook recognises. */
  explain?: (engineMessage: string) => string | undefined;
}

/** POST /build. BuildKit gets a session of dockhook's own; the classic builder gets the pull credentials per registry in the request. */
async function startBuild(docker: Docker, o: BuildImageOptions): Promise<{ stream: NodeJS.ReadableStream; close: () => void }> {
  const query = { t: o.tags, dockerfile: o.dockerfile, labels: o.labels, buildargs: o.buildArgs, target: o.target, rm: true, forcerm: true };
  if ('tar' in o.context) {
    const stream = await docker.buildImage(o.context.tar, {
      ...query,
      version: '1',
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
          options: { ...query, version: '2', session: session.id, remote: 'client-session' },
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

/** Builds on the engine and returns the image ID; a failed step is a permanent BuildError. */
export async function buildImage(docker: Docker, o: BuildImageOptions): Promise<string> {
  let started: Awaited<ReturnType<typeof startBuild>>;
  try {
    started = await startBuild(docker, o);
  } catch (err) {
    throw classifyEngineError(err, 'starting the build');
  }
  try {
    return await finishBuild(docker, o, started.stream);
  } finally {
    started.close();
  }
}

async function finishBuild(docker: Docker, o: BuildImageOptions, stream: NodeJS.ReadableStream): Promise<string> {
  let imageId: string | undefined;
  let result: Awaited<ReturnType<typeof followProgress>>;
  try {
    result = await followProgress(docker, stream, (event) => {
      const text = event.stream?.replace(/\n$/, '');
      if (text?.trim()) o.onLine(text);
      else if (event.status) o.onLine(event.status);
      if (event.error) o.onLine(`ERROR: ${event.error}`);
      if (event.aux?.ID) imageId = event.aux.ID;
      const built = event.stream && /Successfully built ([0-9a-f]{12,})|Built image: (sha256:[0-9a-f]{64})/.exec(event.stream);
      if (built && !imageId) imageId = built[1] ?? built[2];
    });
  } catch (err) {
    if (o.signal.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new BuildError('build aborted');
    throw classifyEngineError(err, 'building');
  }
  if (o.signal.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new BuildError('build aborted');
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
  return imageId;
}
