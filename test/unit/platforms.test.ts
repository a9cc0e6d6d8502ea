import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Docker from 'dockerode';
import {
  describePlatforms,
  emulatedFrom,
  nativePlatform,
  normalizePlatform,
  parseBinfmtEntry,
  platformProblem,
  qemuArchFor,
  remoteEngine,
  runnablePlatforms,
  type RunnablePlatforms,
} from '../../src/engine/platforms.js';

// /proc/sys/fs/binfmt_misc/qemu-aarch64 and qemu-arm as the kernel printed them on this
// machine (Debian 12, qemu-user-static 1:7.2+dfsg-7+deb12u18, after `update-binfmts --enable`).
const AARCH64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`;
const ARM = `enabled
interpreter /usr/libexec/qemu-binfmt/arm-binfmt-P
flags: PF
offset 0
magic 7f454c4601010100000000000000000002002800
mask ffffffffffffff00fffffffffffffffffeffffff
`;
// qemu-arm after `echo 0 > /proc/sys/fs/binfmt_misc/qemu-arm` (seen here).
const ARM_DISABLED = ARM.replace(/^enabled/, 'disabled');
// Older Debian/Ubuntu packages: the static binary itself as interpreter, no F flag
// (the kernel would look /usr/bin/qemu-riscv64-static up inside each container).
const RISCV64_NO_F = `enabled
interpreter /usr/bin/qemu-riscv64-static
flags: OC
offset 0
magic 7f454c460201010000000000000000000200f300
mask ffffffffffffff00fffffffffffffffffeffffff
`;

const runnable = (over: Partial<RunnablePlatforms> = {}): RunnablePlatforms => ({
  native: 'linux/amd64', architecture: 'x86_64', emulated: ['linux/arm/v6', 'linux/arm/v7', 'linux/arm64'], binfmt: 'mounted', ...over,
});

describe('platforms: parsing and naming', () => {
  it('normalises the engine\'s architecture to an OCI platform', () => {
    assert.equal(nativePlatform('linux', 'x86_64'), 'linux/amd64');
    assert.equal(nativePlatform('linux', 'aarch64'), 'linux/arm64');
    assert.equal(nativePlatform('linux', 'armv7l'), 'linux/arm/v7');
    assert.equal(nativePlatform('linux', 'armv6l'), 'linux/arm/v6');
    assert.equal(nativePlatform('linux', 'amd64'), 'linux/amd64', 'Podman reports Go\'s names');
    assert.equal(nativePlatform('linux', 'i686'), 'linux/386');
    assert.equal(nativePlatform('linux', 's390x'), 'linux/s390x');
    assert.equal(nativePlatform(undefined, 'riscv64'), 'linux/riscv64');
    assert.equal(nativePlatform('windows', 'x86_64'), 'windows/amd64');
  });

  it('normalises requested platforms', () => {
    assert.equal(normalizePlatform('linux/arm64/v8'), 'linux/arm64');
    assert.equal(normalizePlatform('linux/arm'), 'linux/arm/v7');
    assert.equal(normalizePlatform('linux/arm/v6'), 'linux/arm/v6');
    assert.equal(normalizePlatform('Linux/x86_64'), 'linux/amd64');
    assert.equal(normalizePlatform('linux/sparc64'), 'linux/sparc64');
    assert.equal(qemuArchFor('linux/arm/v7'), 'arm');
    assert.equal(qemuArchFor('linux/arm64'), 'aarch64');
    assert.equal(qemuArchFor('linux/sparc64'), undefined);
  });

  it('parses a binfmt_misc entry', () => {
    assert.deepEqual(parseBinfmtEntry('qemu-aarch64', AARCH64), {
      name: 'qemu-aarch64', enabled: true, interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', flags: 'PF',
    });
    assert.equal(parseBinfmtEntry('qemu-arm', ARM_DISABLED).enabled, false);
    assert.deepEqual(parseBinfmtEntry('qemu-riscv64', RISCV64_NO_F).flags, 'OC');
    assert.equal(parseBinfmtEntry('qemu-x', 'enabled\ninterpreter /x\n').flags, '', 'no flags line');
    // Registered by hand without flags (seen here: the kernel prints "flags: " and nothing after it).
    assert.deepEqual(parseBinfmtEntry('qemu-arm', 'enabled\ninterpreter /usr/bin/qemu-arm-static\nflags: \noffset 0\n'), {
      name: 'qemu-arm', enabled: true, interpreter: '/usr/bin/qemu-arm-static', flags: '',
    });
  });

  it('counts enabled entries with the F flag, and says why the others do not count', () => {
    const entries = [parseBinfmtEntry('qemu-aarch64', AARCH64), parseBinfmtEntry('qemu-arm', ARM)];
    assert.deepEqual(emulatedFrom(entries, 'linux/amd64'), { emulated: ['linux/arm/v6', 'linux/arm/v7', 'linux/arm64'], unusable: {} });

    const mixed = emulatedFrom([
      parseBinfmtEntry('qemu-aarch64', AARCH64),
      parseBinfmtEntry('qemu-arm', ARM_DISABLED),
      parseBinfmtEntry('qemu-riscv64', RISCV64_NO_F),
      parseBinfmtEntry('qemu-sparc', AARCH64), // a handler for no platform dockhook names
    ], 'linux/amd64', (p) => p !== '/usr/bin/qemu-riscv64-static');
    assert.deepEqual(mixed.emulated, ['linux/arm64']);
    assert.equal(mixed.unusable['linux/arm/v7'], 'the binfmt_misc handler qemu-arm is disabled');
    assert.match(mixed.unusable['linux/riscv64'], /qemu-riscv64 has no F flag and its interpreter \/usr\/bin\/qemu-riscv64-static is missing/);

    // On an arm64 host a qemu-aarch64 entry adds nothing: that platform is native.
    assert.deepEqual(emulatedFrom([parseBinfmtEntry('qemu-aarch64', AARCH64)], 'linux/arm64').emulated, []);
  });
});

describe('platforms: platformProblem', () => {
  it('is undefined for the native platform and for an emulated one', () => {
    assert.equal(platformProblem('linux/amd64', runnable()), undefined);
    assert.equal(platformProblem('linux/arm64', runnable()), undefined);
    assert.equal(platformProblem('linux/arm64/v8', runnable()), undefined);
    assert.equal(platformProblem('linux/arm', runnable()), undefined);
  });

  it('names the engine, the missing handler and the fix', () => {
    assert.equal(
      platformProblem('linux/arm64', runnable({ emulated: [] })),
      'linux/arm64 cannot run on this engine (x86_64, no QEMU handler for aarch64): install qemu-user-static, then `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc` and `update-binfmts --enable qemu-aarch64`',
    );
    assert.match(platformProblem('linux/arm/v7', runnable({ emulated: [], binfmt: 'not mounted' }))!, /\(x86_64, binfmt_misc is not mounted, no QEMU handler for arm\): .*update-binfmts --enable qemu-arm`$/);
    assert.match(platformProblem('linux/arm/v7', runnable({ emulated: ['linux/arm64'], unusable: { 'linux/arm/v7': 'the binfmt_misc handler qemu-arm is disabled' } }))!, /\(x86_64, the binfmt_misc handler qemu-arm is disabled\)/);
    assert.match(platformProblem('linux/riscv64', runnable())!, /^linux\/riscv64 cannot run on this engine \(x86_64, no QEMU handler for riscv64\)/);
    assert.match(platformProblem('linux/sparc64', runnable())!, /QEMU has no handler dockhook knows for it/);
    assert.match(platformProblem('windows/amd64', runnable())!, /it runs linux containers/);
  });

  it('claims nothing when emulation is unknown (a remote engine decides for itself)', () => {
    assert.equal(platformProblem('linux/riscv64', runnable({ emulated: 'unknown' })), undefined);
    assert.match(platformProblem('windows/amd64', runnable({ emulated: 'unknown' }))!, /linux containers/);
    assert.equal(describePlatforms(runnable({ emulated: 'unknown' })), 'linux/amd64 (native); emulated platforms unknown');
    assert.equal(describePlatforms(runnable()), 'linux/amd64 (native), linux/arm/v6, linux/arm/v7, linux/arm64 (QEMU)');
    assert.equal(describePlatforms(runnable({ emulated: [] })), 'linux/amd64 (native) only');
  });
});

