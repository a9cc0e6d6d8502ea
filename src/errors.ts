/**
 * One error type for everything a user can see. `status` maps to HTTP in one
 * place (http/error-handler.ts); `message` is safe to show; `hint` says what to
 * do next.
 */
export class AppError extends Error {
  readonly status: number;
  readonly hint?: string;
  constructor(status: number, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.hint = options.hint;
  }
}

/**
 * A build failure, classified. `transient` failures (registry down, engine
 * unreachable) are retried within RETRY_WINDOW_SECONDS; the others fail the
 * build at once because retrying cannot change the outcome.
 */
export class BuildError extends Error {
  readonly transient: boolean;
  constructor(message: string, options: { transient?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'BuildError';
    this.transient = options.transient ?? false;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
