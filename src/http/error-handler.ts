import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { isStoreUnavailable } from '../store/store-errors.js';

interface BodyParserError {
  status?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

function bodyParserAnswer(err: BodyParserError): AppError | undefined {
  if (err.type === 'entity.too.large') {
    return new AppError(413, 'payload too large: the limit is 25 MiB, as GitHub\'s own', { hint: 'GitHub never sends larger deliveries; check what is posting here' });
  }
  if (err.type === 'request.aborted') return new AppError(400, 'request aborted by the client before the body was complete');
  // express answers an undecodable %-escape in the path with a URIError carrying status 400 but no `expose`.
  if (err instanceof URIError || (err.status === 400 && err.message?.startsWith('Failed to decode param'))) {
    return new AppError(400, 'the URL path has an invalid %-escape');
  }
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500 && err.expose) return new AppError(err.status, err.message ?? 'bad request');
  return undefined;
}

export interface ErrorAnswer {
  status: number;
  body: { error: string; hint?: string };
  headers?: Record<string, string>;
}

/** Seconds a client should wait before trying again while the store is away. */
const STORE_RETRY_AFTER = '10';

/**
 * The one place where errors become HTTP answers: JSON `{error, hint?}`; the
 * details of a 500 stay in the log. Express routes and the node:http webhook
 * path both answer through it.
 */
export function toErrorAnswer(err: unknown, log: Logger, where: { method?: string; path?: string }): ErrorAnswer {
  const known = err instanceof AppError ? err : bodyParserAnswer(err as BodyParserError);
  if (known) {
    const headers = isStoreUnavailable(known) ? { 'Retry-After': STORE_RETRY_AFTER } : undefined;
    return { status: known.status, body: { error: known.message, ...(known.hint ? { hint: known.hint } : {}) }, headers };
  }
  log.error({ err, ...where }, 'unhandled error while answering a request');
  return { status: 500, body: { error: 'internal error; the dockhook log has the details' } };
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const answer = toErrorAnswer(err, log, { method: req.method, path: req.path });
    if (!res.headersSent) res.status(answer.status).set(answer.headers ?? {}).json(answer.body);
    else res.end();
  };
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
};
