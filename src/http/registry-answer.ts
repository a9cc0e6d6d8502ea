import { AppError } from '../errors.js';
import { RegistryError } from '../registry/client.js';

/**
 * What an API caller is told when the registry said no. The registry's own
 * status is about dockhook's request, not the caller's: a 401 there means
 * REGISTRY_USERNAME/REGISTRY_PASSWORD were refused, not the caller's
 * API token, so it must not come back as a 401 (clients would re-prompt
 * for the wrong secret). Non-registry errors pass through untouched.
 */
export function registryAnswer(err: unknown): unknown {
  if (!(err instanceof RegistryError)) return err;
  const keep = (status: number, hint?: string) => new AppError(status, err.message, { hint: err.hint ?? hint, cause: err });
  if (err.status === 400) return keep(400);
  if (err.status === 404) return keep(404);
  if (err.code === 'UNSUPPORTED' || err.status === 405) {
    return keep(409, 'set REGISTRY_STORAGE_DELETE_ENABLED=true on the registry (storage.delete.enabled: true) and restart it');
  }
  if (err.status === 401) return keep(502, 'dockhook\'s own registry credentials were refused: check REGISTRY_USERNAME and REGISTRY_PASSWORD');
  if (err.status === 403) return keep(502, 'the registry credentials in REGISTRY_USERNAME/REGISTRY_PASSWORD lack the rights for this');
  if (err.status === 503) return keep(502, 'check that the registry is running and that REGISTRY (or REGISTRY_URL) points at it');
  return keep(502, 'the registry failed to answer this request; its own log has the details');
}

/** Runs a registry call, turning its RegistryError into the API's answer. */
export async function fromRegistry<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw registryAnswer(err);
  }
}
