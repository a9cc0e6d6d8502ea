/**
 * Docker's reference grammar (distribution/reference), in one place: what
 * dockerInfo.json may name and what the registry client puts in a /v2/ URL.
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
