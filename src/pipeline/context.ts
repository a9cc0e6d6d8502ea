// Turns GitHub's source tarball (.tar.gz from `git archive --prefix=<owner>-<repo>-<sha7>/`)
// into a Docker build context tar, streaming entry by entry so memory stays bounded
// whatever the repository size.
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import tar, { type Header } from 'tar-stream';
import balenaIgnore from '@balena/dockerignore';

export interface ContextOptions {
  /** Repository folder that is the build context; '' = root. Posix, normalized, no leading './' or trailing '/'. */
  context: string;
  /** Dockerfile path relative to the context (e.g. 'Dockerfile' or 'docker/prod.Dockerfile'). */
  dockerfile: string;
  /** Content of the context's .dockerignore, if the repository has one (fetched separately before the stream starts). */
  dockerignore?: string;
}

export interface ContextStats {
  /** Non-directory entries written to the context (files, symlinks, hardlinks). */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Whether `<dockerfile>` is in the context. */
  dockerfileFound: boolean;
  /** Entries inside the context dropped by .dockerignore, plus hardlinks whose target is not sent. */
  ignored: number;
}

export interface ContextResult {
  stream: Readable;
  /** Resolves when the whole input has been consumed and the output tar finalized. */
  done: Promise<ContextStats>;
}

const clean = (p: string) => (p === '' ? '' : posix.normalize(p).replace(/^\/+|\/+$/g, '').replace(/^\.$/, ''));

/**
 * Builds the "is this path excluded?" predicate exactly as the docker CLI does for a tar
 * context (docker/cli build + moby archive.TarWithOptions), given paths relative to the context.
 */
export function dockerignoreMatcher(dockerignore: string | undefined, dockerfile: string, keepBuildFiles = true): (rel: string) => boolean {
  // Docker's Go matcher is case-sensitive on Linux; @balena/dockerignore defaults to ignorecase=true.
  // CJS module whose typings declare `export default`: under NodeNext the function is `.default`.
  if (!dockerignore?.trim()) return () => false;
  const ig = balenaIgnore.default({ ignorecase: false });
  const lines = (dockerignore ?? '').replace(/^\uFEFF/, '').split(/\r?\n/);
  ig.add(lines);
  // Exception patterns, cleaned the way moby stores them (needed for the SkipDir rule below).
  const exceptions = lines
    .map((l) => l.trim())
    .filter((l) => l.startsWith('!') && l.slice(1).trim() !== '')
    .map((l) => clean(l.slice(1).trim()));
  // docker/cli TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore are always sent.
  for (const keep of keepBuildFiles ? ['.dockerignore', dockerfile] : []) {
    if (ig.ignores(keep)) {
      ig.add('!' + keep);
      exceptions.push(keep);
    }
  }
  // The library memoizes results in a plain `{}` checked with `in`: a root entry named
  // `constructor` or `toString` would hit Object.prototype and never be ignored. Give it a
  // prototype-less cache (set after the last add(), which resets the cache).
  Object.assign(ig, { _cache: Object.create(null) });
  return (rel) => {
    // moby walks the tree and never descends into an excluded directory unless some `!`
    // pattern literally starts with that directory: `node_modules` + `!**/keep` keeps nothing.
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (ig.ignores(dir) && !exceptions.some((p) => (p + '/').startsWith(dir + '/'))) return true;
    }
    return ig.ignores(rel);
  };
}

/**
 * The Dockerfile and .dockerignore travel in the context so that the engine
 * can read them, then moby's classic builder deletes the ones .dockerignore
 * excludes before any COPY. BuildKit reads them apart from the context, so
 * dockhook leaves these out of BuildKit's context itself.
 */
export function excludedBuildFiles(dockerignore: string | undefined, dockerfile: string): string[] {
  const excluded = dockerignoreMatcher(dockerignore, clean(dockerfile), false);
  return ['.dockerignore', clean(dockerfile)].filter((f) => excluded(f));
}

/**
 * Git records two modes for a file (0644, 0755), but GitHub's tarball carries
 * git archive's umask (0664, 0775). A checkout, and so `docker build` on it,
 * has 0644 / 0755 files and 0755 folders: give the context those.
 */
export function checkoutMode(type: string | null | undefined, mode: number | undefined): number {
  if (type === 'directory') return 0o755;
  if (type === 'symlink') return 0o777;
  return (mode ?? 0) & 0o111 ? 0o755 : 0o644;
}

