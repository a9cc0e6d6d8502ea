import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { RegistryTransport } from './auth.js';
import { RegistryError, errorFromResponse } from './errors.js';
import { checkName, isValidDigest } from './names.js';

/**
 * Blobs through the Registry API v2 (distribution's docs/spec/api.md, "Pushing
 * an image" / "Pulling a layer"): what artifacts are made of. Nothing here
 * holds a blob in memory unless it came as a Buffer: a stream is hashed and
 * counted while it goes out in chunks of UPLOAD_CHUNK_BYTES, and a download
 * is handed over as a stream that checks its digest as it is read.
 * Artifacts may be a GiB.
 *
 * Uploads: POST /v2/<name>/blobs/uploads/ opens a session (202 + Location),
 * then either PUT <location>?digest=… with the whole body (a Buffer: one
 * request), or PATCHes of the stream's consecutive chunks followed by an
 * empty PUT <location>?digest=… once the stream has ended and its sha256 is
 * known. Not one PATCH with a streamed body: Node 20's fetch keeps all of a
 * streamed request body in memory (nodejs/undici#4058; seen here, +200 MiB
 * for a 200 MiB blob), and a stream could not be re-sent after a 401.
 */

/** The transport, or anything that lends it (tests, other modules). */
export type BlobTransport = Pick<RegistryTransport, 'send' | 'baseUrl' | 'timeoutMs'>;

export interface UploadBlobOptions {
  /**
   * The blob's digest when the caller knows it already. With it, a blob the
   * registry holds is not uploaded again (a Readable is then destroyed
   * unread), and a stream whose bytes hash to something else is refused
   * before it is committed.
   */
  digest?: string;
  /** Expected length in bytes; a stream of another length is refused before it is committed. */
  size?: number;
}

export interface UploadedBlob {
  digest: string;
  size: number;
  /** false when the registry already had it and nothing was sent. */
  uploaded: boolean;
}

export interface OpenedBlob {
  /** The blob's bytes; errors (RegistryError 502 DIGEST_INVALID) at the end if they do not hash to the digest asked for. */
  stream: Readable;
  /** From Content-Length; undefined if the registry (or the storage it redirected to) did not say. */
  size: number | undefined;
}

const OCTET_STREAM = 'application/octet-stream';
/** One PATCH of a streamed upload: 1 GiB is 256 requests, and memory stays near a few times this size (200 MiB and 600 MiB uploads both peaked at +65 MiB RSS here). */
export const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;
/** Per chunk: 4 MiB in 2 minutes is 35 KB/s. */
const CHUNK_TIMEOUT_MS = 120_000;
/**
 * Bytes of a download between two young-generation collections (openBlob).
 * 4 MiB: about 8 MiB of dead chunks at a time; 16 MiB was no better than
 * none (V8's own GC on external memory came first).
 */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

/** A scavenge, when node runs with --expose-gc; nothing otherwise. */
function collectYoungGeneration(): void {
  globalThis.gc?.({ type: 'minor' });
}

export function pushScope(name: string): string {
  // The registry's own challenge for a blob upload names both actions; the same string keeps the token cache hit.
  return `repository:${name}:pull,push`;
}

function pullScope(name: string): string {
  return `repository:${name}:pull`;
}

/** The blob's length when the registry holds it in <name>, else undefined. */
export async function statBlob(t: BlobTransport, name: string, digest: string): Promise<number | undefined> {
  checkName(name);
  checkDigest(digest);
  const path = `/v2/${name}/blobs/${digest}`;
  const res = await t.send(path, { method: 'HEAD', scope: pullScope(name) });
  await res.body?.cancel();
  if (res.status === 404) return undefined;
  if (!res.ok) throw await errorFromResponse(res, `HEAD ${path}`);
  const length = Number(res.headers.get('content-length'));
  return Number.isSafeInteger(length) && length >= 0 ? length : 0;
}

/** HEAD /v2/<name>/blobs/<digest>: whether an upload can be skipped. */
export async function blobExists(t: BlobTransport, name: string, digest: string): Promise<boolean> {
  return (await statBlob(t, name, digest)) !== undefined;
}

