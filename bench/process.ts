/**
 * Child processes for the bench: every server (dockhook, the bare middleware,
 * the fake GitHub) runs in its own `node --import tsx` process, so the load
 * generator never shares an event loop with what it measures. The parent talks
 * to a child over the IPC channel: a tiny request/answer protocol.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat (10 ms resolution at CLK_TCK=100). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the file)
  return (ticks * 1000) / CLK_TCK;
}

const CLK_TCK = Number(process.env.BENCH_CLK_TCK ?? 100);

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

type Handler = (args: any) => unknown;

interface Call {
  id: number;
  op: string;
  args: unknown;
}

interface Answer {
  id: number;
  result?: unknown;
  error?: string;
}

/** Child side: answer the parent's calls; `ready` is sent once, first. */
export function serveRpc(handlers: Record<string, Handler>, ready: Record<string, unknown>): void {
  if (!process.send) throw new Error('bench server scripts are started by bench/run.ts (they need an IPC channel)');
  process.on('message', (message: Call) => {
    const handler = handlers[message.op];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown op ${message.op}`);
        return handler(message.args);
      })
      .then(
        (result) => process.send!({ id: message.id, result } satisfies Answer),
        (err: unknown) => process.send!({ id: message.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Answer),
      );
  });
  // The parent gone means the bench is over: never outlive it.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true, ...ready });
}

export interface ServerProcess<R = Record<string, unknown>> {
  pid: number;
  child: ChildProcess;
  ready: R;
  logPath: string;
  call<T = unknown>(op: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop (op "stop"), then waits for its exit; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Output folder of compileServers(): run the compiled script with plain node. Without it, tsx runs the .ts file. */
  compiledDir?: string;
  env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeArgs?: string[];
  /** stdout and stderr of the child go here (dockhook's JSON log, as under systemd or docker logs). */
  logPath: string;
  readyTimeoutMs?: number;
}

/** Forks `script` (e.g. bench/servers/dockhook.ts) and resolves once it sent its ready message. */
export async function spawnServer<R = Record<string, unknown>>(script: string, opts: SpawnOptions): Promise<ServerProcess<R>> {
  // A file descriptor, not a pipe: the child writes its log straight to the file, without
  // passing through this process (which is the load generator during the ingest bench).
  const fd = openSync(opts.logPath, 'a');
  const path = opts.compiledDir ? join(opts.compiledDir, script.replace(/\.ts$/, '.js')) : join(REPO_ROOT, script);
  const child = fork(path, [], {
    cwd: REPO_ROOT,
    execArgv: [...(opts.compiledDir ? [] : ['--import', 'tsx']), ...(opts.nodeArgs ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
      for (const p of pending.values()) p.reject(new Error(`${script} ${exited}; see ${opts.logPath}`));
      pending.clear();
      resolve();
    });
  });

  const ready = await new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready within ${opts.readyTimeoutMs ?? 60_000} ms; see ${opts.logPath}`)), opts.readyTimeoutMs ?? 60_000);
    child.on('message', (message: Answer & { ready?: boolean }) => {
      if (message.ready) {
        clearTimeout(timer);
        resolve(message as unknown as R);
        return;
      }
      const p = pending.get(message.id);
      if (!p) return;
      pending.delete(message.id);
      if (message.error !== undefined) p.reject(new Error(`${script}: ${message.error}`));
      else p.resolve(message.result);
    });
    child.once('exit', async () => {
      clearTimeout(timer);
      const tail = (await readFile(opts.logPath, 'utf8').catch(() => '')).slice(-3000);
      reject(new Error(`${script} ${exited} before it was ready:\n${tail}`));
    });
  });

  const call = <T>(op: string, args?: unknown, timeoutMs = 600_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error(`${script} ${exited}`));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${script}: ${op} took over ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      child.send({ id, op, args } satisfies Call);
    });

  return {
    pid: child.pid!,
    child,
    ready,
    logPath: opts.logPath,
    call,
    async stop(graceMs = 15_000) {
      if (exited) return;
      const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
      call('stop', undefined, graceMs).catch(() => undefined);
      await exitedPromise;
      clearTimeout(force);
    },
  };
}