describe('platforms: runnablePlatforms from a binfmt_misc folder', () => {
  // A Docker whose info() answers as this machine's engine did; no engine is asked.
  const fakeDocker = (modem: Record<string, unknown> = { socketPath: '/var/run/docker.sock' }) =>
    ({ modem, info: async () => ({ OSType: 'linux', Architecture: 'x86_64' }) }) as unknown as Docker;

  it('reads the entries, and says when binfmt_misc is not mounted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockhook-binfmt-'));
    try {
      const notMounted = await runnablePlatforms(fakeDocker(), { binfmtDir: dir, inContainer: async () => false });
      assert.deepEqual(notMounted.emulated, []);
      assert.equal(notMounted.binfmt, 'not mounted');
      assert.match(notMounted.problems!, /binfmt_misc is not mounted/);
      assert.match(platformProblem('linux/arm64', notMounted)!, /binfmt_misc is not mounted/);

      const inContainer = await runnablePlatforms(fakeDocker(), { binfmtDir: dir, inContainer: async () => true });
      assert.equal(inContainer.emulated, 'unknown');

      await writeFile(join(dir, 'status'), 'enabled\n');
      await writeFile(join(dir, 'register'), '');
      const none = await runnablePlatforms(fakeDocker(), { binfmtDir: dir });
      assert.deepEqual(none.emulated, []);
      assert.match(none.problems!, /no QEMU handler is registered/);

      await writeFile(join(dir, 'qemu-aarch64'), AARCH64);
      await writeFile(join(dir, 'qemu-arm'), ARM_DISABLED);
      await mkdir(join(dir, 'qemu-gone')); // unreadable as a file: skipped
      const r = await runnablePlatforms(fakeDocker(), { binfmtDir: dir });
      assert.equal(r.native, 'linux/amd64');
      assert.equal(r.architecture, 'x86_64');
      assert.deepEqual(r.emulated, ['linux/arm64']);
      assert.equal(r.problems, 'the binfmt_misc handler qemu-arm is disabled');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports emulation as unknown for a remote engine', async () => {
    assert.equal(remoteEngine(new Docker({ socketPath: '/var/run/docker.sock' })), undefined);
    assert.equal(remoteEngine(new Docker({ host: '127.0.0.1', port: 2376, protocol: 'https' })), undefined);
    assert.equal(remoteEngine(new Docker({ host: 'build-1.lan', port: 2376, protocol: 'https' })), 'https://build-1.lan:2376');
    const r = await runnablePlatforms(fakeDocker({ host: 'build-1.lan', port: 2375, protocol: 'http' }), { binfmtDir: '/nonexistent' });
    assert.equal(r.emulated, 'unknown');
    assert.match(r.problems!, /remote \(http:\/\/build-1\.lan:2375\)/);
  });
});
