import { StoreUnavailable } from '../store-errors.js';

/** Connection classes (08), operator intervention (57P0x: shutdown, crash), and the socket errors node reports. */
const UNAVAILABLE_SQLSTATE = /^(08|57P0)/;
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; errors?: unknown[] };
  if (typeof e?.code === 'string' && (UNAVAILABLE_SQLSTATE.test(e.code) || UNAVAILABLE_ERRNO.has(e.code))) return true;
  // node's happy-eyeballs connect reports an AggregateError of per-address failures.
  if (Array.isArray(e?.errors) && e.errors.some(isConnectionError)) return true;
  const m = e?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused|the database system is (starting up|shutting down)/i.test(m);
}

/** DATABASE_URL without its password, for logs and errors. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'DATABASE_URL (unparsable)';
  }
}

export function unavailable(url: string, err: unknown): StoreUnavailable {
  return new StoreUnavailable(`PostgreSQL at ${redactDatabaseUrl(url)}`, err);
}

/** The password in DATABASE_URL, for the scrubber: never in a log line, a status or a page. */
export function databasePassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
