import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { PgNotifier } from '../store/postgres/notifier.js';
import { stampLine, type BuildLogs, type BuildLogWriter } from './build-logs.js';

export const LOGS_CHANNEL = 'dockhook_logs';
/** A batch goes out when this many lines wait, or FLUSH_MS after the first of them: 100k lines are ~200 round trips, not 100k. */
const BATCH_LINES = 500;
const FLUSH_MS = 100;
/** A follower re-reads this often too, in case a notification was lost with the LISTEN connection. */
const FOLLOW_POLL_MS = 2000;

interface Notice {
  id: number;
  /** The last line number now stored. */
  n?: number;
  open?: boolean;
  end?: boolean;
}

interface LocalWriter {
  /** Lines of this attempt not yet committed, numbered from `nextN`. */
  pending: string[];
  nextN: number;
  /** nextN is known (read from the store): until then pending lines have no numbers yet. */
  numbered: boolean;
  ready: Promise<void>;
  flushing: Promise<void>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Build logs in PostgreSQL's build_logs table, so that any receiver serves
 * and follows a build whichever worker runs it. The worker writes in batches
 * and NOTIFYs `dockhook_logs` with the last line number of each batch;
 * followers on any host read the new lines when told. A batch that cannot be
 * written (the store is away) stays in memory and goes out with the next one.
 */
export class PgBuildLogs implements BuildLogs {
  private readonly local = new Map<number, LocalWriter>();
  /** Writers open on other hosts, as their notifications say. */
  private readonly remoteOpen = new Set<number>();
  private readonly events = new EventEmitter();
  /** Round trips made by writers (the bound on what a chatty build costs the store). */
  batches = 0;

  constructor(
    private readonly pool: pg.Pool,
    notifier: PgNotifier,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
    notifier.on(LOGS_CHANNEL, (payload) => this.onNotice(payload));
    notifier.onReconnected(() => this.events.emit('resync'));
  }

  private onNotice(payload: string): void {
    let notice: Notice;
    try {
      notice = JSON.parse(payload) as Notice;
    } catch {
      return;
    }
    if (notice.open && !this.local.has(notice.id)) {
      this.remoteOpen.add(notice.id);
      this.events.emit(`open:${notice.id}`);
    }
    if (notice.n !== undefined) this.events.emit(`more:${notice.id}`);
    if (notice.end) {
      this.remoteOpen.delete(notice.id);
      this.events.emit(`end:${notice.id}`);
    }
  }

  writer(id: number): BuildLogWriter {
    const entry: LocalWriter = { pending: [], nextN: 1, numbered: false, ready: Promise.resolve(), flushing: Promise.resolve(), timer: undefined };
    entry.ready = this.pool
      .query<{ n: number }>('SELECT COALESCE(MAX(n), 0)::int AS n FROM build_logs WHERE build_id = $1', [id])
      .then(({ rows }) => {
        entry.nextN = rows[0]!.n + 1;
        entry.numbered = true;
        return this.notify({ id, open: true });
      })
      .catch((err: unknown) => this.log.warn({ build: id, err: (err as Error).message }, 'cannot read where the build log ends; numbering continues when the store answers'));
    this.local.set(id, entry);
    this.events.emit(`open:${id}`);
    const schedule = () => {
      if (entry.pending.length >= BATCH_LINES) return void this.flush(id, entry);
      entry.timer ??= setTimeout(() => void this.flush(id, entry), FLUSH_MS);
    };
    return {
      line: (text: string) => {
        for (const one of text.replace(/\r\n/g, '\n').split('\n')) entry.pending.push(stampLine(one));
        this.events.emit(`local:${id}`);
        schedule();
      },
      close: async () => {
        await this.flush(id, entry);
        for (let wait = 250; entry.pending.length > 0; wait = Math.min(wait * 2, 5000)) {
          await new Promise((r) => setTimeout(r, wait));
          await this.flush(id, entry);
        }
        if (this.local.get(id) === entry) this.local.delete(id);
        await this.notify({ id, end: true }).catch(() => {});
        this.events.emit(`end:${id}`);
      },
    };
  }

