import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BuildLogWriter {
  line(text: string): void;
  close(): Promise<void>;
}

/**
 * Every line of every build, in DATA_DIR/logs/<id>.log, plus live fan-out to
 * whoever follows a running build (the log endpoint's event stream).
 */
export class BuildLogs {
  private readonly dir: string;
  private readonly live = new EventEmitter();
  private readonly open = new Map<number, WriteStream>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'logs');
    mkdirSync(this.dir, { recursive: true });
    this.live.setMaxListeners(0);
  }

  path(id: number): string {
    return join(this.dir, `${id}.log`);
  }

  writer(id: number): BuildLogWriter {
    const file = createWriteStream(this.path(id), { flags: 'a' });
    this.open.set(id, file);
    return {
      line: (text: string) => {
        for (const one of text.replace(/\r\n/g, '\n').split('\n')) {
          const stamped = `${new Date().toISOString()} ${one}`;
          file.write(`${stamped}\n`);
          this.live.emit(`line:${id}`, stamped);
        }
      },
      close: () =>
        new Promise<void>((resolve) => {
          this.open.delete(id);
          file.end(() => {
            this.live.emit(`end:${id}`);
            resolve();
          });
        }),
    };
  }

  isOpen(id: number): boolean {
    return this.open.has(id);
  }

  async read(id: number): Promise<string> {
    try {
      return await readFile(this.path(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  /** Calls onLine for each new line until the build's writer closes; returns an unsubscribe function. */
  follow(id: number, onLine: (line: string) => void, onEnd: () => void): () => void {
    const lineEvent = `line:${id}`;
    const endEvent = `end:${id}`;
    const end = () => {
      stop();
      onEnd();
    };
    const stop = () => {
      this.live.off(lineEvent, onLine);
      this.live.off(endEvent, end);
    };
    this.live.on(lineEvent, onLine);
    this.live.on(endEvent, end);
    return stop;
  }
}
