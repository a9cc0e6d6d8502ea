import { EventEmitter } from 'node:events';
import { createWriteStream, readFileSync, mkdirSync, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { completeLines, stampLine, type BuildLogs, type BuildLogWriter } from './build-logs.js';

interface Active {
  file: WriteStream;
  /** The whole log so far, earlier attempts included: line n is lines[n - 1]. */
  lines: string[];
}

/**
 * Every line of every build, in DATA_DIR/logs/<id>.log, numbered from 1 across
 * attempts. While a build writes, its log is also kept in memory, so a
 * follower replays from any line and subscribes in the same tick: nothing is
 * lost between the file (which lags behind) and the live lines.
 */
export class FileBuildLogs implements BuildLogs {
  private readonly dir: string;
  private readonly live = new EventEmitter();
  private readonly active = new Map<number, Active>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'logs');
    mkdirSync(this.dir, { recursive: true });
    this.live.setMaxListeners(0);
  }

  path(id: number): string {
    return join(this.dir, `${id}.log`);
  }

  writer(id: number): BuildLogWriter {
    // A retry appends to the same log; earlier attempts' lines keep their numbers. No writer is
    // open for this build now, so the file is complete.
    const lines = completeLines(readFileOrEmpty(this.path(id)));
    const entry: Active = { file: createWriteStream(this.path(id), { flags: 'a' }), lines };
    this.active.set(id, entry);
    this.live.emit(`open:${id}`);
    return {
      line: (text: string) => {
        for (const one of text.replace(/\r\n/g, '\n').split('\n')) {
          const stamped = stampLine(one);
          entry.file.write(`${stamped}\n`);
          entry.lines.push(stamped);
          this.live.emit(`line:${id}`, stamped, entry.lines.length);
        }
      },
      close: () =>
        new Promise<void>((resolve) => {
          // Open until the file is flushed: from then on the file alone is the whole log.
          entry.file.end(() => {
            if (this.active.get(id) === entry) this.active.delete(id);
            this.live.emit(`end:${id}`);
            resolve();
          });
        }),
    };
  }

  isOpen(id: number): boolean {
    return this.active.has(id);
  }

  async read(id: number): Promise<string> {
    try {
      return await readFile(this.path(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  /**
   * Calls onLine(line, n) for every line after line `after`, in order. While a
   * writer is open: replays from memory, then follows live until it closes
   * (onEnd) and returns the unsubscribe function. With no writer open: sends
   * the file's lines and returns undefined (there is nothing to follow).
   */
  async follow(id: number, after: number, onLine: (line: string, n: number) => void, onEnd: () => void): Promise<(() => void) | undefined> {
    if (!this.active.has(id)) {
      const lines = completeLines(await this.read(id));
      // A writer that opened while the file was read has all of it in memory: follow that instead.
      if (!this.active.has(id)) {
        for (let n = after + 1; n <= lines.length; n++) onLine(lines[n - 1]!, n);
        return undefined;
      }
    }
    const entry = this.active.get(id)!;
    for (let n = after + 1; n <= entry.lines.length; n++) onLine(entry.lines[n - 1]!, n);
    const lineEvent = `line:${id}`;
    const endEvent = `end:${id}`;
    const stop = () => {
      this.live.off(lineEvent, onLine);
      this.live.off(endEvent, end);
    };
    const end = () => {
      stop();
      onEnd();
    };
    this.live.on(lineEvent, onLine);
    this.live.on(endEvent, end);
    return stop;
  }

  /** Calls fn once, when the build's next writer opens (its next attempt); returns the unsubscribe function. */
  onOpen(id: number, fn: () => void): () => void {
    const event = `open:${id}`;
    this.live.once(event, fn);
    return () => this.live.off(event, fn);
  }
}

function readFileOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
