import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../errors.js';

export interface ApiAuthSettings {
  apiToken?: string;
  /** API_TOKEN_READS=true: read routes need the token too. */
  apiTokenReads: boolean;
}

// Hashing first gives equal-length inputs, so timingSafeEqual never throws and leaks no length.
function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * Guards an API route. Writes always need `Authorization: Bearer <API_TOKEN>`
 * and are disabled (403) while API_TOKEN is unset; reads are open unless
 * API_TOKEN_READS=true.
 */
export function requireApiToken(settings: ApiAuthSettings, kind: 'read' | 'write'): RequestHandler {
  return (req, _res, next) => {
    if (kind === 'read' && !settings.apiTokenReads) return next();
    if (!settings.apiToken) {
      if (kind === 'write') throw new AppError(403, 'write API disabled', { hint: 'set API_TOKEN to enable it' });
      throw new AppError(403, 'API_TOKEN_READS=true but API_TOKEN is unset', { hint: 'set API_TOKEN' });
    }
    const given = bearer(req.get('authorization'));
    if (!given) throw new AppError(401, 'missing bearer token', { hint: 'send Authorization: Bearer <API_TOKEN>' });
    if (!sameToken(given, settings.apiToken)) throw new AppError(401, 'wrong API token');
    next();
  };
}
