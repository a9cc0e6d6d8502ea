import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { checkName, checkTag, isValidDigest } from './names.js';

/**
 * Gives an image already in the registry more tags, through the registry API
 * alone (no pull, no engine): the manifest is read once by digest and PUT
 * back, byte for byte, under each tag. The registry only links the tag to
 * blobs it already holds, so nothing is uploaded and the digest stays the
 * same. Same repository only: another repository would need its blobs
 * mounted first.
 */
export async function retagImage(
  registry: Pick<RegistryClient, 'getManifestBytes' | 'putManifest'>,
  name: string,
  digest: string,
  tags: string[],
): Promise<{ tag: string; digest: string }[]> {
  checkName(name);
  if (!isValidDigest(digest)) throw new RegistryError(400, `invalid digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`, { code: 'DIGEST_INVALID' });
  const wanted = [...new Set(tags)];
  // All checked before the first PUT, so a bad tag never leaves the image half retagged.
  for (const tag of wanted) checkTag(tag);
  if (wanted.length === 0) return [];

  const manifest = await registry.getManifestBytes(name, digest);
  if (!manifest) {
    throw new RegistryError(404, `${name}@${digest} is no longer in the registry`, {
      code: 'MANIFEST_UNKNOWN',
      hint: 'it was deleted (by retention or by hand) after it was pushed: build the image again instead of retagging it',
    });
  }
  if (manifest.digest !== digest) {
    // A registry converting the manifest on the way out (schema 1) would make every tag point somewhere new.
    throw new RegistryError(502, `registry answered ${name}@${digest} with a manifest whose digest is ${manifest.digest}`, { code: 'DIGEST_INVALID' });
  }

  const done: { tag: string; digest: string }[] = [];
  for (const tag of wanted) {
    const stored = await registry.putManifest(name, tag, manifest.bytes, manifest.mediaType);
    if (stored !== digest) {
      throw new RegistryError(502, `registry stored ${name}:${tag} as ${stored} instead of ${digest}`, { code: 'DIGEST_INVALID' });
    }
    done.push({ tag, digest: stored });
  }
  return done;
}
