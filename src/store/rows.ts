import type { BuildRequest } from '../intake.js';
import type { BuildRecord, BuildState, ArtifactRecord, DeploymentRecord, DeploymentState, PlannedImage, PlatformImage, PushedRef } from './store.js';

/** A builds row as both backends return it (PostgreSQL gives jsonb parsed, SQLite gives text). */
export interface BuildRow {
  id: number;
  delivery_id: string;
  trigger: 'merge' | 'manual';
  owner: string;
  repo: string;
  repo_url: string;
  default_branch: string;
  branch: string;
  sha: string;
  merged_at: string;
  pr_number: number | null;
  pr_title: string | null;
  pr_url: string | null;
  state: BuildState;
  attempts: number;
  run_after: number;
  created_at: number;
  first_started_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  image: string | null;
  version: string | null;
  pushed: string | PushedRef[];
  platforms: string | PlatformImage[];
  artifacts: string | ArtifactRecord[];
  latest_pushed: number | boolean;
  failure: string | null;
  notes: string | string[];
  lease_owner: string | null;
  lease_until: number | null;
  group_id: number | null;
  service: string | null;
  fingerprint: string | null;
  forced: number | boolean;
  only_images: string | string[] | null;
  /** Not a column: the service names of the builds in build_needs, aggregated by each backend's SELECT (a JSON array). */
  needs: string | string[];
}

const ordinal = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const json = <T>(v: string | T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

export function toRecord(r: BuildRow): BuildRecord {
  return {
    id: Number(r.id),
    deliveryId: r.delivery_id,
    trigger: r.trigger,
    owner: r.owner,
    repo: r.repo,
    repoUrl: r.repo_url,
    defaultBranch: r.default_branch,
    branch: r.branch,
    sha: r.sha,
    mergedAt: r.merged_at,
    pullRequest: r.pr_number === null ? undefined : { number: r.pr_number, title: r.pr_title ?? '', url: r.pr_url ?? '' },
    state: r.state,
    attempts: r.attempts,
    runAfter: Number(r.run_after),
    createdAt: Number(r.created_at),
    firstStartedAt: r.first_started_at === null ? undefined : Number(r.first_started_at),
    startedAt: r.started_at === null ? undefined : Number(r.started_at),
    finishedAt: r.finished_at === null ? undefined : Number(r.finished_at),
    image: r.image ?? undefined,
    version: r.version ?? undefined,
    pushed: json<PushedRef[]>(r.pushed),
    // Kept in the order they were recorded; shown in a stable one.
    platforms: json<PlatformImage[]>(r.platforms).sort((a, b) => ordinal(a.platform, b.platform)),
    artifacts: json<ArtifactRecord[]>(r.artifacts)
      .map(({ platform, ...a }): ArtifactRecord => (platform == null ? a : { ...a, platform }))
      .sort((a, b) => ordinal(a.name, b.name) || ordinal(a.platform ?? '', b.platform ?? '')),
    latestPushed: r.latest_pushed === 1 || r.latest_pushed === true,
    failure: r.failure ?? undefined,
    notes: json<string[]>(r.notes),
    groupId: r.group_id === null ? undefined : Number(r.group_id),
    service: r.service ?? undefined,
    // By name: the order does not matter to the claim, and one order for both backends keeps records comparable.
    needs: json<string[]>(r.needs).sort(),
    fingerprint: r.fingerprint ?? undefined,
    force: r.forced === 1 || r.forced === true,
    images: r.only_images === null ? undefined : json<string[]>(r.only_images),
    leaseOwner: r.lease_owner ?? undefined,
    leaseUntil: r.lease_until === null ? undefined : Number(r.lease_until),
  };
}

export const emptyCounts = (): Record<BuildState, number> => ({ queued: 0, running: 0, succeeded: 0, failed: 0 });

/** The values of a new builds row, in the column order both INSERTs name (delivery_id … pr_url, then only_images; `forced` each backend binds its own way). */
export function requestValues(r: BuildRequest): (string | number | null)[] {
  const pr = r.pullRequest;
  return [
    r.deliveryId, r.trigger, r.owner, r.repo, r.repoUrl, r.defaultBranch, r.branch, r.sha, r.mergedAt, pr?.number ?? null, pr?.title ?? null, pr?.url ?? null,
    r.images === undefined ? null : JSON.stringify(r.images),
  ];
}

/**
 * expandGroup's plan, checked before anything is written: each service once,
 * every need another service of the plan. The pipeline has validated
 * dockerInfo.json already, so a bad plan is a programming error: it throws.
 */
export function checkPlan(images: PlannedImage[]): void {
  const services = new Set<string>();
  for (const i of images) {
    if (services.has(i.service)) throw new Error(`expandGroup: service ${i.service} is planned twice`);
    services.add(i.service);
  }
  for (const i of images) {
    for (const n of i.needs) {
      if (!services.has(n) || n === i.service) throw new Error(`expandGroup: ${i.service} needs ${JSON.stringify(n)}, which is not another image of the plan`);
    }
  }
}

export interface DeploymentRow {
  id: number | string;
  service: string;
  version: string;
  sha: string;
  digest: string;
  build_id: number | string;
  trigger: 'merge' | 'manual';
  environment: string;
  state: DeploymentState;
  reason: string | null;
  log: string | string[];
  github_id: number | string | null;
  created_at: number | string;
  finished_at: number | string | null;
}

export function toDeployment(r: DeploymentRow): DeploymentRecord {
  return {
    id: Number(r.id),
    service: r.service,
    version: r.version,
    sha: r.sha,
    digest: r.digest,
    buildId: Number(r.build_id),
    trigger: r.trigger,
    environment: r.environment,
    state: r.state,
    ...(r.reason == null ? {} : { reason: r.reason }),
    log: json<string[]>(r.log),
    ...(r.github_id == null ? {} : { githubId: Number(r.github_id) }),
    createdAt: Number(r.created_at),
    ...(r.finished_at == null ? {} : { finishedAt: Number(r.finished_at) }),
  };
}
