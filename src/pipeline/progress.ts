import type Docker from 'dockerode';
import { BuildKitLog } from './buildkit-log.js';

export interface ProgressEvent {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: { ID?: string; Digest?: string; Tag?: string; Size?: number };
  /** BuildKit: a step (vertex) finished, from the cache or not. */
  step?: { name: string; cached: boolean };
}

/** What the engine sends: BuildKit's trace carries a base64 string in `aux`. */
type EngineEvent = Omit<ProgressEvent, 'aux'> & { aux?: ProgressEvent['aux'] | string };

const BUILDKIT_TRACE = 'moby.buildkit.trace';
const BUILDKIT_IMAGE = 'moby.image.id';

type FollowProgress = (stream: NodeJS.ReadableStream, onFinished: (err: Error | null) => void, onProgress: (event: EngineEvent) => void) => void;

/**
 * Reads an engine progress stream (build or push) to its end, calling onEvent
 * with plain events; BuildKit's encoded status becomes `stream` lines. The
 * engine reports a failed step inside the stream while the HTTP call itself
 * succeeds, so the first `error` event is what decides.
 */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (event: ProgressEvent) => void): Promise<{ error?: string }> {
  const follow = (docker.modem as unknown as { followProgress: FollowProgress }).followProgress.bind(docker.modem);
  const buildkit = new BuildKitLog();
  return new Promise((resolve, reject) => {
    let error: string | undefined;
    follow(
      stream,
      (err) => {
        for (const line of buildkit.flush()) onEvent({ stream: line });
        if (err) reject(err);
        else resolve({ error });
      },
      (event) => {
        if (event.id === BUILDKIT_TRACE && typeof event.aux === 'string') {
          for (const e of buildkit.decodeEvents(event.aux)) onEvent('line' in e ? { stream: e.line } : { step: e.step });
          return;
        }
        if (event.id === BUILDKIT_IMAGE && typeof event.aux === 'object' && event.aux.ID) {
          onEvent({ aux: { ID: event.aux.ID } });
          return;
        }
        if (error === undefined && (event.error || event.errorDetail?.message)) error = event.errorDetail?.message ?? event.error;
        onEvent(event as ProgressEvent);
      },
    );
  });
}
