/**
 * Compiles the bench servers (and, through their imports, dockhook's src/ and
 * the fake GitHub) with tsc, so every server runs as `npm start` runs dockhook:
 * plain `node` on JavaScript, without tsx's loader in the process (which would
 * add its own memory and start-up work to what is measured).
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './process.js';

const execFileP = promisify(execFile);

/** Returns the output folder; bench/servers/x.ts is then <out>/bench/servers/x.js. */
export async function compileServers(outDir: string): Promise<{ outDir: string; warnings: string }> {
  let warnings = '';
  try {
    await execFileP(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(REPO_ROOT, 'bench', 'tsconfig.servers.json'), '--outDir', outDir], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    // Type errors still emit JavaScript; only a missing output is fatal.
    warnings = String((err as { stdout?: string }).stdout ?? err).trim();
  }
  for (const script of ['dockhook', 'octokit-floor', 'github']) {
    await access(join(outDir, 'bench', 'servers', `${script}.js`)).catch(() => {
      throw new Error(`tsc did not produce bench/servers/${script}.js:\n${warnings}`);
    });
  }
  return { outDir, warnings };
}
