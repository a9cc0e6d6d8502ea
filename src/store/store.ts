import type { BuildRequest } from '../intake.js';

export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface PushedRef {
  ref: string;
  tag: string;
  digest: string;
}

/** One platform's image of a multi-platform build (the children of its index). */
export interface PlatformImage {
  /** os/arch[/variant], as dockerInfo.json's `platforms` lists it (normalised: linux/arm64). */
  platform: string;
  /** The child manifest's digest, in the image's repository. */
  digest: string;
  /** The internal tag it was pushed under (registry/internal-tags.ts platformTag). */
  tag: string;
}

/** A file set copied out of the built image and kept in the registry as an OCI artifact. */
export interface ArtifactRecord {
  /** The artifact's name in dockerInfo.json. */
  name: string;
  /** os/arch[/variant]; undefined when the image has no `platforms`. */
  platform?: string;
  /** The path copied out of the image. */
  path: string;
  /** Registry repository (the image's, without the registry host) and the internal tag it is under. */
  repository: string;
  tag: string;
  /** The artifact manifest's digest. */
  digest: string;
  /** The .tar.gz layer: its digest and size in bytes. */
  layerDigest: string;
  size: number;
}

export interface BuildRecord extends BuildRequest {
  id: number;
  state: BuildState;
  attempts: number;
  runAfter: number;
  createdAt: number;
  firstStartedAt?: number;
  startedAt?: number;
  finishedAt?: number;
  image?: string;
  version?: string;
  pushed: PushedRef[];
  /** Multi-platform builds: each platform's image, sorted by platform ([] otherwise). */
  platforms: PlatformImage[];
  /** Artifacts, sorted by name then platform ([] when dockerInfo.json asks for none). */
  artifacts: ArtifactRecord[];
  latestPushed: boolean;
  failure?: string;
  notes: string[];
  /**
   * Image builds of a multi-image merge point at the merge's own build (the
   * "head", which read dockerInfo.json and planned them): that is the group.
   * Undefined for heads and for single-image builds.
   */
  groupId?: number;
  /** Image builds: the service_name of dockerInfo.json's entry they build. */
  service?: string;
  /** Image builds: the services of the same group that must have pushed before this one starts, sorted by name ([] for any other build). */
  needs: string[];
  /** What the image's inputs hash to (git tree/blob SHAs, its entry, its dependencies'); equal to the last success's means "unchanged". */
  fingerprint?: string;
  force: boolean;
  /** A manual build limited to these images. */
  images?: string[];
  /** The worker holding the running build, and until when (ms since the epoch) unless it renews. */
  leaseOwner?: string;
  leaseUntil?: number;
}

export type EnqueueResult = { outcome: 'queued'; build: BuildRecord } | { outcome: 'duplicate'; build: BuildRecord };

export interface ListQuery {
  repo?: string;
  state?: BuildState;
  limit: number;
  /** Builds with an id below this one (keyset pagination: stable while new builds arrive). */
  before?: number;
}

/** One image of a multi-image merge, as its head planned it. */
export interface PlannedImage {
  service: string;
  needs: string[];
  fingerprint?: string;
}

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'skipped';

/** One deploy of a pushed image onto the host (issue 14): a merge's, or a rollback asked for through the API. */
export interface DeploymentRecord {
  id: number;
  service: string;
  version: string;
  sha: string;
  /** The manifest (or index) digest that was pulled and run. */
  digest: string;
  /** The build that pushed it (a rollback names the earlier build it takes the image from). */
  buildId: number;
  trigger: 'merge' | 'manual';
  environment: string;
  state: DeploymentState;
  /** Why it failed or was skipped, one line. */
  reason?: string;
  /** What the swap did, and the new container's last log lines when it failed. */
  log: string[];
  /** GitHub's deployment, once created. */
  githubId?: number;
  createdAt: number;
  finishedAt?: number;
}

export type NewDeployment = Pick<DeploymentRecord, 'service' | 'version' | 'sha' | 'digest' | 'buildId' | 'trigger' | 'environment'> & { state?: DeploymentState; reason?: string };

/**
 * What became of a delivery dockhook asked GitHub to redeliver (issue 15):
 * `requested` until a later listing shows the redelivery's result;
 * `delivered` (it arrived, or dockhook has its build), `failed` (the
 * redelivery failed too), `refused` (GitHub would not redeliver it).
 * Every state but `requested` is final: a GUID is redelivered once.
 */
export type RedeliveryState = 'requested' | 'delivered' | 'failed' | 'refused';

