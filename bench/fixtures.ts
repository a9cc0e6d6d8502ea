/**
 * The git repositories the benches build: real repositories on disk (served
 * by the fake GitHub), with generated incompressible files, and commits whose
 * dates are set explicitly so every commit gives its files a distinct mtime
 * in `git archive` (no layer is shared by accident between two rounds).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { promisify } from 'node:util';
import { gitEnv } from '../test/support/git-repo.js';

const execFileP = promisify(execFile);

export interface BenchRepo {
  owner: string;
  name: string;
  dir: string;
  branch: string;
  /** Writes `files` and commits them; returns the new sha. */
  commit(files: Record<string, string | Buffer>, message?: string): Promise<string>;
}

let clock = Math.floor(Date.now() / 1000);
/** Strictly increasing commit times, one second apart. */
const nextDate = () => `${++clock} +0000`;

async function git(dir: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await execFileP('git', ['-C', dir, ...args], { env: { ...gitEnv, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

async function writeFiles(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), content);
  }
}

/** A repository under `parent` with `files` as its first commit. Objects are stored uncompressed: a 300 MB repository commits in seconds. */
export async function createBenchRepo(parent: string, owner: string, name: string, files: Record<string, string | Buffer>): Promise<BenchRepo> {
  const dir = await mkdtemp(join(parent, `repo-${name}-`));
  const branch = 'main';
  await git(dir, ['init', '--quiet', '-b', branch]);
  await git(dir, ['config', 'core.compression', '0']);
  const commit = async (changes: Record<string, string | Buffer>, message = 'bench commit'): Promise<string> => {
    await writeFiles(dir, changes);
    await git(dir, ['add', '-A']);
    const date = nextDate();
    await git(dir, ['-c', 'user.name=dockhook bench', '-c', 'user.email=bench@dockhook.invalid', '-c', 'commit.gpgsign=false', 'commit', '--quiet', '--allow-empty', '--no-verify', '-m', message], {
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
    });
    return git(dir, ['rev-parse', 'HEAD']);
  };
  await commit(files, 'initial');
  return { owner, name, dir, branch, commit };
}

/** `git archive <sha> | tar -x` into a fresh folder: the same files, modes and mtimes as the tarball GitHub serves. */
export async function checkout(repo: BenchRepo, sha: string, parent: string): Promise<string> {
  const dest = await mkdtemp(join(parent, `checkout-${repo.name}-`));
  await new Promise<void>((resolve, reject) => {
    const archive = spawn('git', ['-C', repo.dir, 'archive', '--format=tar', sha], { env: gitEnv, stdio: ['ignore', 'pipe', 'inherit'] });
    const tar = spawn('tar', ['-x', '-C', dest], { stdio: ['pipe', 'inherit', 'inherit'] });
    archive.stdout.pipe(tar.stdin);
    archive.on('error', reject);
    tar.on('error', reject);
    tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}`))));
  });
  return dest;
}

export const dockerInfo = (serviceName: string, version: string): string => JSON.stringify({ service_name: serviceName, version }, null, 2) + '\n';

/** Random (incompressible) bytes. */
export const noise = (bytes: number): Buffer => randomBytes(bytes);

/** Text that compresses like source code does (a few MB in total across files). */
function sourceText(i: number, bytes: number): string {
  const words = ['const', 'let', 'return', 'function', 'import', 'export', 'await', 'async', 'if', 'else', 'for', 'while', 'build', 'image', 'layer', 'registry'];
  let out = `// file ${i}\n`;
  let n = i;
  while (out.length < bytes) {
    n = (n * 1103515245 + 12345) & 0x7fffffff;
    out += `${words[n % words.length]} value${n % 997} = compute(${n % 89}, "${n.toString(36)}");\n`;
  }
  return out;
}

/**
 * The pipeline sample: about 4.5 MB (2 MB of binary assets, 2.5 MB of text in
 * 120 files), a Dockerfile with COPY and RUN. dockerInfo.json is not copied
 * into the image, so a commit that only bumps the version keeps the layer cache warm.
 */
export function sampleFiles(serviceName: string, version: string): Record<string, string | Buffer> {
  const files: Record<string, string | Buffer> = {
    Dockerfile: [
      'FROM busybox:latest',
      'COPY assets/ /app/assets/',
      'COPY src/ /app/src/',
      'RUN cd /app && find . -type f | sort | xargs md5sum > /app/MANIFEST && wc -l /app/MANIFEST',
      'CMD ["cat", "/app/MANIFEST"]',
      '',
    ].join('\n'),
    '.dockerignore': 'dockerInfo.json\n.git\n',
    'dockerInfo.json': dockerInfo(serviceName, version),
  };
  for (let i = 0; i < 4; i++) files[`assets/blob-${i}.bin`] = noise(512 * 1024);
  for (let i = 0; i < 120; i++) files[`src/module-${String(i).padStart(3, '0')}.js`] = sourceText(i, 21 * 1024);
  return files;
}

/** `totalBytes` of incompressible files (10 MiB each, the rest in 100 KiB files) plus a Dockerfile that copies one small file. */
export function bigContextFiles(totalBytes: number, serviceName: string, version: string, dockerfile: string): Record<string, string | Buffer> {
  const files: Record<string, string | Buffer> = { Dockerfile: dockerfile, 'dockerInfo.json': dockerInfo(serviceName, version) };
  const big = 10 * 1024 * 1024;
  const small = 100 * 1024;
  let left = totalBytes;
  let i = 0;
  while (left >= big + 10 * small) {
    files[`data/chunk-${String(i++).padStart(3, '0')}.bin`] = noise(big);
    left -= big;
  }
  for (let j = 0; left > 0; j++) {
    const n = Math.min(small, left);
    files[`data/small/part-${String(j).padStart(4, '0')}.bin`] = noise(n);
    left -= n;
  }
  return files;
}

/** One entry of a multi-image dockerInfo.json, as the file spells it. */
export interface ImageEntry {
  service_name: string;
  version: string;
  context?: string;
  depends_on?: string[];
  build_args?: Record<string, string>;
}

/** dockerInfo.json in the {"images": [...]} format. */
export const dockerInfoImages = (images: ImageEntry[]): string => JSON.stringify({ images }, null, 2) + '\n';

/**
 * A Dockerfile whose RUN step does real work (`dd` of `workMiB` zeros into
 * `sha256sum`, about 1.3 s for 200 MiB on the bench machine) and names `nonce`,
 * so a new nonce is a new RUN step the engine's cache cannot answer. `from`
 * is the FROM line(s); the context is copied to `dir` first, so a changed file
 * runs the step again too.
 */
export function workDockerfile(from: string, dir: string, nonce: string, workMiB: number): string {
  return [
    from,
    `COPY . ${dir}/`,
    `RUN echo ${nonce} > ${dir}/nonce && dd if=/dev/zero bs=1M count=${workMiB} 2>/dev/null | sha256sum > ${dir}/work.sha && sha256sum ${dir}/data.bin >> ${dir}/work.sha`,
    `CMD ["cat", "${dir}/work.sha"]`,
    '',
  ].join('\n');
}

/** The files of one image's context folder: its Dockerfile, a text file the benches change, 1 MiB of incompressible data. */
export function imageContextFiles(context: string, dockerfile: string, text: string, data: Buffer): Record<string, string | Buffer> {
  return { [`${context}/Dockerfile`]: dockerfile, [`${context}/${context}.txt`]: text, [`${context}/data.bin`]: data };
}
