import { posix } from 'node:path';
import type { GitHubClient } from '../github.js';
import { classifyGitHubError } from './source.js';

export type TreeEntryType = 'tree' | 'blob' | 'commit';

export interface TreeEntryRef {
  type: TreeEntryType;
  sha: string;
}

export interface RepoTree {
  /** SHA of the commit's root tree. */
  root: string;
  /**
   * The git object at `path` (posix, relative to the repository root; '' is the
   * root tree), or undefined when the commit has no such path.
   */
  shaOf(path: string): Promise<TreeEntryRef | undefined>;
}

interface Where {
  owner: string;
  repo: string;
}

type Listing = Map<string, TreeEntryRef>;

/**
 * The git object SHAs of a commit's tree, read from GitHub's git database.
 * Git SHAs are content hashes, so a folder's tree SHA (or a file's blob SHA)
 * changes exactly when something under it does: that fingerprints an image's
 * inputs without downloading the source.
 */
export async function readRepoTree(octokit: GitHubClient, where: Where, sha: string): Promise<RepoTree> {
  const what = `reading the tree of ${sha.slice(0, 7)}`;
  let data;
  try {
    // A commit SHA is accepted as tree_sha (GitHub peels it), which saves a getCommit call.
    ({ data } = await octokit.rest.git.getTree({ ...where, tree_sha: sha, recursive: 'true' }));
  } catch (err) {
    throw classifyGitHubError(err, what);
  }
  const root = data.sha;
  const known: Listing = new Map();
  for (const e of data.tree) {
    if (isEntryType(e.type)) known.set(e.path, { type: e.type, sha: e.sha });
  }

  if (!data.truncated) {
    return {
      root,
      shaOf: async (path) => {
        const clean = normalize(path);
        if (clean === undefined) return undefined;
        return clean === '' ? { type: 'tree', sha: root } : known.get(clean);
      },
    };
  }

  // Past GitHub's limit the listing stops part-way, so a path missing from it may
  // still exist. Entries it does hold are right, though: the walk starts from
  // the deepest folder it knows and lists one level at a time from there.
  const listings = new Map<string, Promise<Listing>>();
  const listTree = (treeSha: string, dir: string): Promise<Listing> => {
    let listing = listings.get(treeSha);
    if (!listing) {
      listing = octokit.rest.git.getTree({ ...where, tree_sha: treeSha }).then(
        ({ data: level }) => new Map(level.tree.filter((e) => isEntryType(e.type)).map((e) => [e.path, { type: e.type as TreeEntryType, sha: e.sha }])),
        (err: unknown) => {
          // Forget the failure so a later shaOf asks again rather than replaying it.
          listings.delete(treeSha);
          throw classifyGitHubError(err, `${what} at ${dir === '' ? '/' : dir}`);
        },
      );
      listings.set(treeSha, listing);
    }
    return listing;
  };

  return {
    root,
    async shaOf(path) {
      const clean = normalize(path);
      if (clean === undefined) return undefined;
      if (clean === '') return { type: 'tree', sha: root };
      const hit = known.get(clean);
      if (hit) return hit;

      const segments = clean.split('/');
      let depth = segments.length - 1;
      let at: TreeEntryRef = { type: 'tree', sha: root };
      for (; depth > 0; depth--) {
        const ancestor = known.get(segments.slice(0, depth).join('/'));
        if (ancestor) {
          at = ancestor;
          break;
        }
      }
      for (let i = depth; i < segments.length; i++) {
        if (at.type !== 'tree') return undefined; // a file or submodule has nothing below it
        const next: TreeEntryRef | undefined = (await listTree(at.sha, segments.slice(0, i).join('/'))).get(segments[i]);
        if (!next) return undefined;
        at = next;
      }
      return at;
    },
  };
}

function isEntryType(type: string): type is TreeEntryType {
  return type === 'tree' || type === 'blob' || type === 'commit';
}

/** '' for the root, the canonical relative path otherwise, undefined for a path that leaves the repository. */
function normalize(path: string): string | undefined {
  const normal = posix.normalize(path === '' ? '.' : path);
  if (normal.startsWith('/') || normal === '..' || normal.startsWith('../')) return undefined;
  const clean = normal.replace(/\/+$/, '');
  return clean === '.' ? '' : clean;
}
