import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { docker, startHarness, type Harness } from '../support/harness.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';

const run = promisify(execFile);
const OWNER = 'octo-org';
const LONG = `deep/${'a'.repeat(60)}/${'b'.repeat(60)}.txt`; // over tar's 100-byte name field

// Every .dockerignore rule people trip over, with the Dockerfile and .dockerignore themselves listed.
const DOCKERIGNORE = [
  '# a comment, then the usual',
  '.git',
  'Dockerfile',
  '.dockerignore',
  '*.log',
  '!important.log',
  '**/*.tmp',
  '/root-only.txt',
  'secret?.txt',
  'build',
  '!build/keep',
  'docs/**',
  '!docs/public/*.md',
].join('\n');

const FILES: Record<string, string> = {
  'dockerInfo.json': JSON.stringify({ service_name: 'edge', version: '1.0.0' }),
  Dockerfile: 'FROM busybox:latest\nCOPY . /ctx\n',
  '.dockerignore': `${DOCKERIGNORE}\n`,
  'app.sh': '#!/bin/sh\necho app\n',
  'a.log': 'excluded\n',
  'important.log': 'kept by !\n',
  'x.tmp': 'excluded by **\n',
  'sub/y.tmp': 'excluded by **\n',
  'sub/z.txt': 'kept\n',
  'root-only.txt': 'excluded: leading / anchors at the root\n',
  'sub/root-only.txt': 'kept: not at the root\n',
  'secret1.txt': 'excluded by ?\n',
  'secret12.txt': 'kept: ? is one character\n',
  'build/out.bin': 'excluded\n',
  'build/keep/k.txt': 'kept: re-included inside an excluded folder\n',
  'docs/a.md': 'excluded\n',
  'docs/public/p.md': 'kept\n',
  'docs/public/p.txt': 'excluded\n',
  [LONG]: 'long name\n',
  'ünïcødé/日本語.txt': 'non-ASCII\n',
  'with space/file name.txt': 'spaces\n',
};

/** Names, types, modes and link targets of everything under /ctx, one line each. */
const LISTING = `cd /ctx && find . | sort | while IFS= read -r f; do printf '%s|%s|%s|%s\\n' "$f" "$(stat -c %F "$f")" "$(stat -c %a "$f")" "$(readlink "$f")"; done`;

async function listing(image: string): Promise<string[]> {
  return (await docker('run', '--rm', '--network', 'none', image, 'sh', '-c', LISTING)).split('\n');
}

/** `docker build` of a fresh clone, as a person would run it. */
async function dockerBuildOfClone(repo: GitRepo, tag: string): Promise<void> {
  const parent = await mkdtemp(join(tmpdir(), 'dockhook-clone-'));
  try {
    const clone = join(parent, 'clone');
    // A checkout takes the umask: 022, as on a developer's machine.
    await run('sh', ['-c', 'umask 022 && git clone --quiet "$0" "$1"', repo.dir, clone]);
    await run('docker', ['build', '--quiet', '-t', tag, clone], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

describe('the same files as `docker build` of a clone (edge-case repository, real engine)', () => {
  let repo: GitRepo;
  let reference: string[];

  before(async () => {
    repo = await createGitRepo(FILES);
    await chmod(join(repo.dir, 'app.sh'), 0o755);
    await symlink('app.sh', join(repo.dir, 'link-to-app'));
    await symlink('does-not-exist', join(repo.dir, 'dangling'));
    await symlink('sub', join(repo.dir, 'dir-link'));
    await repo.commit({}, 'symlinks and an executable');
    await dockerBuildOfClone(repo, 'dockhook-test/clone-classic:1');
    reference = await listing('dockhook-test/clone-classic:1');
  });
  after(async () => {
    await repo?.cleanup();
  });

  // The docker CLI's BuildKit needs the buildx plugin, which Debian's docker.io lacks: the reference is the classic builder's.
  it('the reference: docker build of a clone applies every rule', async () => {
    // What the rules above mean, so the comparison is not of two empty folders.
    const names = reference.map((line) => line.split('|')[0]);
    for (const kept of ['./important.log', './build/keep/k.txt', './docs/public/p.md', './secret12.txt', './sub/root-only.txt', `./${LONG}`, './ünïcødé/日本語.txt', './with space/file name.txt', './dangling'])
      assert.ok(names.includes(kept), `${kept} missing from docker build's image`);
    for (const dropped of ['./Dockerfile', './.dockerignore', './a.log', './x.tmp', './sub/y.tmp', './root-only.txt', './secret1.txt', './build/out.bin', './docs/a.md', './.git'])
      assert.ok(!names.includes(dropped), `${dropped} in docker build's image`);
    assert.ok(reference.includes('./app.sh|regular file|755|'));
    assert.ok(reference.includes('./sub/z.txt|regular file|644|'));
    assert.ok(reference.includes('./sub|directory|755|'));
    assert.ok(reference.includes('./dangling|symbolic link|777|does-not-exist'));
  });

  for (const builder of ['buildkit', 'classic'] as const) {
    describe(`dockhook, ${builder} builder`, () => {
      let h: Harness;
      before(async () => {
        h = await startHarness({ env: { BUILDER: builder } });
      });
      after(async () => {
        await h?.close();
      });

      it('builds an image whose files equal those of docker build on a clone', async () => {
        h.github.addRepo(OWNER, 'edge', repo);
        const build = await h.waitForBuild((await h.merge(OWNER, 'edge', repo.head())).body.build);
        assert.equal(build.state, 'succeeded', build.failure);
        assert.deepEqual(await listing(`${h.registry.host}/edge:1.0.0`), reference);
      });
    });
  }
});
