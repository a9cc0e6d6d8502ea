import { createWriteStream } from 'node:fs';
import { chmod, link, mkdir, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/**
 * Writes a build context tar (what createBuildContext makes) into a folder,
 * for BuildKit's file sync, which reads files by path. Entries come from the
 * repository, so nothing is written through a symlink the tar made.
 */
export async function writeContextDir(context: Readable, dir: string): Promise<void> {
  const links = new Set<string>();
  const throughLink = (rel: string) => {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) if (links.has(parts.slice(0, i).join('/'))) return true;
    return false;
  };
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = h.name.replace(/\/+$/, '');
      const abs = join(dir, rel);
      if (rel === '' || rel.split('/').includes('..') || throughLink(rel)) {
        entry.resume();
        continue;
      }
      await mkdir(dirname(abs), { recursive: true });
      if (h.type === 'directory') {
        await mkdir(abs, { recursive: true });
        await chmod(abs, h.mode ?? 0o755);
        entry.resume();
      } else if (h.type === 'symlink') {
        await symlink(h.linkname ?? '', abs);
        links.add(rel);
        entry.resume();
      } else if (h.type === 'link') {
        const target = h.linkname ?? '';
        if (!target.split('/').includes('..') && !throughLink(target) && !links.has(target)) await link(join(dir, target), abs);
        entry.resume();
      } else {
        await pipeline(entry, createWriteStream(abs, { mode: h.mode ?? 0o644 }));
        await chmod(abs, h.mode ?? 0o644); // the umask may have taken bits
        if (h.mtime) await utimes(abs, h.mtime, h.mtime);
      }
    }
  })();
  context.pipe(extract);
  context.on('error', (err) => extract.destroy(err));
  await done;
}