export async function uploadBlob(t: BlobTransport, name: string, source: Readable | Buffer, opts: UploadBlobOptions = {}): Promise<UploadedBlob> {
  checkName(name);
  if (opts.digest !== undefined) {
    checkDigest(opts.digest);
    if (!opts.digest.startsWith('sha256:')) {
      throw new RegistryError(400, `blob not pushed: dockhook pushes sha256 digests only, not ${opts.digest.split(':')[0]}`, { code: 'DIGEST_INVALID' });
    }
  }
  if (opts.size !== undefined && !(Number.isSafeInteger(opts.size) && opts.size >= 0)) {
    throw new RegistryError(400, `invalid blob size ${JSON.stringify(opts.size)}: expected a whole number of bytes`, { code: 'SIZE_INVALID' });
  }

  let known = opts.digest;
  if (Buffer.isBuffer(source)) {
    const own = sha256(source);
    if (known && known !== own) throw mismatch(`the bytes given have digest ${own}, not ${known}`);
    if (opts.size !== undefined && opts.size !== source.length) throw sizeMismatch(source.length, opts.size);
    known = own;
  }

  if (known) {
    const existing = await statBlob(t, name, known);
    if (existing !== undefined) {
      if (!Buffer.isBuffer(source)) source.destroy();
      return { digest: known, size: Buffer.isBuffer(source) ? source.length : opts.size ?? existing, uploaded: false };
    }
  }

  // Also where the push token is fetched and cached: the PATCHes and the PUT then send it up front.
  const location = await startUpload(t, name);
  if (Buffer.isBuffer(source)) {
    const url = withDigest(location, known!);
    const res = await t.send(url, { method: 'PUT', headers: { 'content-type': OCTET_STREAM }, body: new Uint8Array(source), scope: pushScope(name) });
    await finish(res, name, known!, `PUT ${redact(url)}`);
    return { digest: known!, size: source.length, uploaded: true };
  }

  const streamed = await streamPatch(t, name, location, source);
  const problem =
    opts.size !== undefined && streamed.size !== opts.size ? sizeMismatch(streamed.size, opts.size)
    : opts.digest && streamed.digest !== opts.digest ? mismatch(`the stream's bytes have digest ${streamed.digest}, not ${opts.digest}`)
    : undefined;
  if (problem) {
    await cancelUpload(t, name, streamed.location);
    throw problem;
  }
  const url = withDigest(streamed.location, streamed.digest);
  const res = await t.send(url, { method: 'PUT', headers: { 'content-type': OCTET_STREAM, 'content-length': '0' }, scope: pushScope(name) });
  await finish(res, name, streamed.digest, `PUT ${redact(url)}`);
  return { digest: streamed.digest, size: streamed.size, uploaded: true };
}

/**
 * GET /v2/<name>/blobs/<digest> as a stream, never buffered. fetch follows
 * the registry's redirect (S3, GCS or a CDN behind distribution) and drops
 * the Authorization header when it leads to another origin, as a presigned
 * URL needs. The timeout covers the wait for the answer, not the download:
 * a slow reader is not an error. Destroying the stream aborts the request.
 *
 * Memory: a chunk at a time is in flight (the reader's backpressure reaches
 * the socket), but every chunk is a new ArrayBuffer (the socket's read, and
 * fetch's copy of it) that dies as soon as it is passed on, and V8 frees
 * those only at a GC. On its own it lets them pile up to about 30 MiB before
 * the GC it starts on external memory (an incremental mark-compact) frees
 * them, at any blob size or reader pace. So the stream asks for a
 * young-generation collection (a scavenge, about a millisecond) every
 * COLLECT_EVERY_BYTES when node exposes gc (--expose-gc, the Dockerfile's
 * CMD): the dead chunks then stay under about 8 MiB instead of 30, with less
 * CPU, at the same speed (bench/results/2026-12-02-multi-platform-artifact-rss*.md).
 */
