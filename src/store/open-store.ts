import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { PgStore } from './postgres/pg-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** DATABASE_URL set: the shared PostgreSQL. Unset: SQLite in DATA_DIR, for one host. Both migrate themselves here. */
export async function openStore(options: { databaseUrl?: string; dataDir: string; log: Logger }): Promise<Store> {
  if (options.databaseUrl) {
    try {
      return await PgStore.open(options.databaseUrl, options.log);
    } catch (err) {
      if (err instanceof AppError || !(err instanceof Error) || !err.message.startsWith('cannot open the store')) throw err;
      throw new AppError(503, err.message, { hint: 'check that PostgreSQL runs, that this host reaches it, and the user, password and database in DATABASE_URL', cause: err });
    }
  }
  return new SqliteStore(options.dataDir);
}
