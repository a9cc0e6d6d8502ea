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

/** A browser cannot send a bearer token; for reads it may log in with Basic auth, any user name, API_TOKEN as password. */
function basicPassword(header: string | undefined): string | undefined {
  const match = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * Guards an API route. Writes always need `Authorization: Bearer <API_TOKEN>`
 * and are disabled (403) while API_TOKEN is unset; reads are open unless
 * API_TOKEN_READS=true.
 */
export function requireApiToken(settings: ApiAuthSettings, kind: 'read' | 'write'): RequestHandler {
  return (req, res, next) => {
    if (kind === 'read' && !settings.apiTokenReads) return next();
    if (!settings.apiToken) {
      if (kind === 'write') throw new AppError(403, 'write API disabled', { hint: 'set API_TOKEN to enable it' });
      throw new AppError(403, 'API_TOKEN_READS=true but API_TOKEN is unset', { hint: 'set API_TOKEN' });
    }
    const header = req.get('authorization');
    const given = bearer(header) ?? (kind === 'read' ? basicPassword(header) : undefined);
    // Reads answer with a Basic challenge so a browser shows its login prompt (password: API_TOKEN).
    if (kind === 'read') res.set('WWW-Authenticate', 'Basic realm="dockhook", charset="UTF-8"');
    if (!given) throw new AppError(401, 'missing bearer token', { hint: 'send Authorization: Bearer <API_TOKEN>' });
    if (!sameToken(given, settings.apiToken)) throw new AppError(401, 'wrong API token');
    res.removeHeader('WWW-Authenticate');
    next();
  };
}
