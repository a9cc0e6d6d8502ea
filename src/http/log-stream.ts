import type { Request, Response } from 'express';
import type { BuildLogs } from '../build-logs.js';
import type { BuildStore } from '../queue/store.js';
import { completeLines, withoutAnsi } from './log-lines.js';

export interface LogStreamDeps {
  store: BuildStore;
  logs: BuildLogs;
  /** During a shutdown a stream of a build that is not running ends, so the server can close. */
  isStopping: () => boolean;
}

export interface LogStreamOptions {
  /** Skip the first `after` lines (a page that already shows them, or EventSource's Last-Event-ID). */
  after: number;
  stripAnsi: boolean;
}

const HEARTBEAT_MS = 15_000;
const STOP_CHECK_MS = 1_000;
/** How soon to read the file again while it lags behind the live lines. */
const CATCH_UP_MS = 25;
/** While nothing new is said, a few re-reads pick up lines written just before we subscribed. */
const QUIET_RECHECK_MS = 200;
const QUIET_RECHECKS = 10;
/** A build that finished this recently may still be flushing its log file. */
const SETTLE_MS = 2_000;

const isFinal = (state: string | undefined) => state === 'succeeded' || state === 'failed';

/**
 * Largest m such that the last m lines of `file` (after `from`) are the first
 * m buffered live lines: where the file's history meets what we heard live.
 * Lines carry millisecond timestamps, so a false match needs two identical
 * lines in the same millisecond; the largest overlap is taken.
 */
function tailOverlap(file: string[], live: string[], from: number): number {
  for (let m = Math.min(file.length - from, live.length); m > 0; m--) {
    let same = true;
    for (let j = 0; j < m && same; j++) same = file[file.length - m + j] === live[j];
    if (same) return m;
  }
  return 0;
}

/**
 * Server-sent events for one build's log: the file so far, then live lines,
 * then `event: end` with the final state. Each line's event id is its line
 * number, so a reconnecting EventSource resumes where it stopped.
 *
 * Why it is not just "read the file, then follow": the file lags behind the
 * live lines (the write stream flushes later), so lines said between a read
 * and a subscription would be lost. Instead we subscribe first and buffer;
 * then read the file until it catches up with the first buffered line, send
 * the file up to there, then the buffer, then live lines as they come.
 */
class LogStream {
  private sent = 0;
  private fromFile = 0;
  private readonly buffer: string[] = [];
  private joined = false;
  /** The writer closed and flushed, and the build is over: the file is the whole log. */
  private fileComplete = false;
  private closed = false;
  private reading = false;
  private again = false;
  private quietRechecks = 0;
  private rereadPending = false;
  private unfollow: (() => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly res: Response,
    private readonly deps: LogStreamDeps,
    private readonly id: number,
    private readonly options: LogStreamOptions,
  ) {}

  start(): void {
    this.res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx would otherwise hold the events back in its buffer.
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
    this.res.write('retry: 3000\n\n');
    this.res.on('close', () => this.cleanup());
    this.subscribe();
    this.every(HEARTBEAT_MS, () => this.res.write(': keep-alive\n\n'));
    this.every(STOP_CHECK_MS, () => {
      if (this.deps.isStopping() && !this.deps.logs.isOpen(this.id)) {
        this.fileComplete = true;
        void this.reconcile();
      }
    });

    const build = this.deps.store.get(this.id);
    if (isFinal(build?.state) && !this.deps.logs.isOpen(this.id)) {
      // Over, and its writer is closing or long closed. If it is closing, the
      // end event comes within SETTLE_MS; if it closed before we subscribed, it never will.
      const wait = (build?.finishedAt ?? 0) + SETTLE_MS - Date.now();
      if (wait <= 0) this.fileComplete = true;
      else this.after(wait, () => {
        this.fileComplete = true;
        void this.reconcile();
      });
    }
    void this.reconcile();
  }

  private subscribe(): void {
    this.unfollow = this.deps.logs.follow(
      this.id,
      (line) => this.onLine(line),
      () => this.onEnd(),
    );
  }