export async function openBlob(t: BlobTransport, name: string, digest: string): Promise<OpenedBlob> {
  checkName(name);
  checkDigest(digest);
  const path = `/v2/${name}/blobs/${digest}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException(`no answer within ${Math.round(t.timeoutMs / 1000)} s`, 'TimeoutError')), t.timeoutMs);
  let res: Response;
  try {
    res = await t.send(path, { scope: pullScope(name), signal: abort.signal });
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw new RegistryError(404, `blob ${digest} is not in ${name} on the registry`, {
      code: 'BLOB_UNKNOWN',
      hint: 'it was deleted (by retention, tag deletion or garbage collection) after it was pushed: build again to push it anew',
    });
  }
  if (!res.ok) throw await errorFromResponse(res, `GET ${path}`);
  if (!res.body) throw new RegistryError(502, `registry answered GET ${path} without a body`);

  const length = Number(res.headers.get('content-length') ?? NaN);
  const algorithm = digest.split(':')[0]!;
  const hash = createHash(algorithm);
  let uncollected = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      uncollected += chunk.length;
      if (uncollected >= COLLECT_EVERY_BYTES) {
        uncollected = 0;
        collectYoungGeneration();
      }
      done(null, chunk);
    },
    flush(done) {
      const got = `${algorithm}:${hash.digest('hex')}`;
      done(got === digest ? null : new RegistryError(502, `registry served ${name}@${digest} with bytes whose digest is ${got}`, { code: 'DIGEST_INVALID' }));
    },
  });
  const body = Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>);
  // pipeline: destroying `check` (a client that went away) destroys `body`, which cancels the download.
  const stream = pipeline(body, check, () => undefined);
  stream.once('close', () => abort.abort());
  return { stream, size: Number.isSafeInteger(length) ? length : undefined };
}

async function startUpload(t: BlobTransport, name: string): Promise<string> {
  const path = `/v2/${name}/blobs/uploads/`;
  const res = await t.send(path, { method: 'POST', headers: { 'content-length': '0' }, scope: pushScope(name) });
  if (res.status !== 202) {
    if (res.status === 405) {
      await res.body?.cancel();
      throw new RegistryError(405, `registry refused to start an upload to ${name}: it is read-only (or a pull-through cache)`, {
        code: 'UNSUPPORTED',
        hint: 'point REGISTRY_URL at a registry that accepts pushes (maintenance.readonly off, no proxy.remoteurl)',
      });
    }
    if (res.status === 403) {
      const err = await errorFromResponse(res, `POST ${path}`);
      throw new RegistryError(403, `${err.message}: the registry user may not push to ${name}`, { code: err.code, hint: 'give REGISTRY_USERNAME push access to this repository' });
    }
    if (res.ok) await res.body?.cancel();
    throw res.ok ? new RegistryError(502, `registry answered ${res.status} to POST ${path}, expected 202 with an upload location`) : await errorFromResponse(res, `POST ${path}`);
  }
  await res.body?.cancel();
  return uploadLocation(t, res, `POST ${path}`);
}

/** The next URL of the upload session, from Location; same origin only, since credentials go with it. */
function uploadLocation(t: BlobTransport, res: Response, what: string): string {
  const header = res.headers.get('location');
  if (!header) throw new RegistryError(502, `registry answered ${what} without a Location for the upload`);
  const url = new URL(header, t.baseUrl + '/');
  const origin = new URL(t.baseUrl).origin;
  if (url.origin !== origin) {
    throw new RegistryError(502, `registry sent the upload to another address (${url.origin}) than REGISTRY_URL (${origin})`, {
      hint: "set REGISTRY_URL to the address the registry calls itself (its http.host setting), or remove http.host from the registry's config",
    });
  }
  return url.href;
}

/**
 * The stream as consecutive PATCHes of at most UPLOAD_CHUNK_BYTES each
 * (Content-Range: <start>-<end>, the chunked upload of the API spec), hashed
 * and counted on the way. The source is read only while a chunk fills, so
 * memory stays at about one chunk (two while fetch holds its copy) whatever
 * the blob's size. Each chunk is plain bytes: it can be re-sent after a 401
 * (a token that expired during a long upload) and times out on its own.
 */
async function streamPatch(t: BlobTransport, name: string, location: string, source: Readable): Promise<{ location: string; digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let next = location;
  const chunk = Buffer.allocUnsafe(UPLOAD_CHUNK_BYTES);
  let filled = 0;

  const send = async (): Promise<void> => {
    const body = new Uint8Array(chunk.buffer, chunk.byteOffset, filled);
    const what = `PATCH ${redact(next)}`;
    const end = size + filled - 1;
    const res = await t.send(next, {
      method: 'PATCH',
      headers: { 'content-type': OCTET_STREAM, 'content-range': `${size}-${end}` },
      body,
      scope: pushScope(name),
      // Generous: a chunk is minutes of a slow uplink, but a stalled one must still end.
      signal: AbortSignal.timeout(Math.max(t.timeoutMs, CHUNK_TIMEOUT_MS)),
    });
    if (res.status !== 202) {
      const err = res.ok ? new RegistryError(502, `registry answered ${res.status} to ${what}, expected 202`) : await errorFromResponse(res, what);
      if (res.ok) await res.body?.cancel();
      throw err;
    }
    await res.body?.cancel();
    // Range: 0-<last byte held>. Anything else means the registry lost (or invented) part of the upload.
    const range = res.headers.get('range');
    if (range && range !== `0-${end}`) {
      throw new RegistryError(502, `registry holds bytes ${range} of the upload to ${name} after ${what}, expected 0-${end}`, { code: 'BLOB_UPLOAD_INVALID', hint: 'retry the push' });
    }
    next = uploadLocation(t, res, what);
    size += filled;
    filled = 0;
  };

  try {
    for await (const piece of source as AsyncIterable<Buffer | string>) {
      let data = typeof piece === 'string' ? Buffer.from(piece) : piece;
      hash.update(data);
      while (data.length > 0) {
        const n = data.copy(chunk, filled);
        filled += n;
        data = data.subarray(n);
        if (filled === chunk.length) await send();
      }
    }
    if (filled > 0) await send();
  } catch (err) {
    source.destroy();
    await cancelUpload(t, name, next);
    throw err;
  }
  return { location: next, digest: `sha256:${hash.digest('hex')}`, size };
}

async function finish(res: Response, name: string, digest: string, what: string): Promise<void> {
  if (res.status !== 201) {
    if (res.ok) await res.body?.cancel();
    throw res.ok ? new RegistryError(502, `registry answered ${res.status} to ${what}, expected 201`) : await errorFromResponse(res, what);
  }
  await res.body?.cancel();
  const stored = res.headers.get('docker-content-digest');
  if (stored && stored !== digest) {
    throw new RegistryError(502, `registry stored the blob pushed to ${name} as ${stored}, but its bytes have digest ${digest}`, { code: 'DIGEST_INVALID' });
  }
}

/** DELETE the upload session so the registry frees its partial data now instead of at its purge; best effort. */
async function cancelUpload(t: BlobTransport, name: string, location: string): Promise<void> {
  try {
    const res = await t.send(location, { method: 'DELETE', scope: pushScope(name) });
    await res.body?.cancel();
  } catch {
    // the registry purges abandoned uploads itself (uploadpurging, a week by default)
  }
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.href;
}

/** An upload URL without its query: _state is an opaque, signed session blob that has no place in messages. */
function redact(url: string): string {
  const u = new URL(url);
  return u.pathname;
}

function checkDigest(digest: string): void {
  if (!isValidDigest(digest)) {
    throw new RegistryError(400, `invalid digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`, { code: 'DIGEST_INVALID' });
  }
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function mismatch(detail: string): RegistryError {
  return new RegistryError(400, `blob not pushed: ${detail}`, { code: 'DIGEST_INVALID', hint: 'the file changed while it was being read, or the digest given for it is wrong' });
}

function sizeMismatch(actual: number, expected: number): RegistryError {
  return new RegistryError(400, `blob not pushed: it is ${actual} bytes, not the ${expected} given for it`, { code: 'SIZE_INVALID', hint: 'the file changed while it was being read, or the size given for it is wrong' });
}
