import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../../log.js';
import { redactDatabaseUrl } from './errors.js';

/**
 * One connection per process that LISTENs, for every channel dockhook uses
 * (queued builds, log batches). It reconnects with backoff when PostgreSQL
 * goes away; what was notified meanwhile is lost, which is why the worker
 * also polls and a log follower re-reads from its last line on reconnect
 * (the `reconnected` event).
 */
export class PgNotifier {
  private readonly events = new EventEmitter();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private readonly channels = new Set<string>();
  private closed = false;
  private retryMs = 250;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  on(channel: string, fn: (payload: string) => void): () => void {
    this.events.on(`n:${channel}`, fn);
    if (!this.channels.has(channel)) {
      this.channels.add(channel);
      if (this.client) this.client.query(`LISTEN ${channel}`).catch(() => this.reconnectLater());
    }
    void this.ensureConnected();
    return () => this.events.off(`n:${channel}`, fn);
  }

  /** After a reconnect: notifications may have been missed, so listeners catch up by reading. */
  onReconnected(fn: () => void): () => void {
    this.events.on('reconnected', fn);
    return () => this.events.off('reconnected', fn);
  }

  /** Resolves once LISTEN is in place (tests and the worker's start wait for it, so no early NOTIFY is missed). */
  ready(): Promise<void> {
    return this.ensureConnected();
  }

  private ensureConnected(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    client.on('error', () => this.reconnectLater());
    client.on('end', () => this.reconnectLater());
    client.on('notification', (n) => this.events.emit(`n:${n.channel}`, n.payload ?? ''));
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      this.log.debug({ err: (err as Error).message, url: redactDatabaseUrl(this.url) }, 'LISTEN connection failed; retrying');
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    const wasReconnect = this.retryMs > 250;
    this.retryMs = 250;
    this.client = client;
    if (wasReconnect) {
      this.log.info('LISTEN connection back');
      this.events.emit('reconnected');
    }
  }

  private reconnectLater(): void {
    const old = this.client;
    if (!old) return;
    this.client = undefined;
    old.removeAllListeners();
    old.on('error', () => {});
    void old.end().catch(() => {});
    if (this.closed) return;
    this.log.warn('LISTEN connection to PostgreSQL lost; reconnecting (the worker polls meanwhile)');
    this.retryMs = 500;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 5000);
    setTimeout(() => void this.ensureConnected(), wait).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
