import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import { createBuildContext, type ContextOptions } from '../../src/pipeline/context.js';

const PREFIX = 'octo-repo-abc1234/';

type Spec = string | { symlink: string } | { content: string; mode: number };

/** A real GitHub-style source tarball: `git archive --prefix=<owner>-<repo>-<sha7>/` of a fresh repository. */
function gitTarball(files: Record<string, Spec>): Readable {
  const dir = mkdtempSync(join(tmpdir(), 'dockhook-ctx-'));
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir });
  git('init', '-q');
  for (const [name, spec] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof spec === 'string') writeFileSync(p, spec);
    else if ('symlink' in spec) symlinkSync(spec.symlink, p);
    else {
      writeFileSync(p, spec.content);
      chmodSync(p, spec.mode);
    }
  }
  git('add', '-A');
  git('commit', '-qm', 'test');
  const child = spawn('git', ['archive', '--format=tar.gz', `--prefix=${PREFIX}`, 'HEAD'], { cwd: dir });
  child.on('close', () => rmSync(dir, { recursive: true, force: true }));
  return child.stdout;
}

/** A hand-made .tar.gz for cases git cannot produce (hardlinks, `..`). */
function customTarball(entries: Array<{ name: string; type?: 'file' | 'link' | 'directory'; linkname?: string; body?: string }>): Readable {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname }, e.body ?? '');
  pack.finalize();
  const gz = createGzip();
  pack.pipe(gz);
  return gz;
}

interface Out { name: string; type: string; mode: number; linkname: string | null; content: string }

async function collect(stream: Readable): Promise<Map<string, Out>> {
  const entries = new Map<string, Out>();
  const ex = tar.extract();
  ex.on('entry', (h, s, next) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => void chunks.push(c as Buffer));
    s.on('end', () => {
      entries.set(h.name, { name: h.name, type: h.type, mode: h.mode, linkname: h.linkname, content: Buffer.concat(chunks).toString() });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    ex.on('error', reject);
    ex.on('finish', () => resolve());
    stream.pipe(ex);
  });
  return entries;
}

async function run(input: Readable, options: Partial<ContextOptions> = {}) {
  const { stream, done } = createBuildContext(input, { context: '', dockerfile: 'Dockerfile', ...options });
  const entries = await collect(stream);
  return { entries, names: [...entries.keys()].sort(), stats: await done };
}

test('strips the top folder and the pax global header', async () => {
  const { entries, names, stats } = await run(gitTarball({ Dockerfile: 'FROM scratch\n', 'src/app.js': 'x', 'src/empty': '' }));
  assert.deepEqual(names, ['Dockerfile', 'src/', 'src/app.js', 'src/empty']);
  assert.equal(entries.get('Dockerfile')!.content, 'FROM scratch\n');
  assert.equal(entries.get('src/')!.type, 'directory');
  assert.ok(![...entries.keys()].some((n) => n.includes('pax_global_header') || n.startsWith(PREFIX)));
  assert.deepEqual(stats, { files: 3, bytes: 14, dockerfileFound: true, ignored: 0 });
});

test('re-roots a subfolder context and reports the Dockerfile', async () => {
  const files = {
    'README.md': 'r',
    'services/api/docker/prod.Dockerfile': 'FROM a',
    'services/api/main.go': 'package main',
    'services/web/index.html': '<p>',
  };
  const found = await run(gitTarball(files), { context: 'services/api', dockerfile: 'docker/prod.Dockerfile' });
  assert.deepEqual(found.names, ['docker/', 'docker/prod.Dockerfile', 'main.go']);
  assert.equal(found.stats.dockerfileFound, true);

  const missing = await run(gitTarball(files), { context: 'services/web', dockerfile: 'Dockerfile' });
  assert.deepEqual(missing.names, ['index.html']);
  assert.equal(missing.stats.dockerfileFound, false);
});

