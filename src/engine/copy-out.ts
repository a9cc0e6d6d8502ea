import { posix } from 'node:path';
import { Transform, addAbortSignal, finished, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { createGzip } from 'node:zlib';
import type Docker from 'dockerode';
import { BuildError } from '../errors.js';
import { classifyEngineError } from '../pipeline/engine-errors.js';

/**
 * Copies one path out of a built image as a .tar.gz, without running anything
 * from the image (issue 13, artifacts):
 *
 * 1. POST /containers/create with the image and a dummy command, never
 *    started. An image built `FROM scratch` has no CMD or ENTRYPOINT and the
 *    engine refuses to create a container without one ("No command
 *    specified"); the command is never run, so it need not exist.
 * 2. GET /containers/{id}/archive?path=… gives a tar of the path (a directory
 *    is one entry named after its last component, then its content). We gzip
 *    it with zlib as it streams, counting the tar's bytes: over `maxBytes` the
 *    stream is destroyed with a BuildError.
 * 3. DELETE /containers/{id}?force=1&v=1 once the stream ends, fails, is
 *    destroyed by its reader or `signal` aborts it. The container carries the
 *    label dockhook.copy-out=1, so one a crash left behind is found by
 *    removeLeftovers.
 *
 * Engine behaviours this relies on (dockerd 20.10, API 1.41):
 * - a missing path answers 404 "Could not find the file /x in container <id>",
 *   the same status as a missing container, so the message tells them apart;
 * - the 200 carries X-Docker-Container-Path-Stat, base64 JSON {name, size,
 *   mode, mtime, linkTarget}; `mode` is Go's os.FileMode (directory = 1<<31),
 *   `size` is the file's size for a regular file but only the directory
 *   entry's (4096) for a directory, so it can fail a single oversized file
 *   early and says nothing about a directory's total;
 * - `platform` (a query parameter of create, API 1.41) only checks the local
 *   image: another platform's image answers 404 "image with reference … was
 *   found but does not match the specified platform: wanted …, actual: …";
 *   without it the engine creates the container anyway, with a warning.
 */

export const COPY_OUT_LABEL = 'dockhook.copy-out';
/** The command given to the never-started container. */
export const DUMMY_CMD = ['dockhook-copy-out'];

export interface CopyOutOptions {
  /** The largest tar (as the engine sends it, before gzip) accepted, in bytes: ARTIFACT_MAX_BYTES. */
  maxBytes: number;
  /** An OCI platform (linux/arm64): the image must be of it. */
  platform?: string;
  /** Aborts the copy: the stream is destroyed with an AbortError and the container removed. */
  signal?: AbortSignal;
  /** The artifact's name in dockerInfo.json, for the messages ("artifact dist"). */
  name?: string;
}

export interface CopyOutResult {
  /** The .tar.gz of the path. Read it to the end (or destroy it); its errors are BuildErrors or an AbortError. */
  stream: Readable;
  /**
   * Settles after the stream has ended or failed AND the container is gone.
   * Rejects with the stream's error. It never rejects unhandled: a caller may
   * ignore it and watch the stream alone.
   */
  done: Promise<CopyOutDone>;
}

export interface CopyOutDone {
  /** Bytes of tar the engine sent. */
  tarBytes: number;
  /** Set when the container could not be removed (it keeps its label; removeLeftovers finds it). */
  removeError?: string;
}

/** The decoded X-Docker-Container-Path-Stat header. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime?: string;
  linkTarget?: string;
}

// Go's os.FileMode type bits (ModeType): dir, symlink, device, named pipe, socket, char device, irregular.
// A regular file has none of them. `&` works on 32-bit ints, which is exactly a uint32 FileMode's width.
const GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/** Pure: the header's JSON, or undefined when absent or unreadable. */
export function parsePathStat(header: string | string[] | undefined): PathStat | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  try {
    const stat = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as PathStat;
    if (typeof stat?.size !== 'number' || typeof stat.mode !== 'number') return undefined;
    return stat;
  } catch {
    return undefined;
  }
}

/** Pure: whether a path stat is of a regular file (its size is then the file's). */
export function isRegularFile(stat: PathStat): boolean {
  return (stat.mode & GO_MODE_TYPE) === 0;
}

function label(path: string, name: string | undefined): string {
  return name ? `artifact ${name}` : `the path ${path}`;
}

export function missingPathError(path: string, name: string | undefined, cause?: unknown): BuildError {
  const where = name ? `; check "path" of artifact ${name} in dockerInfo.json` : '';
  return new BuildError(`${path} does not exist in the image${where}`, { cause });
}

export function tooLargeError(path: string, name: string | undefined, maxBytes: number, size?: number): BuildError {
  const seen = size === undefined ? '' : `: ${size} bytes`;
  return new BuildError(`${label(path, name)} is over ARTIFACT_MAX_BYTES (${maxBytes} bytes)${seen}`);
}

/** Pure: why a path cannot be copied out, before any engine call; undefined when it can. */
export function pathProblem(path: string, name?: string): string | undefined {
  const what = name ? `"path" of artifact ${name}` : 'the path';
  if (typeof path !== 'string' || path === '') return `${what} is empty; it must be an absolute path such as /app/dist`;
  if (path.includes('\0')) return `${what} contains a NUL character`;
  if (!posix.isAbsolute(path)) return `${what} must be absolute (start with /): ${path}`;
  return undefined;
}

/** Containers of copies in progress in this process: removeLeftovers never touches them. */
const active = new Set<string>();

