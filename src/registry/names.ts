import { RegistryError } from './errors.js';

/**
 * The distribution reference grammar for what goes into a /v2/ URL. Checked
 * before any request so that user input can never reshape the URL path
 * (`../`, `?`, `%2F`) and so callers get a clear 400 instead of the registry's
 * 404 for a name it could never have stored.
 */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_NAME = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// Only the algorithms registries implement: the general OCI grammar also admits `a:b`, which registry 2.8.2 answers with a 500.
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** distribution caps the whole name (all components and slashes) at 255 characters. */
const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(s: string): boolean {
  return typeof s === 'string' && s.length <= MAX_NAME_LENGTH && REPOSITORY_NAME.test(s);
}

export function isValidTag(s: string): boolean {
  return typeof s === 'string' && TAG.test(s);
}

/** sha256:<64 hex> or sha512:<128 hex>. */
export function isValidDigest(s: string): boolean {
  return typeof s === 'string' && DIGEST.test(s);
}

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
