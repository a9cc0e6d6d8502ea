import type { BuildRecord, BuildState } from '../store/store.js';

/**
 * What the API answers and the pages show for one build. Plain JSON: times as
 * ISO strings, absent facts as null (not missing keys), so clients can rely
 * on the shape.
 */
export interface BuildView {
  id: number;
  state: BuildState;
  trigger: 'merge' | 'manual';
  repository: { owner: string; name: string; fullName: string; url: string };
  sha: string;
  shortSha: string;
  branch: string;
  pullRequest: { number: number; title: string; url: string } | null;
  /** registry/name, once dockerInfo.json has been read. */
  image: string | null;
  version: string | null;
  /** Version tag first, then the others in push order. */
  pushed: { ref: string; tag: string; digest: string }[];
  /** True when this build moved the `latest` tag. */
  latest: boolean;
  attempts: number;
  mergedAt: string;
  createdAt: string;
  /** When the first attempt started: retries count towards the duration, as they count towards the wait. */
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  failure: string | null;
  notes: string[];
  links: { page: string; log: string; commit: string };
  /** One `docker pull <ref>` line per pushed reference. */
  pull: string[];
  /** The dockerInfo.json entry an image build of a multi-image merge builds; null otherwise. */
  service: string | null;
  /** For an image build: the merge's build, which planned the group. */
  group: { id: number; page: string } | null;
  /** Services of the same merge this image waited for. */
  needs: string[];
  fingerprint: string | null;
  /** Rebuilt on demand ("force": true): nothing was reused. */
  force: boolean;
  /** For a multi-image merge's own build: its images, one build each; null otherwise. */
  images: GroupImageView[] | null;
}

/** One image of a merge, as the merge's view lists it. */
export interface GroupImageView {
  id: number;
  service: string | null;
  state: BuildState;
  image: string | null;
  version: string | null;
  needs: string[];
  /** The version tag's reference and digest once pushed (or reused). */
  ref: string | null;
  digest: string | null;
  failure: string | null;
  page: string;
}

export interface BuildViewOptions {
  /** REGISTRY (host[:port]): images are named registry/service. */
  registry: string;
  /** PUBLIC_URL: when set, page and log links are absolute, usable from outside. */
  publicUrl?: string;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function toGroupImage(b: BuildRecord, options: BuildViewOptions): GroupImageView {
  const main = b.pushed.find((p) => p.tag === b.version) ?? b.pushed[0];
  return {
    id: b.id,
    service: b.service ?? null,
    state: b.state,
    image: b.image ? `${options.registry}/${b.image}` : null,
    version: b.version ?? null,
    needs: [...b.needs],
    ref: main?.ref ?? null,
    digest: main?.digest ?? null,
    failure: b.failure ?? null,
    page: `${options.publicUrl ?? ''}/builds/${b.id}`,
  };
}

/**
 * Pure: the same record always gives the same view (no clock), so it is a
 * unit test. `group` is the merge's image builds, when `build` planned them.
 */
export function toBuildView(build: BuildRecord, options: BuildViewOptions, group?: BuildRecord[]): BuildView {
  const base = options.publicUrl ?? '';
  const started = build.firstStartedAt ?? build.startedAt;
  const repoUrl = build.repoUrl.replace(/\/+$/, '');
  // The version tag is the one people pull; the rest follow in push order (latest, when moved, last).
  const pushed = [...build.pushed.filter((p) => p.tag === build.version), ...build.pushed.filter((p) => p.tag !== build.version)];
  return {
    id: build.id,
    state: build.state,
    trigger: build.trigger,
    repository: { owner: build.owner, name: build.repo, fullName: `${build.owner}/${build.repo}`, url: repoUrl },
    sha: build.sha,
    shortSha: build.sha.slice(0, 7),
    branch: build.branch,
    pullRequest: build.pullRequest ? { ...build.pullRequest } : null,
    image: build.image ? `${options.registry}/${build.image}` : null,
    version: build.version ?? null,
    pushed: pushed.map((p) => ({ ref: p.ref, tag: p.tag, digest: p.digest })),
    latest: build.latestPushed,
    attempts: build.attempts,
    mergedAt: build.mergedAt,
    createdAt: new Date(build.createdAt).toISOString(),
    startedAt: iso(started),
    finishedAt: iso(build.finishedAt),
    durationMs: started !== undefined && build.finishedAt !== undefined ? Math.max(build.finishedAt - started, 0) : null,
    failure: build.failure ?? null,
    notes: [...build.notes],
    links: {
      page: `${base}/builds/${build.id}`,
      log: `${base}/api/builds/${build.id}/log`,
      commit: `${repoUrl}/commit/${build.sha}`,
    },
    pull: pushed.map((p) => `docker pull ${p.ref}`),
    service: build.service ?? null,
    group: build.groupId === undefined ? null : { id: build.groupId, page: `${base}/builds/${build.groupId}` },
    needs: [...build.needs],
    fingerprint: build.fingerprint ?? null,
    force: build.force,
    images: group?.length ? group.map((b) => toGroupImage(b, options)) : null,
  };
}
