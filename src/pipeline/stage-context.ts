import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ContextResult, ContextStats } from './context.js';
import { writeContextDir } from './context-dir.js';

export interface StagedContext {
  dirs: { context: string; dockerfile: string };
  stats: ContextStats;
  /** The Dockerfile's text, for messages about its `# syntax=` line. */
  dockerfileText: string;
  remove(): Promise<void>;
}

/**
 * Lays the context out on disk for BuildKit: the Dockerfile in a folder of
 * its own, and the context without the build files .dockerignore excludes,
 * so that `COPY . /x` sees what it sees under `docker build`.
 */
export async function stageContext(context: ContextResult, dockerfile: string, excludedBuildFiles: string[]): Promise<StagedContext | { missingDockerfile: true; stats: ContextStats }> {
  const base = await mkdtemp(join(tmpdir(), 'dockhook-context-'));
  const remove = () => rm(base, { recursive: true, force: true });
  try {
    const dirs = { context: join(base, 'context'), dockerfile: join(base, 'dockerfile') };
    await mkdir(dirs.context);
    await Promise.all([writeContextDir(context.stream, dirs.context), context.done]);
    const stats = await context.done;
    if (!stats.dockerfileFound) {
      await remove();
      return { missingDockerfile: true, stats };
    }
    const target = join(dirs.dockerfile, dockerfile);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(join(dirs.context, dockerfile), target);
    for (const file of excludedBuildFiles) await rm(join(dirs.context, file), { force: true });
    return { dirs, stats, dockerfileText: await readFile(target, 'utf8'), remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
