import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BuildRequest } from '../intake.js';
import { SCHEMA } from './schema.js';

export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface PushedRef {
  ref: string;
  tag: string;
  digest: string;
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
  latestPushed: boolean;
  failure?: string;
  notes: string[];
}

export type EnqueueResult = { outcome: 'queued'; build: BuildRecord } | { outcome: 'duplicate'; build: BuildRecord };

export interface ListQuery {
  repo?: string;
  state?: BuildState;
  limit: number;
  /** Builds with an id below this one (keyset pagination: stable while new builds arrive). */
  before?: number;
}

interface Row {
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
  pushed: string;
  latest_pushed: number;
  failure: string | null;
  notes: string;
}

function toRecord(r: Row): BuildRecord {
  return {
    id: r.id,
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
    runAfter: r.run_after,
    createdAt: r.created_at,
    firstStartedAt: r.first_started_at ?? undefined,
    startedAt: r.started_at ?? undefined,
    finishedAt: r.finished_at ?? undefined,
    image: r.image ?? undefined,
    version: r.version ?? undefined,
    pushed: JSON.parse(r.pushed) as PushedRef[],
    latestPushed: r.latest_pushed === 1,
    failure: r.failure ?? undefined,
    notes: JSON.parse(r.notes) as string[],
  };
}

/**
 * The durable queue. better-sqlite3 is synchronous, so each method is one
 * transaction and the process never sees a half-written build. WAL with
 * synchronous=NORMAL: a commit survives a process crash (what we promise);
 * a power cut may lose the last few, which GitHub's own redeliver covers.
 */
export class BuildStore {
  readonly db: Database.Database;
  private readonly clock: () => number;

  constructor(dataDir: string, options: { clock?: () => number } = {}) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(join(dataDir, 'dockhook.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.clock = options.clock ?? Date.now;
  }

  close(): void {
    this.db.close();
  }

  // Preparing a statement costs more than running it; the webhook path runs several per delivery.
  private readonly statements = new Map<string, Database.Statement>();
  private prepare<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Database.Statement<P, R>;
  }

  /**
   * Records a delivery's build before dockhook answers 2xx. A delivery or a
   * commit that already has a live or successful build is a duplicate; one
   * whose build failed gets a fresh attempt (that is what Redeliver is for).
   */
  enqueue(request: BuildRequest): EnqueueResult {
    return this.db.transaction((): EnqueueResult => {
      const seen = this.prepare<[string], Row>('SELECT b.* FROM deliveries d JOIN builds b ON b.id = d.build_id WHERE d.delivery_id = ?')
        .get(request.deliveryId);
      if (seen && seen.state !== 'failed') return { outcome: 'duplicate', build: toRecord(seen) };
      const sameCommit = this.prepare<[string, string, string], Row>(
          "SELECT * FROM builds WHERE owner = ? AND repo = ? AND sha = ? AND state != 'failed' ORDER BY id DESC LIMIT 1",
        )
        .get(request.owner, request.repo, request.sha);
      if (sameCommit) {
        this.prepare('INSERT OR IGNORE INTO deliveries (delivery_id, build_id, received_at) VALUES (?, ?, ?)').run(request.deliveryId, sameCommit.id, this.clock());
        return { outcome: 'duplicate', build: toRecord(sameCommit) };
      }
      const now = this.clock();
      const { lastInsertRowid } = this.prepare(
          `INSERT INTO builds (delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, state, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)`,
        )
        .run(
          request.deliveryId,
          request.trigger,
          request.owner,
          request.repo,
          request.repoUrl,
          request.defaultBranch,
          request.branch,
          request.sha,
          request.mergedAt,
          request.pullRequest?.number ?? null,
          request.pullRequest?.title ?? null,
          request.pullRequest?.url ?? null,
          now,
        );
      const id = Number(lastInsertRowid);
      this.prepare('INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES (?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET build_id = excluded.build_id')
        .run(request.deliveryId, id, now);
      return { outcome: 'queued', build: this.get(id)! };
    })();
  }

  /** Several deliveries in one transaction, so one commit: what a burst of deliveries costs once. */
  enqueueMany(requests: BuildRequest[]): EnqueueResult[] {
    return this.db.transaction(() => requests.map((r) => this.enqueue(r)))();
  }

  get(id: number): BuildRecord | undefined {
    const row = this.prepare<[number], Row>('SELECT * FROM builds WHERE id = ?').get(id);
    return row ? toRecord(row) : undefined;
  }

