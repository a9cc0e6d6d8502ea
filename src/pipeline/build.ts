import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { BuildError } from '../errors.js';
import { classifyEngineError } from './engine-errors.js';
import { followProgress } from './progress.js';

export interface BuildImageOptions {
  context: Readable;
  /** Dockerfile path inside the context. */
  dockerfile: string;
  /** Full references the image gets, e.g. localhost:5000/api:1.4.2. */
  tags: string[];
  labels: Record<string, string>;
  buildArgs: Record<string, string>;
  target?: string;
  builder: 'buildkit' | 'classic';
  signal: AbortSignal;
  onLine: (line: string) => void;
}

const ENGINE_LOST_CONTEXT = /failed to read downloaded context: .*context not found/;

/** Builds on the engine and returns the image ID; a failed step is a permanent BuildError. */
export async function buildImage(docker: Docker, o: BuildImageOptions): Promise<string> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(o.context, {
      t: o.tags,
      dockerfile: o.dockerfile,
      labels: o.labels,
      buildargs: o.buildArgs,
      target: o.target,
      rm: true,
      forcerm: true,
      version: o.builder === 'buildkit' ? '2' : '1',
      abortSignal: o.signal,
    } as unknown as Docker.ImageBuildOptions);
  } catch (err) {
    throw classifyEngineError(err, 'starting the build');
  }
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
    // BuildKit in some engines (seen on 20.10) loses the uploaded context between upload and solve, rarely.
    // Nothing in the repository caused it, and sending the context again works.
    if (ENGINE_LOST_CONTEXT.test(message)) throw new BuildError(`the engine lost the uploaded build context (${message}); sending it again`, { transient: true });
    throw new BuildError(`docker build failed: ${message}`);
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
