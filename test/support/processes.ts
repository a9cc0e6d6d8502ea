import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The command line of every process on this machine (build steps of either builder are host processes). */
export async function processArgs(): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'args='], { maxBuffer: 8 * 1024 * 1024 });
  return stdout.split('\n');
}
