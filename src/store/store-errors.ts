import { AppError } from '../errors.js';

/**
 * The store cannot be reached (PostgreSQL down, the connection lost). Not a
 * build failure and not a bad request: receivers answer 503 with Retry-After
 * (GitHub records the delivery as failed, so it is not lost silently), and
 * workers retry their writes and start nothing new until it is back.
 */
export class StoreUnavailable extends AppError {
  constructor(where: string, cause: unknown) {
    super(503, `the store (${where}) cannot be reached: ${(cause as Error)?.message ?? String(cause)}`, {
      hint: 'dockhook keeps trying; check that the database is up. GitHub shows this delivery as failed: redeliver it once dockhook is ready again',
      cause,
    });
    this.name = 'StoreUnavailable';
  }
}

export const isStoreUnavailable = (err: unknown): err is StoreUnavailable => err instanceof StoreUnavailable;
