import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import Docker from 'dockerode';
import { extract, pack } from 'tar-stream';
import { COPY_OUT_LABEL, copyOut, removeLeftovers } from '../../src/engine/copy-out.js';
import { BuildError } from '../../src/errors.js';
import { ARM64_BUSYBOX_IMAGE, ensureArm64BusyboxImage } from '../support/arm64-busybox.js';
import { ensureBusyboxImage } from '../support/base-image.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** A build context of one Dockerfile, as a tar stream. */
function dockerfileContext(text: string): NodeJS.ReadableStream {
  const p = pack();
  p.entry({ name: 'Dockerfile' }, text);
  p.finalize();
  return p as unknown as NodeJS.ReadableStream;
}

async function build(docker: Docker, tag: string, dockerfile: string): Promise<void> {
  const stream = await docker.buildImage(dockerfileContext(dockerfile), { t: tag, rm: true, forcerm: true, version: '1' });
  const log: string[] = [];
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(new Error(`${err.message}\n${log.join('')}`)) : resolve()), (e: { stream?: string; error?: string }) => {
      if (e.stream) log.push(e.stream);
    }),
  );
}

interface Entry { name: string; type: string; content: string }

/** Gunzips and untars a copyOut stream: its entries, and the tar's length. */
async function untar(stream: Readable): Promise<{ entries: Entry[]; tarBytes: number }> {
  const entries: Entry[] = [];
  let tarBytes = 0;
  const ex = extract();
  ex.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    body.on('end', () => {
      entries.push({ name: header.name, type: header.type ?? 'file', content: Buffer.concat(chunks).toString('utf8') });
      next();
    });
  });
  const gunzip = createGunzip();
  gunzip.on('data', (c: Buffer) => {
    tarBytes += c.length;
  });
  await pipeline(stream, gunzip, ex);
  return { entries, tarBytes };
}

/** Reads a stream to its end, throwing its error. */
async function drain(stream: Readable): Promise<void> {
  await pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() }));
}

async function leftovers(): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-a', '-q', '--filter', `label=${COPY_OUT_LABEL}`]);
  return stdout.split('\n').filter(Boolean);
}

