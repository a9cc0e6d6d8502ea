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
}

export interface BuildViewOptions {
  /** REGISTRY (host[:port]): images are named registry/service. */
  registry: string;
  /** PUBLIC_URL: when set, page and log links are absolute, usable from outside. */
  publicUrl?: string;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Pure: the same record always gives the same view (no clock), so it is a unit test. */
export function toBuildView(build: BuildRecord, options: BuildViewOptions): BuildView {
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
  };
}