export interface Redelivery {
  guid: string;
  /** The webhook it came through (see Store.recoveryCheckpoint). */
  hook: string;
  /** GitHub's id of the delivery attempt that was redelivered: a later attempt of the GUID (a higher id) is the redelivery. */
  attemptId: number;
  state: RedeliveryState;
  requestedAt: number;
  settledAt?: number;
}

/** Who holds a claimed build, and for how long before another worker may take it over. */
export interface Lease {
  owner: string;
  ms: number;
}

/**
 * Everything dockhook keeps: the builds it owes and the deliveries it has
 * seen. Two implementations, SQLite (embedded, one host) and PostgreSQL
 * (shared by receivers and workers on many hosts), pass one contract suite
 * (test/contract/store-contract.ts). The rules live in constraints and
 * single statements, never in a read followed by a write:
 * - one build per delivery, and one live build per repository + commit
 *   (and one live forced one; a merge's image builds belong to its head's);
 * - one running merge per repository, claimed in merge order (the image
 *   builds of one merge run in parallel, one build per image at a time);
 * - `latest` and a version tag are claimed atomically before they are pushed.
 *
 * Writes about a running build name the lease owner: a worker whose lease ran
 * out (and whose build another worker took over) changes nothing.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  /**
   * Records a delivery's build before dockhook answers 2xx. A delivery or a
   * commit that already has a live or successful build is a duplicate; one
   * whose build failed gets a fresh attempt (that is what Redeliver is for).
   * A forced request is a duplicate only of a forced build of the commit
   * still queued or running. (A group counts as failed once one of its
   * images failed: the head is marked failed with it.)
   */
  enqueue(request: BuildRequest): Promise<EnqueueResult>;
  /** Several deliveries in one transaction: what a burst of deliveries costs once. */
  enqueueMany(requests: BuildRequest[]): Promise<EnqueueResult[]>;

  get(id: number): Promise<BuildRecord | undefined>;
  list(query: ListQuery): Promise<BuildRecord[]>;
  countByState(): Promise<Record<BuildState, number>>;

  /**
   * Takes the next build that may run now, under a lease: a queued one whose
   * retry delay has passed, whose repository has no running build of another
   * merge and no earlier merge still waiting, and whose `needs` (builds of its
   * own group) are all final (succeeded or failed: the pipeline fails a build
   * whose dependency failed); or a running one whose lease ran out (its
   * worker died), which runs again from the start. Image builds of one group
   * run in parallel; groups of one repository run one after another.
   */
  claimNext(lease: Lease): Promise<BuildRecord | undefined>;
  /** Extends the lease; false when the build is no longer this owner's (taken over, or finished). */
  renewLease(id: number, lease: Lease): Promise<boolean>;
  /** When (ms since the epoch) the next build may become claimable by time alone: a retry delay or a lease running out. */
  nextWakeAt(): Promise<number | undefined>;

  /**
   * A running head (under `owner`'s lease) read a multi-image dockerInfo.json:
   * one transaction queues one build per image (group = the head, needs as
   * given, the head's request and force copied) and marks the head succeeded
   * with `note`. Returns the image builds in the order given; undefined, and
   * nothing written, when the lease is no longer `owner`'s.
   */
  expandGroup(headId: number, images: PlannedImage[], note: string, owner: string): Promise<BuildRecord[] | undefined>;
  /** The image builds of a group, by id. */
  listGroup(groupId: number): Promise<BuildRecord[]>;
  /** The image's last successful build that pushed something, in merge order (merged_at, then id): what "unchanged" compares with. */
  lastSuccess(image: string): Promise<BuildRecord | undefined>;

  setImage(id: number, image: string, version: string, fingerprint?: string): Promise<void>;
  /** True when a later merge of this image has already moved `latest`: then this build must leave it alone. */
  hasLaterLatest(image: string, mergedAt: string, id: number): Promise<boolean>;
  /** Atomically takes `latest` of the image for this build unless a later merge holds it; false means leave `latest` alone. */
  claimLatest(image: string, mergedAt: string, id: number): Promise<boolean>;
  /**
   * Atomically binds image:version to a commit and returns the commit it
   * names: another one means refuse to push. A binding whose commit has no
   * live build of the image is taken over (the caller has already found the
   * tag absent from the registry: that build failed, or the tag was deleted).
   */
  claimVersion(image: string, version: string, sha: string): Promise<string>;
  /** The version tag was deleted from the registry: it may name another commit from now on. */
  releaseVersion(image: string, version: string): Promise<void>;
  /** The versions of an image bound to a commit (claimed, and not released by a deletion), sorted. */
  versionsOf(image: string): Promise<string[]>;
  /** True once per build: its post-push retention runs on the worker that gets true. */
  claimRetention(id: number): Promise<boolean>;

  addNote(id: number, note: string): Promise<void>;
  recordPush(id: number, pushed: PushedRef, isLatest: boolean): Promise<void>;
  /** One platform's image pushed; recording the same platform again (a retry) replaces it. */
  recordPlatform(id: number, image: PlatformImage): Promise<void>;
  /** One artifact pushed; recording the same name + platform again (a retry) replaces it. */
  recordArtifact(id: number, artifact: ArtifactRecord): Promise<void>;
  /** The final writes: false when the lease is no longer `owner`'s, and nothing was changed. */
  markSucceeded(id: number, owner: string): Promise<boolean>;
  /** An image build that fails also marks its group's head failed ("<service> failed"), in the same transaction, so a redelivery of the merge builds again. */
  markFailed(id: number, reason: string, owner: string): Promise<boolean>;
  /** Puts a running build back in the queue: a retry after `delayMs`, or a build interrupted by a stop. */
  requeue(id: number, delayMs: number, reason: string | undefined, owner: string): Promise<boolean>;

  /**
   * Starts a deployment of `service` (state in_progress, or the state given,
   * such as skipped). One deployment per service is in progress at a time
   * (a constraint): undefined means another is running now.
   */
  createDeployment(d: NewDeployment): Promise<DeploymentRecord | undefined>;
  /** The final state (and the GitHub deployment id when known); appends log lines. */
  finishDeployment(id: number, state: Exclude<DeploymentState, 'in_progress'>, reason: string | undefined, log: string[]): Promise<void>;
  setDeploymentGithubId(id: number, githubId: number): Promise<void>;
  getDeployment(id: number): Promise<DeploymentRecord | undefined>;
  /** Newest first; by service when given. */
  listDeployments(query: { service?: string; buildId?: number; limit: number }): Promise<DeploymentRecord[]>;
  /** The succeeded build that pushed service:version (the newest, if a forced rebuild pushed it again): what a rollback deploys. */
  buildOfVersion(service: string, version: string): Promise<BuildRecord | undefined>;

  /**
   * Recovery of missed deliveries (issue 15). A `hook` names one webhook
   * whose deliveries GitHub lists: `app:<app id>`, `repo:<owner>/<name>:<hook id>`.
   */
  /** Of these GUIDs (X-GitHub-Delivery), the ones a build was recorded for (whatever became of the build). */
  storedDeliveries(guids: string[]): Promise<Set<string>>;
  /** GitHub's delivered_at (ms) of the newest delivery of the hook a complete recovery pass saw; undefined before the first. */
  recoveryCheckpoint(hook: string): Promise<number | undefined>;
  /** Moves the hook's checkpoint forward (never back). */
  setRecoveryCheckpoint(hook: string, deliveredAt: number): Promise<void>;
  /** The redeliveries asked for of these GUIDs, by GUID. */
  redeliveries(guids: string[]): Promise<Map<string, Redelivery>>;
  /** Records that dockhook asks for this GUID's redelivery (state requested); false when it was asked for already (by anyone, ever): then don't ask. */
  claimRedelivery(r: Pick<Redelivery, 'guid' | 'hook' | 'attemptId'>): Promise<boolean>;
  /** GitHub could not be asked after all (it was down, or refused the credentials): a later pass may ask again. Only a `requested` one is released. */
  releaseRedelivery(guid: string): Promise<void>;
  /** The redelivery's end: true when it was `requested` and is now `state`, false when it was settled already. */
  settleRedelivery(guid: string, state: Exclude<RedeliveryState, 'requested'>): Promise<boolean>;
  /** Drops redeliveries requested before this time (ms): GitHub lists no deliveries that old, so none can come back. Returns how many. */
  forgetRedeliveries(requestedBefore: number): Promise<number>;
  /**
   * Runs fn while holding the recovery lock: one recovery pass at a time
   * across every process on the store (PostgreSQL: an advisory lock held by
   * one connection for the pass; SQLite: one process, so within it).
   * Undefined, and fn not called, when someone else holds it.
   */
  withRecoveryLock<T>(fn: () => Promise<T>): Promise<T | undefined>;

  /**
   * At a worker's start. SQLite (one process owns the file): whatever was
   * running when the process died runs again now. PostgreSQL: nothing, since
   * other workers may be running; a dead worker's leases simply run out.
   */
  recoverInterrupted(): Promise<number>;

  /** For /readyz: a real committed write proves the store accepts writes. */
  checkWritable(): Promise<void>;
  /** Calls fn when a build is queued anywhere (PostgreSQL: NOTIFY from any receiver); returns the unsubscribe function. */
  onQueued(fn: () => void): () => void;
  close(): Promise<void>;
}
