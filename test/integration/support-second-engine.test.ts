import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { ensureSecondEngine } from '../support/second-engine.js';

const run = promisify(execFile);
const docker0 = async () => (await run('ip', ['-4', 'addr', 'show', 'docker0'])).stdout.match(/inet \S+/g)?.join(' ');

/** dockerode's own build (no dockhook code: this tests the engine); version 1 is the classic builder, 2 BuildKit (dockerode opens the session). */
async function build(docker: Docker, dir: string, tag: string, version: '1' | '2'): Promise<void> {
  const stream = await docker.buildImage(Readable.from(pack(dir)), { t: tag, version } as Docker.ImageBuildOptions);
  const events = await new Promise<{ error?: string }[]>((resolve, reject) => docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))));
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`build (version ${version}) failed: ${failed.error}`);
}

test('ensureSecondEngine: both builders run a RUN step on the second engine, and the first engine is untouched', async () => {
  const before = await docker0();
  assert.ok(before, 'the first engine has its docker0 address');
  const t0 = Date.now();
  const engine = await ensureSecondEngine();
  console.log(`ensureSecondEngine took ${Date.now() - t0} ms`);
  assert.equal(engine.dockerHost, `unix://${engine.socketPath}`);
  assert.equal(await ensureSecondEngine(), engine, 'memoised');

  const dir = await mkdtemp(join(tmpdir(), 'dockhook-engine2-test-'));
  const tag = `dockhook-engine2-test:${randomBytes(4).toString('hex')}`;
  const first = new Docker();
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo hi > /x\n');
    const builds = {
      classic: { version: '1', marker: /^\/bin\/sh -c echo hi > \/x$/ },
      buildkit: { version: '2', marker: /^RUN \/bin\/sh -c echo hi > \/x # buildkit$/ },
    } as const;
    for (const [builder, b] of Object.entries(builds)) {
      const ref = `${tag}-${builder}`;
      await build(engine.docker, dir, ref, b.version);
      // The history line tells which builder made the image.
      const history = await engine.docker.getImage(ref).history();
      assert.ok(history.some((h: { CreatedBy: string }) => b.marker.test(h.CreatedBy)), `${builder}: ${JSON.stringify(history.map((h: { CreatedBy: string }) => h.CreatedBy))}`);
      const { stdout } = await run('docker', ['run', '--rm', ref, 'cat', '/x'], { env: { ...process.env, DOCKER_HOST: engine.dockerHost } });
      assert.equal(stdout, 'hi\n', `${builder}: the RUN step ran`);
      await assert.rejects(first.getImage(ref).inspect(), /no such image/i, `${builder}: not on the first engine`);
    }
  } finally {
    for (const builder of ['classic', 'buildkit']) await engine.docker.getImage(`${tag}-${builder}`).remove().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(await docker0(), before, "the first engine's docker0 kept its address");
});
