import { isValidDigest, isValidRepositoryName, isValidTag } from '../docker-reference.js';
import { RegistryError } from './errors.js';

/**
 * Checked before any request so that user input can never reshape the URL
 * path (`../`, `?`, `%2F`) and so callers get a clear 400 instead of the
 * registry's 404 for a name it could never have stored.
 */
export { isValidDigest, isValidRepositoryName, isValidTag };

/** The checks the client runs before any request: RegistryError 400 with the registry's own codes. */
export function checkName(name: string): void {
  if (!isValidRepositoryName(name)) {
    throw invalid('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}: use lowercase letters, digits, '.', '_', '-' and '/'`);
  }
}

export function checkTag(tag: string): void {
  if (!isValidTag(tag)) throw invalid('TAG_INVALID', `invalid tag ${JSON.stringify(tag)}: up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -`);
}

/** A tag or a digest: what /v2/<name>/manifests/<reference> takes. */
export function checkReference(reference: string): void {
  if (!isValidTag(reference) && !isValidDigest(reference)) {
    throw invalid('TAG_INVALID', `invalid tag or digest ${JSON.stringify(reference)}`);
  }
}

function invalid(code: string, message: string): RegistryError {
  return new RegistryError(400, message, { code });
}
