import type { Request, Response } from 'express';
import type { BuildLogs } from '../logs/build-logs.js';
import type { BuildRecord, Store } from '../store/store.js';
import { withoutAnsi } from './log-lines.js';

export interface LogStreamDeps {
  store: Store;
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

const isFinal = (state: string | undefined) => state === 'succeeded' || state === 'failed';

/**
 * Server-sent events for one build's log: what is written so far, then live
 * lines, then `event: end` with the final state. Each event's id is its line
 * number, so a reconnecting EventSource (Last-Event-ID) or a page that already
 * shows N lines (?after=N) resumes exactly there. BuildLogs.follow does the
 * joining of history and live lines; this class only decides when the stream
 * is over: the build has ended, or dockhook is stopping.
 */
class LogStream {
  private sent: number;
  private closed = false;
  private unfollow: (() => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly res: Response,
    private readonly deps: LogStreamDeps,
    private readonly id: number,
    private readonly options: LogStreamOptions,
  ) {
    this.sent = options.after;
  }

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
    this.every(HEARTBEAT_MS, () => this.res.write(': keep-alive\n\n'));
    // A queued build waiting for its next attempt would hold the server open during a stop.
    this.every(STOP_CHECK_MS, () => {
      if (this.deps.isStopping() && !this.deps.logs.isOpen(this.id)) this.finish();
    });
    void this.attach();
  }

  private async attach(): Promise<void> {
    try {
      const unfollow = await this.deps.logs.follow(this.id, this.sent, (line, n) => this.emit(line, n), () => this.onEnd());
      if (this.closed) unfollow?.();
      else if (unfollow) this.unfollow = unfollow;
      else this.onEnd();
    } catch (err) {
      this.res.write(`event: error\ndata: ${JSON.stringify({ error: `cannot read the log: ${(err as Error).message}` })}\n\n`);
      this.res.end();
      this.cleanup();
    }
  }

  /** The writer closed (or none was open): over, or queued for another attempt that appends to this log. */
  private onEnd(): void {
    this.unfollow = undefined;
    if (this.closed) return;
    void this.deps.store.get(this.id).then(
      (build) => this.afterWriterClosed(build),
      () => this.finish(),
    );
  }

  private afterWriterClosed(build: BuildRecord | undefined): void {
    if (this.closed) return;
    if (isFinal(build?.state) || this.deps.isStopping()) return this.finish(build);
    this.unfollow = this.deps.logs.onOpen(this.id, () => {
      this.unfollow = undefined;
      void this.attach();
    });
    // The next attempt may have opened its writer before we subscribed.
    if (this.deps.logs.isOpen(this.id)) {
      this.unfollow();
      this.unfollow = undefined;
      void this.attach();
    }
  }

  private emit(line: string, n: number): void {
    if (this.closed || n <= this.sent) return;
    this.sent = n;
    const text = this.options.stripAnsi ? withoutAnsi(line) : line;
    // A bare CR would end the SSE line early and lose the rest; each piece becomes a data field instead.
    const data = text
      .split(/\r\n|\r|\n/)
      .map((part) => `data: ${part}\n`)
      .join('');
    this.res.write(`id: ${n}\n${data}\n`);
  }

  private finish(known?: BuildRecord): void {
    if (this.closed) return;
    if (known) return this.writeEnd(known);
    void this.deps.store.get(this.id).then(
      (build) => this.writeEnd(build),
      () => this.writeEnd(undefined),
    );
  }

  private writeEnd(build: BuildRecord | undefined): void {
    if (this.closed) return;
    this.res.write(`event: end\ndata: ${JSON.stringify({ state: build?.state ?? 'unknown', failure: build?.failure ?? null, lines: this.sent })}\n\n`);
    this.res.end();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.unfollow?.();
    this.unfollow = undefined;
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
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
