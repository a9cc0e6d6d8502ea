export interface BuildLogWriter {
  line(text: string): void;
  /** Resolves once every line is stored (the file flushed, the last batch committed). */
  close(): Promise<void>;
}

/**
 * Every line of every build, numbered from 1 across attempts. Two homes:
 * files in DATA_DIR/logs (one host, SQLite) and PostgreSQL's build_logs table
 * (many hosts: any receiver reads and follows a build that any worker runs).
 */
export interface BuildLogs {
  /** One writer per build at a time (the worker holding its lease); a retry appends after the earlier attempts' lines. */
  writer(id: number): BuildLogWriter;
  /** True while a writer is open for the build, here or (PostgreSQL) on another host. */
  isOpen(id: number): boolean;
  read(id: number): Promise<string>;
  /**
   * Calls onLine(line, n) for every line after line `after`, in order. While a
   * writer is open: replays, then follows live until it closes (onEnd) and
   * returns the unsubscribe function. With no writer open: sends what is
   * stored and returns undefined (there is nothing to follow).
   */
  follow(id: number, after: number, onLine: (line: string, n: number) => void, onEnd: () => void): Promise<(() => void) | undefined>;
  /** Calls fn once, when the build's next writer opens (its next attempt); returns the unsubscribe function. */
  onOpen(id: number, fn: () => void): () => void;
  close?(): Promise<void>;
}

/**
 * The lines of a build log that are complete. A trailing piece without its
 * newline is still being written, so line numbers stay the same between a
 * page render and the live stream.
 */
export function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or an unfinished line
  return lines;
}

/** `<ISO time> <text>`, as every line is stored. */
export const stampLine = (text: string, at = new Date()) => `${at.toISOString()} ${text}`;
