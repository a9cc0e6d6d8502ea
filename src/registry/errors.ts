import { AppError } from '../errors.js';

/**
 * Anything the registry (or reaching it) went wrong with. Extends AppError so
 * the HTTP layer's single error handler shows `message` and `hint` as it does
 * for every other user-facing error. `code` is the registry's own error code
 * (UNSUPPORTED, NAME_UNKNOWN, UNAUTHORIZED, ...) when it sent one, or ours for
 * input we refused before asking (NAME_INVALID, TAG_INVALID).
 *
 * Messages never contain the password, a token or an Authorization header:
 * they are shown to users and logged.
 */
export class RegistryError extends AppError {
  readonly code?: string;
  constructor(status: number, message: string, options: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(status, message, { hint: options.hint, cause: options.cause });
    this.name = 'RegistryError';
    this.code = options.code;
  }
}

export const MISSING_CREDENTIALS = 'registry requires credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD';
export const REFUSED_CREDENTIALS = 'registry refused the credentials in REGISTRY_USERNAME/REGISTRY_PASSWORD';

/** The first entry of the registry's `{"errors":[{code,message}]}` body, if it sent one. */
export async function readRegistryErrorBody(res: Response): Promise<{ code?: string; message?: string }> {
  try {
    const body = (await res.json()) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = body?.errors?.[0];
    return {
      code: typeof first?.code === 'string' ? first.code : undefined,
      message: typeof first?.message === 'string' ? first.message : undefined,
    };
  } catch {
    // HEAD responses and proxies' HTML error pages have no JSON body.
    return {};
  }
}

/** A RegistryError for an unexpected (non-2xx) answer, with the registry's own code when it gave one. */
export async function errorFromResponse(res: Response, what: string): Promise<RegistryError> {
  const { code, message } = await readRegistryErrorBody(res);
  const detail = [code, message].filter(Boolean).join(': ');
  return new RegistryError(res.status, `registry answered ${res.status} to ${what}${detail ? ` (${detail})` : ''}`, { code });
}