test('applies .dockerignore the way the docker CLI does', async () => {
  const dockerignore = [
    '# a comment, not a pattern',
    'node_modules', // a directory: everything below goes
    '*.log', // root only: Docker patterns are anchored at the context root
    '**/*.tmp', // any depth
    '!keep.log', // exception re-includes a file
    '/dist', // leading slash is the same as none
    'build',
    'docs', // excluded directory...
    '!docs/keep.md', // ...with an exception under it: descended into, only the exception kept
    'vendor',
    '!**/vendor.txt', // does not start with `vendor/`: Docker never descends, so nothing comes back
    '*.MD', // case-sensitive, like Docker on Linux
  ].join('\n');
  const { names, stats } = await run(
    gitTarball({
      Dockerfile: 'FROM a',
      '.dockerignore': dockerignore,
      '# a comment, not a pattern': 'c',
      'node_modules/x/index.js': 'x',
      'a.log': 'l',
      'keep.log': 'k',
      'src/b.log': 'l',
      'src/c.tmp': 't',
      'src/deep/d.tmp': 't',
      'e.tmp': 't',
      'dist/out.js': 'o',
      'src/dist/x.js': 'x',
      'build/x': 'x',
      'src/build/y': 'y',
      'docs/keep.md': 'k',
      'docs/other.md': 'o',
      'vendor/vendor.txt': 'v',
      'README.md': 'r',
    }),
    { dockerignore },
  );
  assert.deepEqual(names, [
    '# a comment, not a pattern',
    '.dockerignore',
    'Dockerfile',
    'README.md',
    'docs/keep.md',
    'keep.log',
    'src/',
    'src/b.log',
    'src/build/',
    'src/build/y',
    'src/deep/',
    'src/dist/',
    'src/dist/x.js',
  ]);
  // node_modules/ x/ index.js, a.log, c.tmp, d.tmp, e.tmp, dist/ out.js, build/ x, docs/ other.md, vendor/ vendor.txt
  assert.equal(stats.ignored, 15);
});

test('always sends the Dockerfile and .dockerignore, even when ignored', async () => {
  const dockerignore = '*\n';
  // `constructor`/`toString`: @balena/dockerignore's `{}` cache would say "not ignored" for these.
  const root = await run(
    gitTarball({ Dockerfile: 'FROM a', '.dockerignore': dockerignore, 'app.js': 'x', constructor: 'c', toString: 't' }),
    { dockerignore },
  );
  assert.deepEqual(root.names, ['.dockerignore', 'Dockerfile']);
  assert.equal(root.stats.dockerfileFound, true);

  const ignoreDir = 'docker\n';
  const nested = await run(
    gitTarball({ 'app/docker/prod.Dockerfile': 'FROM a', 'app/docker/secret': 's', 'app/.dockerignore': ignoreDir, 'app/x': 'x' }),
    { context: 'app', dockerfile: 'docker/prod.Dockerfile', dockerignore: ignoreDir },
  );
  assert.deepEqual(nested.names, ['.dockerignore', 'docker/prod.Dockerfile', 'x']);
  assert.equal(nested.stats.dockerfileFound, true);
});

test('preserves symlinks and executable mode', async () => {
  const { entries } = await run(
    gitTarball({ Dockerfile: 'FROM a', 'bin/run.sh': { content: '#!/bin/sh\n', mode: 0o755 }, 'bin/run': { symlink: 'run.sh' } }),
  );
  const link = entries.get('bin/run')!;
  assert.equal(link.type, 'symlink');
  assert.equal(link.linkname, 'run.sh');
  assert.equal(entries.get('bin/run.sh')!.mode & 0o111, 0o111);
  assert.equal(entries.get('Dockerfile')!.mode & 0o111, 0);
});

test('rewrites hardlinks, drops dangling ones and paths escaping with ..', async () => {
  const long = 'ctx/' + 'd'.repeat(120) + '/file.txt'; // needs a pax header: name must survive
  const { entries, names, stats } = await run(
    customTarball([
      { name: 'top/', type: 'directory' },
      { name: 'top/ctx/a.txt', body: 'A' },
      { name: 'top/ctx/secret.txt', body: 'S' },
      { name: 'top/outside.txt', body: 'O' },
      { name: `top/${long}`, body: 'L' },
      { name: 'top/ctx/hl', type: 'link', linkname: 'top/ctx/a.txt' },
      { name: 'top/ctx/hl-ignored', type: 'link', linkname: 'top/ctx/secret.txt' },
      { name: 'top/ctx/hl-outside', type: 'link', linkname: 'top/outside.txt' },
      { name: 'top/ctx/hl-escape', type: 'link', linkname: 'top/ctx/../../etc/passwd' },
      { name: 'top/ctx/../../evil', body: 'E' },
      { name: 'top/ctx/x/../y', body: 'Y' },
    ]),
    { context: 'ctx', dockerignore: 'secret.txt' },
  );
  assert.deepEqual(names, ['a.txt', long.slice(4), 'hl']);
  assert.equal(entries.get('hl')!.type, 'link');
  assert.equal(entries.get('hl')!.linkname, 'a.txt');
  assert.equal(stats.ignored, 4); // secret.txt and the three hardlinks whose target is not sent
});