export async function copyOut(docker: Docker, image: string, path: string, options: CopyOutOptions): Promise<CopyOutResult> {
  const { maxBytes, platform, signal, name } = options;
  const problem = pathProblem(path, name);
  if (problem) throw new BuildError(problem);
  if (!Number.isFinite(maxBytes) || maxBytes < 0) throw new BuildError(`maxBytes must be a number of bytes, not ${maxBytes}`);
  signal?.throwIfAborted();

  let container: Docker.Container;
  try {
    // No signal here: an aborted create may still have made the container, and its id would be lost.
    container = await docker.createContainer({
      Image: image,
      Cmd: DUMMY_CMD,
      Labels: { [COPY_OUT_LABEL]: '1' },
      NetworkDisabled: true,
      ...(platform ? { platform } : {}),
    });
  } catch (err) {
    throw createError(err, image, platform);
  }
  active.add(container.id);

  let removal: Promise<string | undefined> | undefined;
  const remove = (): Promise<string | undefined> =>
    (removal ??= removeContainer(container).finally(() => active.delete(container.id)));

  let archive: Readable;
  try {
    signal?.throwIfAborted();
    archive = (await container.getArchive({ path, ...(signal ? { abortSignal: signal } : {}) })) as Readable;
  } catch (err) {
    await remove();
    throw archiveError(err, path, name);
  }

  const stat = parsePathStat((archive as Readable & { headers?: Record<string, string | string[] | undefined> }).headers?.['x-docker-container-path-stat']);
  // A regular file's tar is at least the file: fail before sending any of it.
  if (stat && isRegularFile(stat) && stat.size > maxBytes) {
    archive.destroy();
    await remove();
    throw tooLargeError(path, name, maxBytes, stat.size);
  }

  let tarBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) {
      tarBytes += chunk.length;
      if (tarBytes > maxBytes) callback(tooLargeError(path, name, maxBytes));
      else callback(null, chunk);
    },
  });
  const gzip = createGzip();
  if (signal) addAbortSignal(signal, gzip);

  // Pipeline: an error anywhere (over the limit, engine cut, reader's destroy) destroys all three,
  // which closes the engine's connection.
  pipeline(archive, counter, gzip, () => {});

  const done = new Promise<CopyOutDone>((resolve, reject) => {
    finished(gzip, (err) => {
      void remove().then((removeError) => {
        if (err) reject(err);
        else resolve(removeError ? { tarBytes, removeError } : { tarBytes });
      });
    });
  });
  done.catch(() => {}); // the stream reports the same error; an ignored `done` must not crash the process

  return { stream: gzip, done };
}

async function removeContainer(container: Docker.Container): Promise<string | undefined> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return undefined;
    } catch (err) {
      const e = err as { statusCode?: number; message?: string };
      if (e.statusCode === 404) return undefined; // already gone
      // 409 "removal of container … is already in progress": another remove runs; wait for it.
      last = err;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
  return last instanceof Error ? last.message : String(last);
}

function createError(err: unknown, image: string, platform: string | undefined): Error {
  if ((err as Error)?.name === 'AbortError') return err as Error;
  const e = err as { statusCode?: number; message?: string };
  const message = e?.message ?? '';
  if (e?.statusCode === 404 && /does not match the specified platform/i.test(message)) {
    const detail = /wanted [^,]+, actual: \S+/.exec(message)?.[0];
    return new BuildError(`image ${image} is not of platform ${platform}${detail ? ` (${detail.trim()})` : ''}`, { cause: err });
  }
  if (e?.statusCode === 404 && /no such image/i.test(message)) {
    return new BuildError(`image ${image} is not in the engine, so nothing can be copied out of it`, { cause: err });
  }
  return classifyEngineError(err, `creating a container to copy files out of ${image}`);
}

function archiveError(err: unknown, path: string, name: string | undefined): Error {
  if ((err as Error)?.name === 'AbortError') return err as Error;
  const e = err as { statusCode?: number; message?: string };
  // 404 is also the engine's "No such container: <id>", which cannot be (it was made just now) unless
  // someone removed it. dockerode prefixes every 404 with its own "no such container - ", hence the case.
  const message = e?.message ?? '';
  if (e?.statusCode === 404 && (/Could not find the file/i.test(message) || !/No such container:/.test(message))) {
    return missingPathError(path, name, err);
  }
  return classifyEngineError(err, `copying ${path} out of the image`);
}

/**
 * Removes containers labelled dockhook.copy-out that were created more than
 * `olderThanMs` ago (default 10 minutes: a copy of ARTIFACT_MAX_BYTES over a
 * slow engine link may take minutes, and another worker on the same engine may
 * be streaming one), except those of copies running in this process. Returns
 * the ids removed; one that cannot be removed is left for the next call.
 */
export async function removeLeftovers(docker: Docker, options: { olderThanMs?: number } = {}): Promise<string[]> {
  const olderThanMs = options.olderThanMs ?? 10 * 60_000;
  const list = await docker.listContainers({ all: true, filters: { label: [`${COPY_OUT_LABEL}=1`] } });
  const cutoff = (Date.now() - olderThanMs) / 1000; // Created is in seconds
  const removed: string[] = [];
  for (const c of list) {
    if (active.has(c.Id) || c.Created > cutoff) continue;
    if ((await removeContainer(docker.getContainer(c.Id))) === undefined) removed.push(c.Id);
  }
  return removed;
}
