import { posix } from 'node:path';
import { BuildError } from '../errors.js';
import type { GitHubClient } from '../github.js';
import { buildOrder, type ImageSpec } from '../spec/docker-info.js';
import { fingerprintImage } from '../spec/fingerprint.js';
import { readRepoTree } from './repo-tree.js';

/**
 * Every image's fingerprint at a commit, from one listing of the commit's git
 * tree (no download). An image's includes those of what it depends on, so a
 * changed base changes its apps'. A context or Dockerfile the commit lacks
 * gets no fingerprint: the build then runs and says what is missing.
 */
export async function fingerprintImages(
  octokit: GitHubClient,
  where: { owner: string; repo: string },
  sha: string,
  images: ImageSpec[],
  registry: string,
): Promise<Map<string, string | undefined>> {
  const tree = await readRepoTree(octokit, where, sha);
  const out = new Map<string, string | undefined>();
  for (const spec of buildOrder(images)) {
    const context = await tree.shaOf(spec.context);
    const dockerfile = await tree.shaOf(posix.join(spec.context, spec.dockerfile));
    const needs: Record<string, string> = {};
    let complete = context?.type === 'tree' && dockerfile?.type === 'blob';
    for (const need of spec.needs) {
      const fp = out.get(need);
      if (fp === undefined) complete = false;
      else needs[need] = fp;
    }
    out.set(spec.serviceName, complete ? fingerprintImage(spec, { contextTree: context!.sha, dockerfileBlob: dockerfile!.sha, registry, needs }) : undefined);
  }
  return out;
}

/** A manual build's "images": the entries it names, each of which must exist. */
export function selectImages(images: ImageSpec[], names: string[] | undefined): ImageSpec[] {
  if (!names?.length) return images;
  const known = new Set(images.map((i) => i.serviceName));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) {
    throw new BuildError(`images asks for ${unknown.join(', ')}, which dockerInfo.json does not list (it has ${[...known].join(', ')})`);
  }
  const wanted = new Set(names);
  return images.filter((i) => wanted.has(i.serviceName));
}
