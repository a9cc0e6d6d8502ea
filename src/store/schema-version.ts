import { AppError } from '../errors.js';

/** A database migrated by a newer dockhook: starting would misread it, so refuse, and say which version is needed. */
export function schemaTooNew(where: string, found: number, known: number): AppError {
  return new AppError(
    500,
    `${where} is at schema version ${found}, and this dockhook knows versions up to ${known}`,
    { hint: `run a dockhook release that knows schema version ${found} (the one that migrated it, or newer)` },
  );
}