  list(query: ListQuery): BuildRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.repo) {
      const [owner, repo] = query.repo.split('/');
      where.push('owner = ? AND repo = ?');
      args.push(owner ?? '', repo ?? '');
    }
    if (query.state) {
      where.push('state = ?');
      args.push(query.state);
    }
    if (query.before !== undefined) {
      where.push('id < ?');
      args.push(query.before);
    }
    const sql = `SELECT * FROM builds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.prepare<(string | number)[], Row>(sql).all(...args, query.limit).map(toRecord);
  }

  countByState(): Record<BuildState, number> {
    const counts: Record<BuildState, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
    for (const r of this.prepare<[], { state: BuildState; n: number }>('SELECT state, COUNT(*) AS n FROM builds GROUP BY state').all()) counts[r.state] = r.n;
    return counts;
  }

  /**
   * Takes the next build that may run now: its retry delay has passed, no
   * build of the same repository is running, and no earlier merge of that
   * repository is still waiting (one image's builds run in merge order).
   */
  claimNext(): BuildRecord | undefined {
    return this.db.transaction(() => {
      const now = this.clock();
      const row = this.prepare<[number], Row>(
          `SELECT * FROM builds b WHERE b.state = 'queued' AND b.run_after <= ?
             AND NOT EXISTS (
               SELECT 1 FROM builds o WHERE o.owner = b.owner AND o.repo = b.repo AND o.id != b.id
                 AND (o.state = 'running' OR (o.state = 'queued' AND (o.merged_at < b.merged_at OR (o.merged_at = b.merged_at AND o.id < b.id)))))
           ORDER BY b.merged_at, b.id LIMIT 1`,
        )
        .get(now);
      if (!row) return undefined;
      this.prepare("UPDATE builds SET state = 'running', attempts = attempts + 1, started_at = ?, first_started_at = COALESCE(first_started_at, ?) WHERE id = ?")
        .run(now, now, row.id);
      return this.get(row.id);
    })();
  }

  /** Milliseconds until the earliest delayed build may run, if any is waiting. */
  nextRunAfter(): number | undefined {
    const row = this.prepare<[], { t: number | null }>("SELECT MIN(run_after) AS t FROM builds WHERE state = 'queued'").get();
    return row?.t ?? undefined;
  }

  setImage(id: number, image: string, version: string): void {
    this.prepare('UPDATE builds SET image = ?, version = ? WHERE id = ?').run(image, version, id);
  }

  /** True when a later merge of this image has already moved `latest`: then this build must leave it alone. */
  hasLaterLatest(image: string, mergedAt: string, id: number): boolean {
    const row = this.prepare('SELECT 1 FROM builds WHERE image = ? AND latest_pushed = 1 AND id != ? AND merged_at > ? LIMIT 1')
      .get(image, id, mergedAt);
    return row !== undefined;
  }

  addNote(id: number, note: string): void {
    this.prepare("UPDATE builds SET notes = json_insert(notes, '$[#]', ?) WHERE id = ?").run(note, id);
  }

  recordPush(id: number, pushed: PushedRef, isLatest: boolean): void {
    this.prepare("UPDATE builds SET pushed = json_insert(pushed, '$[#]', json(?)), latest_pushed = MAX(latest_pushed, ?) WHERE id = ?")
      .run(JSON.stringify(pushed), isLatest ? 1 : 0, id);
  }

  markSucceeded(id: number): void {
    this.prepare("UPDATE builds SET state = 'succeeded', failure = NULL, finished_at = ? WHERE id = ?").run(this.clock(), id);
  }

  markFailed(id: number, reason: string): void {
    this.prepare("UPDATE builds SET state = 'failed', failure = ?, finished_at = ? WHERE id = ?").run(reason, this.clock(), id);
  }

  /** Puts a running build back in the queue: a retry after `delayMs`, or a build interrupted by a stop. */
  requeue(id: number, delayMs: number, reason?: string): void {
    this.prepare("UPDATE builds SET state = 'queued', run_after = ?, failure = ?, started_at = NULL WHERE id = ?")
      .run(this.clock() + delayMs, reason ?? null, id);
  }

  /** At start-up: whatever was running when the process died runs again. */
  recoverInterrupted(): number {
    return this.prepare("UPDATE builds SET state = 'queued', run_after = 0, started_at = NULL WHERE state = 'running'").run().changes;
  }

  /** For /readyz: a real committed write proves the disk and the database file accept writes. */
  checkWritable(): void {
    this.prepare('INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)').run(this.clock());
  }
}
