import type { RegistryClient } from '../registry/client.js';

/**
 * Which images in the registry a build may take its layer cache from
 * (`cachefrom`), so that a build host whose engine never built the image
 * still reuses the layers that did not change. Pure: the caller lists the
 * tags (RegistryClient.listTags).
 */

/** The previous versions taken, besides `latest`. */
export const CACHE_VERSIONS = 3;

// 1, 1.4, 1.4.2, v1.4.2, 1.4.2-rc.1, 1.4.2+build.5: what dockerInfo.json's `version` usually holds.
const SEMVERISH = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

interface Parsed {
  numbers: number[];
  pre?: string[];
}

function parse(tag: string): Parsed | undefined {
  const m = SEMVERISH.exec(tag);
  if (!m) return undefined;
  return { numbers: m[1]!.split('.').map(Number), pre: m[2]?.split('.') };
}

const numeric = /^\d+$/;

/** SemVer 2.0 precedence, with missing trailing numbers read as 0 (1.4 = 1.4.0). */
function compare(a: Parsed, b: Parsed): number {
  for (let i = 0; i < Math.max(a.numbers.length, b.numbers.length); i++) {
    const d = (a.numbers[i] ?? 0) - (b.numbers[i] ?? 0);
    if (d !== 0) return d;
  }
  if (!a.pre || !b.pre) return a.pre ? -1 : b.pre ? 1 : 0; // a release ranks above its pre-releases
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    if (x === y) continue;
    const xn = numeric.test(x);
    const yn = numeric.test(y);
    if (xn && yn) return Number(x) - Number(y);
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * `latest` (when the registry has it), then up to `max` previous versions,
 * nearest first: the highest version tags below the one being built (a
 * hotfix 1.2.9 takes 1.2.8, not 2.0.0, whose image `latest` already is).
 * When `version` is not version-like, the highest version tags. `sha-*` and
 * other names that are not versions (extra tags) are never taken, nor
 * `version` itself. Returns full references: `<repository>:<tag>`.
 */
export function chooseCacheRefs(repository: string, tags: readonly string[], version: string, max = CACHE_VERSIONS): string[] {
  const current = parse(version);
  const versions = [...new Set(tags)]
    .filter((t) => t !== version && t !== 'latest')
    .map((tag) => ({ tag, v: parse(tag) }))
    .filter((x): x is { tag: string; v: Parsed } => x.v !== undefined && (!current || compare(x.v, current) < 0))
    // Highest first; equal precedence (1.4 and 1.4.0, v1 and 1) keeps a stable order by name.
    .sort((a, b) => compare(b.v, a.v) || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))
    .slice(0, Math.max(0, max))
    .map((x) => x.tag);
  return [...(tags.includes('latest') ? ['latest'] : []), ...versions].map((t) => `${repository}:${t}`);
}

/**
 * chooseCacheRefs over the registry's tags of `name`. Best effort: a
 * registry that cannot list them means a build without registry cache, said
 * in the log, never a failed build.
 */
export async function findCacheRefs(
  registry: Pick<RegistryClient, 'listTags'>,
  o: { name: string; repository: string; version: string; onLine: (line: string) => void },
): Promise<string[]> {
  let tags: string[];
  try {
    tags = await registry.listTags(o.name);
  } catch (err) {
    o.onLine(`cache: cannot list the tags of ${o.name} (${(err as Error).message}); building without the registry's cache`);
    return [];
  }
  const refs = chooseCacheRefs(o.repository, tags, o.version);
  o.onLine(refs.length ? `cache from: ${refs.join(', ')}` : `cache from: nothing yet (${o.repository} has no latest or earlier version)`);
  return refs;
}
