import type Docker from 'dockerode';

export interface ProgressEvent {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: { ID?: string; Digest?: string; Tag?: string; Size?: number };
}

type FollowProgress = (
  stream: NodeJS.ReadableStream,
  onFinished: (err: Error | null, events: ProgressEvent[]) => void,
  onProgress: (event: ProgressEvent) => void,
) => void;

/**
 * Reads an engine progress stream to its end. dockerode resolves even when the
 * stream reports a failure, so the first `error` event is what decides.
 */
export function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (event: ProgressEvent) => void,
): Promise<{ events: ProgressEvent[]; error?: string }> {
  // dockerode 5 added followProgress (decodes BuildKit's protobuf status); @types/dockerode predates it.
  const follow = (docker as unknown as { followProgress: FollowProgress }).followProgress.bind(docker);
  return new Promise((resolve, reject) => {
    let error: string | undefined;
    follow(
      stream,
      (err: Error | null, events: ProgressEvent[]) => {
        if (err) reject(err);
        else resolve({ events, error });
      },
      (event: ProgressEvent) => {
        if (error === undefined && (event.error || event.errorDetail?.message)) error = event.errorDetail?.message ?? event.error;
        onEvent(event);
      },
    );
  });
}