export function createBuildContext(tarball: Readable, options: ContextOptions): ContextResult {
  const context = clean(options.context);
  const dockerfile = clean(options.dockerfile);
  const excluded = dockerignoreMatcher(options.dockerignore, dockerfile);
  const stats: ContextStats = { files: 0, bytes: 0, dockerfileFound: false, ignored: 0 };

  // Archive name -> path relative to the context; null when outside it, unsafe, or the context root.
  const toContextPath = (name: string): string | null => {
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) return null; // would escape once extracted
    const rel = parts.slice(1).join('/'); // drop the single `<owner>-<repo>-<sha7>/` folder
    if (context === '') return rel === '' ? null : rel;
    return rel.startsWith(context + '/') ? rel.slice(context.length + 1) : null;
  };

  const gunzip = createGunzip();
  const extract = tar.extract();
  const pack = tar.pack();
  const out = new PassThrough();
  let settled = false;
  let resolveDone!: (s: ContextStats) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<ContextStats>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  // Callers that only consume `stream` get the error there; don't crash them with an unhandled rejection.
  done.catch(() => {});

  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    out.destroy(err); // first, so the consumer sees this error rather than a premature close
    for (const s of [tarball, gunzip, extract, pack]) s.destroy();
    rejectDone(err);
  };
  const corrupt = (e: Error) => fail(new Error(`source tarball is corrupt: ${e.message}`, { cause: e }));

  tarball.on('error', (e) => fail(new Error(`source tarball download failed: ${e.message}`, { cause: e })));
  gunzip.on('error', corrupt);
  extract.on('error', corrupt);
  pack.on('error', (e: Error) => fail(new Error(`build context packing failed: ${e.message}`, { cause: e })));
  // The consumer (docker engine upload) going away must stop the download, not leave it paused forever.
  out.on('close', () => fail(new Error('build context stream closed before the source tarball was consumed')));

  // tar-stream consumes git's pax_global_header (the commit id) itself; any other odd entry
  // type is dropped below, as is anything at the archive root (only the top folder lives there).
  extract.on('entry', (header, entry, next) => {
    // A truncated input destroys the current entry too; without a listener that would be an
    // uncaught 'error' (crash) when the entry is being drained. The extract error reports it.
    entry.on('error', () => {});
    const skip = (counted: boolean) => {
      if (counted) stats.ignored++;
      entry.on('end', () => next()); // drain so the extractor can move on
      entry.resume();
    };
    const rel = toContextPath(header.name);
    const supported = ['file', 'contiguous-file', 'directory', 'symlink', 'link'].includes(header.type ?? '');
    // A symlink without target would make tar-stream wait for the target as entry data: skip it.
    if (rel === null || !supported || (header.type === 'symlink' && !header.linkname)) return skip(false);
    if (excluded(rel)) return skip(true);

    let linkname = header.linkname ?? undefined;
    if (header.type === 'link') {
      // Hardlink targets are archive paths too: re-root them, and drop links whose target isn't sent.
      const target = linkname ? toContextPath(linkname) : null;
      if (target === null || excluded(target)) return skip(true);
      linkname = target;
    }
    const isFile = header.type === 'file' || header.type === 'contiguous-file';
    const h: Partial<Header> & { name: string } = {
      name: header.type === 'directory' ? rel + '/' : rel, // as docker's own tar writer names directories
      type: isFile ? 'file' : header.type,
      mode: checkoutMode(header.type, header.mode),
      mtime: header.mtime,
      size: isFile ? header.size : 0,
      linkname,
      uid: header.uid,
      gid: header.gid,
      uname: header.uname,
      gname: header.gname,
    };
    if (header.type !== 'directory') stats.files++;
    if (rel === dockerfile && header.type !== 'directory') stats.dockerfileFound = true;
    // Callback fires once the entry is fully written into the pack: only then read the next one.
    const sink = pack.entry(h, (err) => {
      if (err) return fail(new Error(`build context packing failed: ${err.message}`, { cause: err }));
      if (isFile) stats.bytes += header.size ?? 0;
      next();
    });
    // streamx pipe with a callback: errors surface through the extract/pack handlers instead.
    if (isFile) entry.pipe(sink, () => {});
    else entry.resume();
  });

  extract.on('finish', () => {
    if (settled) return;
    pack.finalize();
  });
  pack.on('end', () => {
    if (settled) return;
    settled = true;
    resolveDone(stats);
  });

  tarball.pipe(gunzip).pipe(extract);
  pack.pipe(out);
  return { stream: out, done };
}
