import type { Logger } from '../log.js';
import { PgStore } from './postgres/pg-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** DATABASE_URL set: the shared PostgreSQL. Unset: SQLite in DATA_DIR, for one host. Both migrate themselves here. */
export async function openStore(options: { databaseUrl?: string; dataDir: string; log: Logger }): Promise<Store> {
  if (options.databaseUrl) return PgStore.open(options.databaseUrl, options.log);
  return new SqliteStore(options.dataDir);
}