  private onLine(line: string): void {
    if (this.closed) return;
    if (this.joined) return this.emit(line);
    this.buffer.push(line);
    if (this.buffer.length === 1) void this.reconcile();
  }

  private onEnd(): void {
    this.unfollow = undefined; // follow() has already removed its listeners
    if (this.closed) return;
    const state = this.deps.store.get(this.id)?.state;
    if (isFinal(state) || this.deps.isStopping()) {
      this.fileComplete = true;
    } else {
      // Queued again for a retry: the next attempt appends to the same log.
      this.subscribe();
    }
    if (this.joined && this.fileComplete) this.finish();
    else void this.reconcile();
  }

  /** Serialised: one file read at a time, and one more if something happened meanwhile. */
  private async reconcile(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        await this.reconcileOnce();
      } while (this.again && !this.closed);
    } catch (err) {
      this.res.write(`event: error\ndata: ${JSON.stringify({ error: `cannot read the log: ${(err as Error).message}` })}\n\n`);
      this.res.end();
      this.cleanup();
    } finally {
      this.reading = false;
    }
  }

  private async reconcileOnce(): Promise<void> {
    if (this.closed) return;
    if (this.joined) {
      if (this.fileComplete) this.finish();
      return;
    }
    // Read the flag before the file: only a read that starts after the flush sees everything.
    const complete = this.fileComplete;
    const file = completeLines(await this.deps.logs.read(this.id));
    if (this.closed) return;
    if (complete) {
      this.sendFile(file, file.length);
      this.finish();
      return;
    }
    if (this.buffer.length === 0) {
      // Nothing said since we subscribed: the whole file is history. Lines said just
      // before we subscribed may still be on their way to the file; look again shortly.
      this.sendFile(file, file.length);
      if (this.quietRechecks++ < QUIET_RECHECKS) this.readAgain(QUIET_RECHECK_MS);
      return;
    }
    const overlap = tailOverlap(file, this.buffer, this.fromFile);
    if (overlap === 0) {
      // The file has not reached the first live line yet: what it holds is older. Read again soon.
      this.sendFile(file, file.length);
      this.readAgain(CATCH_UP_MS);
      return;
    }
    this.sendFile(file, file.length - overlap);
    this.joined = true;
    for (const line of this.buffer.splice(0)) this.emit(line);
    if (this.fileComplete) this.finish();
  }

  private sendFile(file: string[], upTo: number): void {
    for (let i = this.fromFile; i < upTo; i++) this.emit(file[i]!);
    this.fromFile = Math.max(this.fromFile, upTo);
  }

  private emit(line: string): void {
    this.sent += 1;
    if (this.sent <= this.options.after) return;
    const text = this.options.stripAnsi ? withoutAnsi(line) : line;
    // A bare CR would end the SSE line early and lose the rest; each piece becomes a data field instead.
    const data = text
      .split(/\r\n|\r|\n/)
      .map((part) => `data: ${part}\n`)
      .join('');
    this.res.write(`id: ${this.sent}\n${data}\n`);
  }

  private finish(): void {
    if (this.closed) return;
    const build = this.deps.store.get(this.id);
    this.res.write(`event: end\ndata: ${JSON.stringify({ state: build?.state ?? 'unknown', failure: build?.failure ?? null, lines: this.sent })}\n\n`);
    this.res.end();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.unfollow?.();
    this.unfollow = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** At most one re-read waits at a time, whatever asked for it. */
  private readAgain(ms: number): void {
    if (this.rereadPending) return;
    this.rereadPending = true;
    this.after(ms, () => {
      this.rereadPending = false;
      void this.reconcile();
    });
  }

  private after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }
}

/** True when the client asked for server-sent events (EventSource sends this Accept header). */
export function wantsEventStream(req: Request): boolean {
  return (req.get('accept') ?? '').toLowerCase().includes('text/event-stream');
}

export function streamBuildLog(res: Response, deps: LogStreamDeps, id: number, options: LogStreamOptions): void {
  new LogStream(res, deps, id, options).start();
}
