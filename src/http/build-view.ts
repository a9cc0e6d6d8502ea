import type { ArtifactRecord, BuildRecord, BuildState, DeploymentRecord, DeploymentState, PlatformImage } from '../store/store.js';
import type { BuildRequest } from '../intake.js';

/**
 * What the API answers and the pages show for one build. Plain JSON: times as
 * ISO strings, absent facts as null (not missing keys), so clients can rely
 * on the shape.
 */
export interface BuildView {
  id: number;
  state: BuildState;
  trigger: BuildRequest['trigger'];
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
  /** A multi-platform build's images, one per platform, sorted by platform; [] otherwise. */
  platforms: PlatformView[];
  /** The files copied out of the image (one per platform when it has platforms), sorted by name then platform. */
  artifacts: ArtifactView[];
  /** Deploys of what this build pushed (issue 14), newest first; [] when none was asked for or shown. */
  deployments: DeploymentView[];
}

/** One platform's image of a multi-platform build: the index's child. */
export interface PlatformView {
  /** os/arch[/variant]. */
  platform: string;
  /** The child manifest's digest, in the image's repository. */
  digest: string;
  /** The internal tag it is kept under (_platform-…). */
  tag: string;
}

/** One artifact, as GET /api/builds/<id>/artifacts lists it. */
export interface ArtifactView {
  name: string;
  /** os/arch[/variant]; null when the image was built for the engine's own platform only. */
  platform: string | null;
  /** The path copied out of the image. */
  path: string;
  /** Bytes of the .tar.gz. */
  size: number;
  /** sha256 of the .tar.gz (the layer): what the downloaded file hashes to. */
  digest: string;
  /** The artifact manifest's digest. */
  manifest: string;
  /** `<registry>/<repository>@<manifest>`: what `oras pull` takes. */
  reference: string;
  /** Where to download the .tar.gz: absolute with PUBLIC_URL (or `origin`), else a path. */
  url: string;
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

export interface DeploymentView {
  id: number;
  service: string;
  version: string;
  state: DeploymentState;
  trigger: 'merge' | 'manual';
  environment: string;
  reason: string | null;
  /** What the swap did; on failure, the new container's last log lines (prefixed "| "). */
  log: string[];
  digest: string;
  createdAt: string;
  finishedAt: string | null;
}

export function toDeploymentView(d: DeploymentRecord): DeploymentView {
  return {
    id: d.id,
    service: d.service,
    version: d.version,
    state: d.state,
    trigger: d.trigger,
    environment: d.environment,
    reason: d.reason ?? null,
    log: d.log,
    digest: d.digest,
    createdAt: new Date(d.createdAt).toISOString(),
    finishedAt: d.finishedAt === undefined ? null : new Date(d.finishedAt).toISOString(),
  };
}

export interface BuildViewOptions {
  /** REGISTRY (host[:port]): images are named registry/service. */
  registry: string;
  /** PUBLIC_URL: when set, page and log links are absolute, usable from outside. */
  publicUrl?: string;
  /**
   * protocol://host the request reached: makes artifact download URLs
   * absolute when PUBLIC_URL is unset (a curl line needs a whole URL).
   */
  origin?: string;
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

/** `?platform=linux/arm64`: the slash is legal in a query and easier to read in a curl line. */
const platformQuery = (platform: string) => `?platform=${encodeURIComponent(platform).replace(/%2F/gi, '/')}`;

/** dist.tar.gz, or dist-linux-arm-v7.tar.gz for one platform's: the file name a download is saved under. */
export function downloadFileName(a: { name: string; platform?: string | null }): string {
  const base = a.platform ? `${a.name}-${a.platform.split('/').join('-')}` : a.name;
  // Artifact names and platforms are [a-z0-9._-] already; anything else could break the Content-Disposition quoting.
  return `${base.replace(/[^A-Za-z0-9._-]/g, '_')}.tar.gz`;
}

/** The download route of one artifact of build `id`. */
export function artifactPath(id: number, name: string, platform?: string): string {
  return `/api/builds/${id}/artifacts/${encodeURIComponent(name)}${platform ? platformQuery(platform) : ''}`;
}

export function toArtifactView(id: number, a: ArtifactRecord, options: BuildViewOptions): ArtifactView {
  return {
    name: a.name,
    platform: a.platform ?? null,
    path: a.path,
    size: a.size,
    digest: a.layerDigest,
    manifest: a.digest,
    reference: `${options.registry}/${a.repository}@${a.digest}`,
    url: `${options.publicUrl ?? options.origin ?? ''}${artifactPath(id, a.name, a.platform)}`,
  };
}

/** The artifacts of a build, in the store's order (name, then platform). */
export function toArtifactViews(build: BuildRecord, options: BuildViewOptions): ArtifactView[] {
  // `?? []`: rows written before artifacts existed.
  return (build.artifacts ?? []).map((a) => toArtifactView(build.id, a, options));
}

const toPlatformView = (p: PlatformImage): PlatformView => ({ platform: p.platform, digest: p.digest, tag: p.tag });

/**
 * Pure: the same record always gives the same view (no clock), so it is a
 * unit test. `group` is the merge's image builds, when `build` planned them.
 */
export function toBuildView(build: BuildRecord, options: BuildViewOptions, group?: BuildRecord[], deployments: DeploymentRecord[] = []): BuildView {
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
    platforms: (build.platforms ?? []).map(toPlatformView),
    artifacts: toArtifactViews(build, options),
    deployments: deployments.map(toDeploymentView),
  };
}