describe('copyOut: files out of a built image through GET /containers/{id}/archive (real engine)', () => {
  const docker = new Docker();
  const token = randomUUID();
  const run8 = token.slice(0, 8);
  const scratchTag = `dockhook-test/copy-out-scratch:${run8}`;
  const appTag = `dockhook-test/copy-out-app:${run8}`;
  const big = 256 * 1024; // /app/big.bin, for the size limit

  before(async () => {
    await ensureBusyboxImage();
    // Unique RUN lines: the engine's cache must not hand back another run's layers.
    await build(docker, scratchTag, [
      'FROM busybox AS build',
      `RUN mkdir -p /out/sub && echo "hello ${token}" > /out/hello.txt && printf 'nested ${token}' > /out/sub/nested.txt`,
      'FROM scratch',
      'COPY --from=build /out /dist',
      '',
    ].join('\n'));
    await build(docker, appTag, [
      'FROM busybox',
      `RUN mkdir -p /app/dist && echo "app ${token}" > /app/dist/index.html && head -c ${big} /dev/zero > /app/big.bin`,
      'CMD ["/bin/sh"]',
      '',
    ].join('\n'));
  });

  afterEach(async () => {
    assert.deepEqual(await leftovers(), [], 'no container labelled dockhook.copy-out is left');
  });

  after(async () => {
    for (const tag of [scratchTag, appTag]) await docker.getImage(tag).remove({ force: true }).catch(() => {});
  });

  it('copies a directory out of a FROM scratch output stage (no CMD, no ENTRYPOINT): the files and their content', async () => {
    const info = await docker.getImage(scratchTag).inspect();
    assert.equal(info.Config.Cmd, null, 'the image has no command');
    assert.equal(info.Config.Entrypoint, null);

    const { stream, done } = await copyOut(docker, scratchTag, '/dist', { maxBytes: MiB, name: 'dist' });
    const { entries, tarBytes } = await untar(stream);
    const result = await done;
    assert.equal(result.tarBytes, tarBytes, 'done counts the tar the stream carried');
    assert.equal(result.removeError, undefined);
    const files = Object.fromEntries(entries.filter((e) => e.type === 'file').map((e) => [e.name, e.content]));
    assert.deepEqual(files, { 'dist/hello.txt': `hello ${token}\n`, 'dist/sub/nested.txt': `nested ${token}` });
    const dirs = entries.filter((e) => e.type === 'directory').map((e) => e.name.replace(/\/$/, '')).sort();
    assert.deepEqual(dirs, ['dist', 'dist/sub'], 'the tar is rooted at the path\'s last component');
  });

  it('copies out of an image that has a command too, and one file as a one-entry tar', async () => {
    const dir = await copyOut(docker, appTag, '/app/dist', { maxBytes: MiB, name: 'site' });
    const got = await untar(dir.stream);
    await dir.done;
    assert.deepEqual(got.entries.filter((e) => e.type === 'file').map((e) => [e.name, e.content]), [['dist/index.html', `app ${token}\n`]]);

    const one = await copyOut(docker, appTag, '/app/dist/index.html', { maxBytes: MiB });
    const file = await untar(one.stream);
    await one.done;
    assert.deepEqual(file.entries.map((e) => [e.name, e.type, e.content]), [['index.html', 'file', `app ${token}\n`]]);
  });

  it('fails on a path that does not exist in the image, naming it', async () => {
    await assert.rejects(copyOut(docker, scratchTag, '/app/dist', { maxBytes: MiB, name: 'dist' }), (err: unknown) => {
      assert.ok(err instanceof BuildError);
      assert.equal(err.message, '/app/dist does not exist in the image; check "path" of artifact dist in dockerInfo.json');
      assert.equal(err.transient, false);
      return true;
    });
  });

  it('refuses a relative path before any engine call', async () => {
    const calls: string[] = [];
    const spy = new Proxy(docker, {
      get(target, prop, receiver) {
        calls.push(String(prop));
        return Reflect.get(target, prop, receiver);
      },
    });
    for (const path of ['app/dist', './dist', '']) {
      await assert.rejects(copyOut(spy, scratchTag, path, { maxBytes: MiB, name: 'dist' }), (err: unknown) => {
        assert.ok(err instanceof BuildError);
        assert.match(err.message, path ? /^"path" of artifact dist must be absolute \(start with \/\)/ : /is empty/);
        return true;
      });
    }
    assert.deepEqual(calls, [], 'the engine was not asked anything');
  });

  it('aborts a directory whose tar grows over maxBytes, counting as it streams, with the limit', async () => {
    const maxBytes = 64 * 1024;
    const { stream, done } = await copyOut(docker, appTag, '/app', { maxBytes, name: 'dist' });
    const expected = `artifact dist is over ARTIFACT_MAX_BYTES (${maxBytes} bytes)`;
    await assert.rejects(drain(stream), (err: unknown) => {
      assert.ok(err instanceof BuildError, String(err));
      assert.equal(err.message, expected);
      return true;
    });
    await assert.rejects(done, { name: 'BuildError', message: expected });
  });

  it('fails a single file over maxBytes before streaming it, from the size in X-Docker-Container-Path-Stat', async () => {
    await assert.rejects(copyOut(docker, appTag, '/app/big.bin', { maxBytes: 1000, name: 'blob' }), {
      name: 'BuildError',
      message: `artifact blob is over ARTIFACT_MAX_BYTES (1000 bytes): ${big} bytes`,
    });
    // The same file under a limit it fits in: the tar is a little larger than the file.
    const ok = await copyOut(docker, appTag, '/app/big.bin', { maxBytes: big + 4096 });
    await drain(ok.stream);
    const { tarBytes } = await ok.done;
    assert.ok(tarBytes > big && tarBytes <= big + 4096, String(tarBytes));
  });

  it('removes the container when the reader destroys the stream or the signal aborts', async () => {
    const first = await copyOut(docker, appTag, '/app', { maxBytes: 10 * MiB });
    first.stream.destroy();
    await assert.rejects(first.done);

    const ac = new AbortController();
    const second = await copyOut(docker, appTag, '/app', { maxBytes: 10 * MiB, signal: ac.signal });
    second.stream.once('data', () => ac.abort());
    await assert.rejects(drain(second.stream), { name: 'AbortError' });
    await assert.rejects(second.done, { name: 'AbortError' });

    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(copyOut(docker, appTag, '/app', { maxBytes: MiB, signal: aborted.signal }), { name: 'AbortError' });
  });

  it('copies out of an image of another platform with platform=linux/arm64, and refuses a platform the image is not', async () => {
    const base = await ensureArm64BusyboxImage(docker);
    assert.equal(base, ARM64_BUSYBOX_IMAGE);
    const { stream, done } = await copyOut(docker, base, '/bin/busybox', { maxBytes: 16 * MiB, platform: 'linux/arm64' });
    const chunks: Buffer[] = [];
    const ex = extract();
    ex.on('entry', (_h, body, next) => {
      body.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      body.on('end', next);
    });
    await pipeline(stream, createGunzip(), ex);
    await done;
    const elf = Buffer.concat(chunks);
    assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.equal(elf.readUInt16LE(18), 0xb7, 'e_machine is EM_AARCH64');

    await assert.rejects(copyOut(docker, base, '/bin/busybox', { maxBytes: 16 * MiB, platform: 'linux/amd64' }), {
      name: 'BuildError',
      message: `image ${base} is not of platform linux/amd64 (wanted linux/amd64, actual: linux/arm64)`,
    });
  });

  it('removeLeftovers removes labelled containers older than the age given, and keeps younger ones', async () => {
    const c = await docker.createContainer({ Image: appTag, Cmd: ['true'], Labels: { [COPY_OUT_LABEL]: '1' } });
    assert.deepEqual(await removeLeftovers(docker), [], 'a container made just now is kept by default');
    assert.deepEqual(await leftovers(), [c.id.slice(0, 12)]);
    assert.deepEqual(await removeLeftovers(docker, { olderThanMs: 0 }), [c.id]);
  });
});
