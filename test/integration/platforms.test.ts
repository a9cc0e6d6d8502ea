import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { nativePlatform, platformProblem, runnablePlatforms } from '../../src/engine/platforms.js';
import { ensureArm64BusyboxImage } from '../support/arm64-busybox.js';

const run = promisify(execFile);

/** A build context of one Dockerfile, as a tar stream. */
function dockerfileContext(text: string): NodeJS.ReadableStream {
  const p = pack();
  p.entry({ name: 'Dockerfile' }, text);
  p.finalize();
  return p as unknown as NodeJS.ReadableStream;
}

describe('platforms (real engine, real QEMU through binfmt_misc)', () => {
  const docker = new Docker();

  before(async () => {
    // Idempotent: installs qemu-user-static and enables the handlers only when they are missing.
    await run('bash', ['scripts/ensure-docker.sh']);
  });

  it('lists the engine\'s own platform as native and linux/arm64 and linux/arm/v7 as emulated', async () => {
    const { stdout } = await run('uname', ['-m']);
    const r = await runnablePlatforms(docker);
    assert.equal(r.native, nativePlatform('linux', stdout.trim()));
    assert.equal(r.architecture, stdout.trim());
    assert.ok(Array.isArray(r.emulated), `emulation is known for the local engine: ${JSON.stringify(r)}`);
    if (r.native !== 'linux/arm64') assert.ok(r.emulated.includes('linux/arm64'), JSON.stringify(r));
    assert.ok(r.emulated.includes('linux/arm/v7'), JSON.stringify(r));
    assert.equal(r.problems, undefined, 'every registered handler is usable');
    assert.equal(platformProblem('linux/arm64', r), undefined);
    assert.equal(platformProblem(r.native, r), undefined);
  });

  it('builds for linux/arm64 with a RUN step that runs under QEMU: the image says aarch64', async () => {
    const base = await ensureArm64BusyboxImage(docker);
    assert.equal((await docker.getImage(base).inspect()).Architecture, 'arm64');
    assert.equal(await ensureArm64BusyboxImage(docker), base, 'a second call reuses the image');

    const tag = `dockhook-test/arch:${randomUUID().slice(0, 8)}`;
    try {
      const stream = await docker.buildImage(dockerfileContext(`FROM ${base}\nRUN uname -m > /arch\n`), { t: tag, platform: 'linux/arm64', nocache: true, rm: true, version: '1' });
      const log: string[] = [];
      await new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(new Error(`${err.message}\n${log.join('')}`)) : resolve()), (e: { stream?: string }) => {
          if (e.stream) log.push(e.stream);
        }),
      );
      const info = await docker.getImage(tag).inspect();
      assert.equal(`${info.Os}/${info.Architecture}`, 'linux/arm64');
      const { stdout } = await run('docker', ['run', '--rm', '--platform', 'linux/arm64', tag, 'cat', '/arch']);
      assert.equal(stdout.trim(), 'aarch64');
    } finally {
      await docker.getImage(tag).remove({ force: true }).catch(() => {});
    }
  });

  it('names the fix for a platform no handler runs', async () => {
    const r = await runnablePlatforms(docker);
    assert.ok(Array.isArray(r.emulated));
    const emulated = r.emulated;
    // ensure-docker.sh enables only qemu-aarch64 and qemu-arm; a host may have more.
    const missing = ['linux/riscv64', 'linux/s390x', 'linux/ppc64le', 'linux/mips64le', 'linux/loong64'].find((p) => !emulated.includes(p) && p !== r.native);
    if (!missing) return; // every handler is registered here: nothing to ask for
    const qemu = { 'linux/riscv64': 'riscv64', 'linux/s390x': 's390x', 'linux/ppc64le': 'ppc64le', 'linux/mips64le': 'mips64el', 'linux/loong64': 'loongarch64' }[missing];
    assert.equal(
      platformProblem(missing, r),
      `${missing} cannot run on this engine (${r.architecture}, no QEMU handler for ${qemu}): install qemu-user-static, then \`mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc\` and \`update-binfmts --enable qemu-${qemu}\``,
    );
  });
});
