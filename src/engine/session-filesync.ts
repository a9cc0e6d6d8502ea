import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { GO_MODE_DIR, GO_MODE_SYMLINK, PACKET_DATA, PACKET_ERR, PACKET_FIN, PACKET_REQ, PACKET_STAT, type Packet, type Stat } from './session-protocol.js';

/**
 * The sending half of BuildKit's file sync (fsutil's DiffCopy), the way the
 * docker CLI sends a build context: every entry's stat in walk order, then
 * the content of each file the engine asks for, by its index.
 *
 * The folder already holds exactly what the build may see (.dockerignore was
 * applied when it was written), so the engine's exclude patterns are not
 * applied again; its follow-paths (the Dockerfile, .dockerignore) are.
 */

const CHUNK = 32 * 1024;

interface Entry {
  stat: Stat;
  abs: string;
}

// fsutil's receiver insists on its walk order: names sorted byte-wise within each folder, folders before their content.
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function walk(root: string, keep: (rel: string) => boolean): Promise<Entry[]> {
  const out: Entry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort(byteOrder);
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = await lstat(abs);
      const isDir = st.isDirectory();
      if (!keep(path)) continue;
      const perm = st.mode & 0o7777;
      const stat: Stat = { path, mode: perm, uid: 0, gid: 0, size: 0, modTime: st.mtimeMs * 1e6 };
      if (isDir) stat.mode = (GO_MODE_DIR | perm) >>> 0;
      else if (st.isSymbolicLink()) {
        stat.mode = (GO_MODE_SYMLINK | 0o777) >>> 0;
        stat.linkname = await readlink(abs);
      } else if (st.isFile()) stat.size = st.size;
      else continue; // sockets, fifos: nothing a build context holds
      out.push({ stat, abs });
      if (isDir) await visit(path);
    }
  };
  await visit('');
  return out;
}

/** follow-paths: only these paths, and the folders above them. */
function followFilter(paths: string[]): (rel: string) => boolean {
  if (paths.length === 0) return () => true;
  const wanted = paths.map((p) => p.replace(/^\/+|\/+$/g, ''));
  return (rel) => wanted.some((w) => w === rel || w.startsWith(`${rel}/`) || rel.startsWith(`${w}/`));
}

/** grpc-js joins a repeated metadata key's values with ", " (a path with ", " in it is rare enough to accept). */
function header(call: ServerDuplexStream<Packet, Packet>, name: string): string[] {
  return call.metadata
    .get(name)
    .flatMap((v) => String(v).split(', '))
    .filter((v) => v !== '');
}

/**
 * Serves one DiffCopy call from `dirs[dir-name]`. Resolves when the engine
 * said it has everything (FIN), rejects on a broken stream.
 */
export function serveDiffCopy(call: ServerDuplexStream<Packet, Packet>, dirs: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const name = header(call, 'dir-name')[0] ?? '';
    const root = dirs[name];
    const fail = (message: string) => {
      call.write({ type: PACKET_ERR, data: Buffer.from(message) });
      call.end();
      reject(new Error(message));
    };
    if (root === undefined) return fail(`no folder named ${JSON.stringify(name)} in this session`);
    const follow = [...header(call, 'followpaths'), ...header(call, 'include-patterns')];

    let entries: Entry[] | undefined;
    const requested: number[] = [];
    let sending = Promise.resolve();
    const sendFile = async (id: number) => {
      const entry = entries?.[id];
      if (!entry) throw new Error(`the engine asked for file #${id}, which was not sent`);
      for await (const chunk of createReadStream(entry.abs, { highWaterMark: CHUNK })) {
        // Respect the stream's back-pressure: a large context must not pile up in memory.
        if (!call.write({ type: PACKET_DATA, ID: id, data: chunk as Buffer })) await new Promise((r) => call.once('drain', r));
      }
      call.write({ type: PACKET_DATA, ID: id });
    };
    const queue = (id: number) => {
      sending = sending.then(() => sendFile(id)).catch((err: Error) => fail(`sending the build context failed: ${err.message}`));
    };

    call.on('data', (p: Packet) => {
      if (p.type === PACKET_REQ) {
        if (entries) queue(p.ID ?? 0);
        else requested.push(p.ID ?? 0);
      } else if (p.type === PACKET_FIN) {
        void sending.then(() => {
          call.write({ type: PACKET_FIN });
          call.end();
          resolve();
        });
      } else if (p.type === PACKET_ERR) {
        reject(new Error(`the engine stopped reading the build context: ${Buffer.from(p.data ?? []).toString()}`));
        call.end();
      }
    });
    call.on('error', reject);

    walk(root, followFilter(follow)).then(
      (list) => {
        entries = list;
        for (const e of list) call.write({ type: PACKET_STAT, stat: e.stat });
        call.write({ type: PACKET_STAT }); // no stat: the walk is over
        for (const id of requested.splice(0)) queue(id);
      },
      (err: Error) => fail(`reading the build context failed: ${err.message}`),
    );
  });
}