  /** One INSERT of every pending line and its NOTIFY, in one statement. Serialised per writer. */
  private flush(id: number, entry: LocalWriter): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.flushing = entry.flushing.then(async () => {
      await entry.ready;
      const lines = entry.pending.slice();
      if (lines.length === 0) return;
      const first = entry.nextN;
      const numbers = lines.map((_, i) => first + i);
      try {
        this.batches++;
        await this.pool.query(
          `WITH ins AS (
             INSERT INTO build_logs (build_id, n, line) SELECT $1, n, line FROM unnest($2::int[], $3::text[]) AS t(n, line)
             ON CONFLICT (build_id, n) DO NOTHING)
           SELECT pg_notify('${LOGS_CHANNEL}', $4)`,
          [id, numbers, lines, JSON.stringify({ id, n: first + lines.length - 1 })],
        );
        entry.pending.splice(0, lines.length);
        entry.nextN = first + lines.length;
      } catch (err) {
        this.log.warn({ build: id, lines: lines.length, err: (err as Error).message }, 'could not store log lines; they go out with the next batch');
        entry.timer ??= setTimeout(() => void this.flush(id, entry), 1000);
      }
    });
    return entry.flushing;
  }

  private async notify(notice: Notice): Promise<void> {
    await this.pool.query(`SELECT pg_notify('${LOGS_CHANNEL}', $1)`, [JSON.stringify(notice)]);
  }

  isOpen(id: number): boolean {
    return this.local.has(id) || this.remoteOpen.has(id);
  }

  private async stored(id: number, after: number): Promise<{ n: number; line: string }[]> {
    const { rows } = await this.pool.query<{ n: number; line: string }>('SELECT n, line FROM build_logs WHERE build_id = $1 AND n > $2 ORDER BY n', [id, after]);
    return rows;
  }

  async read(id: number): Promise<string> {
    const rows = await this.stored(id, 0);
    const local = this.local.get(id);
    const lines = rows.map((r) => r.line).concat(local ? local.pending : []);
    return lines.length ? `${lines.join('\n')}\n` : '';
  }

  /** A writer elsewhere: one that notified its opening, or a running build whose opening came before we listened. */
  private async openElsewhere(id: number): Promise<boolean> {
    if (this.remoteOpen.has(id)) return true;
    const { rows } = await this.pool.query<{ state: string }>('SELECT state FROM builds WHERE id = $1', [id]);
    if (rows[0]?.state !== 'running') return false;
    this.remoteOpen.add(id);
    return true;
  }

  async follow(id: number, after: number, onLine: (line: string, n: number) => void, onEnd: () => void): Promise<(() => void) | undefined> {
    let sent = after;
    let stopped = false;
    let reading: Promise<void> = Promise.resolve();
    const endEvent = `end:${id}`;
    const emit = (line: string, n: number) => {
      if (stopped || n <= sent) return;
      sent = n;
      onLine(line, n);
    };
    // Lines of a writer in this process that are not committed yet follow the stored ones.
    const catchUp = () => {
      reading = reading.then(async () => {
        if (stopped) return;
        try {
          for (const r of await this.stored(id, sent)) emit(r.line, r.n);
        } catch {
          return; // the store is away; the next notice or poll reads again
        }
        emitPending();
      });
      return reading;
    };
    const emitPending = () => {
      const local = this.local.get(id);
      if (local?.numbered) local.pending.forEach((line, i) => emit(line, local.nextN + i));
    };
    // A line written in this process: straight from memory, unless the follower is behind what is stored.
    const onLocal = () => {
      const local = this.local.get(id);
      if (local?.numbered && sent >= local.nextN - 1) emitPending();
      else void catchUp();
    };
    const events: [string, () => void][] = [
      [`more:${id}`, () => void catchUp()],
      [`local:${id}`, onLocal],
      ['resync', () => void catchUp()],
      [
        endEvent,
        () =>
          void catchUp().then(() => {
            if (stopped) return;
            stop();
            onEnd();
          }),
      ],
    ];
    const poll = setInterval(() => {
      void catchUp().then(async () => {
        if (!stopped && !this.local.has(id) && !(await this.openElsewhere(id).catch(() => true))) this.events.emit(endEvent);
      });
    }, FOLLOW_POLL_MS);
    poll.unref();
    const stop = () => {
      stopped = true;
      clearInterval(poll);
      for (const [event, fn] of events) this.events.off(event, fn);
    };
    // Subscribe first, then read: a batch committed in between is read twice and sent once.
    for (const [event, fn] of events) this.events.on(event, fn);
    await catchUp();
    if (!this.local.has(id) && !(await this.openElsewhere(id))) {
      stop();
      return undefined;
    }
    return stop;
  }

  onOpen(id: number, fn: () => void): () => void {
    const event = `open:${id}`;
    this.events.once(event, fn);
    return () => this.events.off(event, fn);
  }
}
