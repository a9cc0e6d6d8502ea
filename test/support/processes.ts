import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The command line of every process on this machine (build steps of either builder are host processes). */
export async function processArgs(): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'args='], { maxBuffer: 8 * 1024 * 1024 });
  return stdout.split('\n');
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `from | to`, as a shell pipe: resolves when `to` exits 0, else rejects with both commands' stderr. */
export function pipeCommands(from: { cmd: string; args: string[] }, to: { cmd: string; args: string[]; env?: NodeJS.ProcessEnv }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const source = spawn(from.cmd, from.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = spawn(to.cmd, to.args, { env: to.env ?? process.env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    source.stderr.on('data', (d: Buffer) => (stderr += d));
    sink.stderr.on('data', (d: Buffer) => (stderr += d));
    source.stdout.pipe(sink.stdin);
    source.on('error', reject);
    sink.on('error', reject);
    sink.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} failed (exit ${code}): ${stderr.trim()}`))));
  });
}