async function expectCorrupt(input: Readable, dockerignore?: string) {
  const { stream, done } = createBuildContext(input, { context: '', dockerfile: 'Dockerfile', dockerignore });
  await assert.rejects(collect(stream), /source tarball is corrupt: /);
  await assert.rejects(done, /source tarball is corrupt: /);
}

test('corrupt input destroys the output with a clear error instead of hanging', { timeout: 20_000 }, async () => {
  const pack = tar.pack();
  pack.entry({ name: 'top/Dockerfile' }, 'FROM a');
  pack.entry({ name: 'top/big' }, randomBytes(200_000));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const tgz = gzipSync(Buffer.concat(chunks));

  await expectCorrupt(Readable.from([tgz.subarray(0, tgz.length / 2)])); // truncated gzip
  await expectCorrupt(Readable.from([Buffer.from('<html>rate limited</html>')])); // not gzip at all
  await expectCorrupt(Readable.from([])); // empty body
  await expectCorrupt(Readable.from([gzipSync(randomBytes(4096))])); // gzip of garbage: bad tar
  const cut = gzipSync(Buffer.concat(chunks).subarray(0, 100_000));
  await expectCorrupt(Readable.from([cut])); // tar cut mid-entry
  await expectCorrupt(Readable.from([cut]), 'big'); // ... while that entry is being drained (ignored)
});

test('a failing download and an abandoned output both settle', { timeout: 20_000 }, async () => {
  const failing = new Readable({ read() {} });
  const first = createBuildContext(failing, { context: '', dockerfile: 'Dockerfile' });
  failing.destroy(new Error('socket hang up'));
  await assert.rejects(first.done, /source tarball download failed: socket hang up/);

  const input = gitTarball({ Dockerfile: 'FROM a' });
  const second = createBuildContext(input, { context: '', dockerfile: 'Dockerfile' });
  second.stream.destroy();
  await assert.rejects(second.done, /closed before the source tarball was consumed/);
  assert.equal(input.destroyed, true);
});

test('streams a 200 MB source with bounded memory', { timeout: 300_000 }, async () => {
  const FILES = 8;
  const FILE_SIZE = 25 * 1024 * 1024;
  const block = randomBytes(64 * 1024); // repeated, but beyond deflate's 32 KB window: incompressible
  const generated = tar.pack();
  (async () => {
    generated.entry({ name: 'top/Dockerfile' }, 'FROM scratch\n');
    for (let i = 0; i < FILES; i++) {
      const sink = generated.entry({ name: `top/data/${i}.bin`, size: FILE_SIZE });
      await new Promise<void>((resolve, reject) => {
        let left = FILE_SIZE / block.length;
        const src = new Readable({ read() { this.push(left-- > 0 ? block : null); } });
        src.pipe(sink);
        sink.on('finish', resolve);
        sink.on('error', reject);
      });
    }
    generated.finalize();
  })();
  const gz = createGzip({ level: 1 });
  generated.pipe(gz);

  globalThis.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const { stream, done } = createBuildContext(gz, { context: '', dockerfile: 'Dockerfile' });
  let out = 0;
  for await (const chunk of stream) out += (chunk as Buffer).length;
  const stats = await done;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);

  const growthMb = (peak - start) / 1024 / 1024;
  console.log(`context: ${(out / 1024 / 1024).toFixed(0)} MB streamed, RSS growth ${growthMb.toFixed(1)} MB`);
  assert.equal(stats.bytes, FILES * FILE_SIZE + 13);
  assert.equal(stats.files, FILES + 1);
  assert.ok(out > FILES * FILE_SIZE);
  assert.ok(growthMb < 150, `RSS grew by ${growthMb.toFixed(1)} MB`);
});
