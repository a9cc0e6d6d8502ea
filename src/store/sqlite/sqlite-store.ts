import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { BuildRequest } from '../../intake.js';
import { checkPlan, emptyCounts, requestValues, toDeployment, toRecord, type BuildRow, type DeploymentRow } from '../rows.js';
import { schemaTooNew } from '../schema-version.js';
import type { BuildRecord, BuildState, EnqueueResult, Lease, ListQuery, PlannedImage, PlatformImage, ArtifactRecord, PushedRef, Store, DeploymentRecord, DeploymentState, NewDeployment, Redelivery, RedeliveryState } from '../store.js';
import { MIGRATIONS } from './schema.js';
import { toRedelivery, type RedeliveryRow } from '../redelivery-rows.js';

/** A builds row with its needs (the service names of the builds it waits for, as a JSON array), for toRecord. */
const COLUMNS = `builds.*, (SELECT json_group_array(n.service) FROM build_needs bn JOIN builds n ON n.id = bn.needs_id WHERE bn.build_id = builds.id) AS needs`;
/** A row's group: its head's id for an image build, its own id otherwise. */
const groupKey = (t: string) => `COALESCE(${t}.group_id, ${t}.id)`;

/**
 * The embedded store, DATA_DIR/dockhook.sqlite, for one host. better-sqlite3
 * is synchronous, so each method is one transaction and the process never
 * sees a half-written build; the Store interface is async because
 * PostgreSQL's is. WAL with synchronous=NORMAL: a commit survives a process
 * crash (what we promise); a power cut may lose the last few, which GitHub's
 * own redeliver covers.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly queued = new EventEmitter();

  constructor(dataDir: string, options: { clock?: () => number } = {}) {
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, 'dockhook.sqlite');
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    try {
      this.migrate(file);
    } catch (err) {
      // A file this code must not use (a newer schema): let go of it rather than hold it open.
      this.db.close();
      throw err;
    }
    this.clock = options.clock ?? Date.now;
    this.queued.setMaxListeners(0);
  }

  /** BEGIN IMMEDIATE takes the write lock first, so two processes opening one file cannot both migrate. */
  private migrate(file: string): void {
    this.db
      .transaction(() => {
        const at = this.db.pragma('user_version', { simple: true }) as number;
        if (at > MIGRATIONS.length) throw schemaTooNew(file, at, MIGRATIONS.length);
        for (let v = at; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })
      .immediate();
  }

  async close(): Promise<void> {
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

  private getSync(id: number): BuildRecord | undefined {
    const row = this.prepare<[number], BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE id = ?`).get(id);
    return row ? toRecord(row) : undefined;
  }

  private enqueueSync(request: BuildRequest): EnqueueResult {
    const seen = this.prepare<[string], BuildRow>(`SELECT ${COLUMNS} FROM deliveries d JOIN builds ON builds.id = d.build_id WHERE d.delivery_id = ?`).get(request.deliveryId);
    if (seen && seen.state !== 'failed') return { outcome: 'duplicate', build: toRecord(seen) };
    const now = this.clock();
    // The unique index on live builds of a commit decides (for a forced request: on its queued or
    // running forced build); DO NOTHING means one already exists. Each WHERE is its index's, word for word.
    const live = request.force
      ? "state IN ('queued', 'running') AND group_id IS NULL AND forced = 1"
      : "state != 'failed' AND group_id IS NULL AND forced = 0";
    const inserted = this.prepare<unknown[], { id: number }>(
      `INSERT INTO builds (delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, only_images, forced, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)
       ON CONFLICT (owner, repo, sha) WHERE ${live} DO NOTHING RETURNING id`,
    ).get(...requestValues(request), request.force ? 1 : 0, now);
    if (!inserted) {
      const existing = this.prepare<[string, string, string], BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE owner = ? AND repo = ? AND sha = ? AND ${live}`)
        .get(request.owner, request.repo, request.sha)!;
      this.prepare('INSERT OR IGNORE INTO deliveries (delivery_id, build_id, received_at) VALUES (?, ?, ?)').run(request.deliveryId, existing.id, now);
      return { outcome: 'duplicate', build: toRecord(existing) };
    }
    this.prepare('INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES (?, ?, ?) ON CONFLICT (delivery_id) DO UPDATE SET build_id = excluded.build_id')
      .run(request.deliveryId, inserted.id, now);
    return { outcome: 'queued', build: this.getSync(inserted.id)! };
  }

  async enqueue(request: BuildRequest): Promise<EnqueueResult> {
    const result = this.db.transaction(() => this.enqueueSync(request))();
    if (result.outcome === 'queued') this.queued.emit('queued');
    return result;
  }

  async enqueueMany(requests: BuildRequest[]): Promise<EnqueueResult[]> {
    const results = this.db.transaction(() => requests.map((r) => this.enqueueSync(r)))();
    if (results.some((r) => r.outcome === 'queued')) this.queued.emit('queued');
    return results;
  }

  async get(id: number): Promise<BuildRecord | undefined> {
    return this.getSync(id);
  }

  async list(query: ListQuery): Promise<BuildRecord[]> {
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
    const sql = `SELECT ${COLUMNS} FROM builds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.prepare<(string | number)[], BuildRow>(sql).all(...args, query.limit).map(toRecord);
  }

  async countByState(): Promise<Record<BuildState, number>> {
    const counts = emptyCounts();
    for (const r of this.prepare<[], { state: BuildState; n: number }>('SELECT state, COUNT(*) AS n FROM builds GROUP BY state').all()) counts[r.state] = r.n;
    return counts;
  }

  async claimNext(lease: Lease): Promise<BuildRecord | undefined> {
    return this.db.transaction(() => {
      const now = this.clock();
      const row = this.prepare<[number, number, string], { id: number }>(
        `SELECT id FROM builds b
          WHERE (b.state = 'queued' AND b.run_after <= ?
                 -- another merge of the repository running, or waiting and earlier (a group is one merge)
                 AND NOT EXISTS (
                   SELECT 1 FROM builds o WHERE o.owner = b.owner AND o.repo = b.repo AND ${groupKey('o')} != ${groupKey('b')}
                     AND (o.state = 'running' OR (o.state = 'queued' AND (o.merged_at < b.merged_at OR (o.merged_at = b.merged_at AND ${groupKey('o')} < ${groupKey('b')})))))
                 -- an image of its own group it needs, not final yet
                 AND NOT EXISTS (
                   SELECT 1 FROM build_needs bn JOIN builds n ON n.id = bn.needs_id WHERE bn.build_id = b.id AND n.state IN ('queued', 'running')))
             OR (b.state = 'running' AND b.lease_until <= ? AND b.lease_owner != ?)
          ORDER BY b.state = 'running' DESC, b.merged_at, ${groupKey('b')}, b.id LIMIT 1`,
      ).get(now, now, lease.owner);
      if (!row) return undefined;
      this.prepare(
        `UPDATE builds SET state = 'running', attempts = attempts + 1, started_at = ?, first_started_at = COALESCE(first_started_at, ?),
           lease_owner = ?, lease_until = ? WHERE id = ?`,
      ).run(now, now, lease.owner, now + lease.ms, row.id);
      return this.getSync(row.id);
    })();
  }

  async renewLease(id: number, lease: Lease): Promise<boolean> {
    const { changes } = this.prepare("UPDATE builds SET lease_until = ? WHERE id = ? AND state = 'running' AND lease_owner = ?").run(this.clock() + lease.ms, id, lease.owner);
    return changes === 1;
  }

  async nextWakeAt(): Promise<number | undefined> {
    // Only what lies ahead: a queued build already due waits for its repository's running build, whose end kicks the worker.
    const now = this.clock();
    const row = this.prepare<[number, number], { t: number | null }>(
      "SELECT MIN(t) AS t FROM (SELECT MIN(run_after) AS t FROM builds WHERE state = 'queued' AND run_after > ? UNION ALL SELECT MIN(lease_until) FROM builds WHERE state = 'running' AND lease_until > ?)",
    ).get(now, now);
    return row?.t ?? undefined;
  }

  async expandGroup(headId: number, images: PlannedImage[], note: string, owner: string): Promise<BuildRecord[] | undefined> {
    checkPlan(images);
    const builds = this.db.transaction(() => {
      const head = this.prepare<[number, string], { id: number }>("SELECT id FROM builds WHERE id = ? AND state = 'running' AND lease_owner = ?").get(headId, owner);
      if (!head) return undefined;
      const now = this.clock();
      const insert = this.prepare<[number, string, string | null, number], { id: number }>(
        `INSERT INTO builds (delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, forced,
                             state, created_at, group_id, service, fingerprint)
         SELECT delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, forced,
                'queued', ?, id, ?, ? FROM builds WHERE id = ? RETURNING id`,
      );
      const byService = new Map<string, number>();
      for (const image of images) byService.set(image.service, insert.get(now, image.service, image.fingerprint ?? null, headId)!.id);
      const need = this.prepare('INSERT INTO build_needs (build_id, needs_id) VALUES (?, ?)');
      for (const image of images) for (const n of new Set(image.needs)) need.run(byService.get(image.service)!, byService.get(n)!);
      this.prepare(
        `UPDATE builds SET state = 'succeeded', failure = NULL, finished_at = ?, lease_owner = NULL, lease_until = NULL, notes = json_insert(notes, '$[#]', ?)
          WHERE id = ?`,
      ).run(now, note, headId);
      return images.map((i) => this.getSync(byService.get(i.service)!)!);
    })();
    if (builds?.length) this.queued.emit('queued');
    return builds;
  }

  async listGroup(groupId: number): Promise<BuildRecord[]> {
    return this.prepare<[number], BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE group_id = ? ORDER BY id`).all(groupId).map(toRecord);
  }

  async lastSuccess(image: string): Promise<BuildRecord | undefined> {
    const row = this.prepare<[string], BuildRow>(
      `SELECT ${COLUMNS} FROM builds WHERE image = ? AND state = 'succeeded' AND json_array_length(pushed) > 0 ORDER BY merged_at DESC, id DESC LIMIT 1`,
    ).get(image);
    return row ? toRecord(row) : undefined;
  }

  async setImage(id: number, image: string, version: string, fingerprint?: string): Promise<void> {
    this.prepare('UPDATE builds SET image = ?, version = ?, fingerprint = COALESCE(?, fingerprint) WHERE id = ?').run(image, version, fingerprint ?? null, id);
  }

  async hasLaterLatest(image: string, mergedAt: string, id: number): Promise<boolean> {
    const row = this.prepare('SELECT 1 FROM image_latest WHERE image = ? AND build_id != ? AND merged_at > ?').get(image, id, mergedAt);
    return row !== undefined;
  }

  async claimLatest(image: string, mergedAt: string, id: number): Promise<boolean> {
    const { changes } = this.prepare(
      `INSERT INTO image_latest (image, merged_at, build_id) VALUES (?, ?, ?)
       ON CONFLICT (image) DO UPDATE SET merged_at = excluded.merged_at, build_id = excluded.build_id
       WHERE excluded.merged_at >= image_latest.merged_at OR image_latest.build_id = excluded.build_id`,
    ).run(image, mergedAt, id);
    return changes === 1;
  }

  async claimVersion(image: string, version: string, sha: string): Promise<string> {
    return this.db.transaction(() => {
      this.prepare(
        `INSERT INTO version_commits (image, version, sha) VALUES (?, ?, ?)
         ON CONFLICT (image, version) DO UPDATE SET sha = excluded.sha
         WHERE NOT EXISTS (SELECT 1 FROM builds b WHERE b.image = version_commits.image AND b.sha = version_commits.sha AND b.state IN ('queued', 'running'))`,
      ).run(image, version, sha);
      return this.prepare<[string, string], { sha: string }>('SELECT sha FROM version_commits WHERE image = ? AND version = ?').get(image, version)!.sha;
    })();
  }

  async versionsOf(image: string): Promise<string[]> {
    return this.prepare<[string], { version: string }>('SELECT version FROM version_commits WHERE image = ? ORDER BY version').all(image).map((r) => r.version);
  }

  async releaseVersion(image: string, version: string): Promise<void> {
    this.prepare('DELETE FROM version_commits WHERE image = ? AND version = ?').run(image, version);
  }

  async claimRetention(id: number): Promise<boolean> {
    return this.prepare('UPDATE builds SET retention_claimed = 1 WHERE id = ? AND retention_claimed = 0').run(id).changes === 1;
  }

  async addNote(id: number, note: string): Promise<void> {
    this.prepare("UPDATE builds SET notes = json_insert(notes, '$[#]', ?) WHERE id = ?").run(note, id);
  }

  async createDeployment(d: NewDeployment): Promise<DeploymentRecord | undefined> {
    const row = this.prepare<unknown[], DeploymentRow>(
      `INSERT INTO deployments (service, version, sha, digest, build_id, trigger, environment, state, reason, created_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`,
    ).get(d.service, d.version, d.sha, d.digest, d.buildId, d.trigger, d.environment, d.state ?? 'in_progress', d.reason ?? null, this.clock(), (d.state ?? 'in_progress') === 'in_progress' ? null : this.clock());
    return row ? toDeployment(row) : undefined;
  }

  async finishDeployment(id: number, state: Exclude<DeploymentState, 'in_progress'>, reason: string | undefined, log: string[]): Promise<void> {
    this.prepare(
      `UPDATE deployments SET state = ?, reason = ?, finished_at = ?,
         log = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(deployments.log) UNION ALL SELECT value FROM json_each(?)))
       WHERE id = ?`,
    ).run(state, reason ?? null, this.clock(), JSON.stringify(log), id);
  }

  async setDeploymentGithubId(id: number, githubId: number): Promise<void> {
    this.prepare('UPDATE deployments SET github_id = ? WHERE id = ?').run(githubId, id);
  }

  async getDeployment(id: number): Promise<DeploymentRecord | undefined> {
    const row = this.prepare<unknown[], DeploymentRow>('SELECT * FROM deployments WHERE id = ?').get(id);
    return row ? toDeployment(row) : undefined;
  }

  async listDeployments(query: { service?: string; buildId?: number; limit: number }): Promise<DeploymentRecord[]> {
    const rows = this.prepare<unknown[], DeploymentRow>(
      'SELECT * FROM deployments WHERE (? IS NULL OR service = ?) AND (? IS NULL OR build_id = ?) ORDER BY id DESC LIMIT ?',
    ).all(query.service ?? null, query.service ?? null, query.buildId ?? null, query.buildId ?? null, query.limit);
    return rows.map(toDeployment);
  }

  async buildOfVersion(service: string, version: string): Promise<BuildRecord | undefined> {
    const row = this.prepare<unknown[], BuildRow>(
      `SELECT ${COLUMNS} FROM builds WHERE image = ? AND version = ? AND state = 'succeeded' AND json_array_length(pushed) > 0 ORDER BY id DESC LIMIT 1`,
    ).get(service, version);
    return row ? toRecord(row) : undefined;
  }

  async recordPlatform(id: number, image: PlatformImage): Promise<void> {
    this.prepare(
      `UPDATE builds SET platforms = (
         SELECT json_group_array(json(value)) FROM (
           SELECT value FROM json_each(builds.platforms) WHERE json_extract(value, '$.platform') IS NOT ?
           UNION ALL SELECT json(?) AS value))
       WHERE id = ?`,
    ).run(image.platform, JSON.stringify(image), id);
  }

  async recordArtifact(id: number, artifact: ArtifactRecord): Promise<void> {
    this.prepare(
      `UPDATE builds SET artifacts = (
         SELECT json_group_array(json(value)) FROM (
           SELECT value FROM json_each(builds.artifacts) WHERE NOT (json_extract(value, '$.name') = ? AND json_extract(value, '$.platform') IS ?)
           UNION ALL SELECT json(?) AS value))
       WHERE id = ?`,
    ).run(artifact.name, artifact.platform ?? null, JSON.stringify(artifact), id);
  }

  async recordPush(id: number, pushed: PushedRef, isLatest: boolean): Promise<void> {
    this.prepare("UPDATE builds SET pushed = json_insert(pushed, '$[#]', json(?)), latest_pushed = MAX(latest_pushed, ?) WHERE id = ?")
      .run(JSON.stringify(pushed), isLatest ? 1 : 0, id);
  }

  async markSucceeded(id: number, owner: string): Promise<boolean> {
    return this.prepare(
      "UPDATE builds SET state = 'succeeded', failure = NULL, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'running' AND lease_owner = ?",
    ).run(this.clock(), id, owner).changes === 1;
  }

  async markFailed(id: number, reason: string, owner: string): Promise<boolean> {
    return this.db.transaction(() => {
      const failed = this.prepare(
        "UPDATE builds SET state = 'failed', failure = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'running' AND lease_owner = ?",
      ).run(reason, this.clock(), id, owner).changes === 1;
      // An image of a merge failed: so did the merge, whose redelivery then builds again.
      if (failed) {
        this.prepare(
          `UPDATE builds SET state = 'failed', failure = (SELECT COALESCE(i.service, 'an image') || ' failed' FROM builds i WHERE i.id = ?)
            WHERE id = (SELECT group_id FROM builds WHERE id = ?) AND state = 'succeeded'`,
        ).run(id, id);
      }
      return failed;
    })();
  }

  async requeue(id: number, delayMs: number, reason: string | undefined, owner: string): Promise<boolean> {
    const changed =
      this.prepare(
        "UPDATE builds SET state = 'queued', run_after = ?, failure = ?, started_at = NULL, lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'running' AND lease_owner = ?",
      ).run(this.clock() + delayMs, reason ?? null, id, owner).changes === 1;
    if (changed) this.queued.emit('queued');
    return changed;
  }

  // Many GUIDs as one JSON parameter: one statement whatever their number (as PostgreSQL's = ANY($1)).
  async storedDeliveries(guids: string[]): Promise<Set<string>> {
    const rows = this.prepare<[string], { delivery_id: string }>('SELECT delivery_id FROM deliveries WHERE delivery_id IN (SELECT value FROM json_each(?))').all(JSON.stringify(guids));
    return new Set(rows.map((r) => r.delivery_id));
  }

  async recoveryCheckpoint(hook: string): Promise<number | undefined> {
    return this.prepare<[string], { checked_to: number }>('SELECT checked_to FROM recovery_checkpoints WHERE hook = ?').get(hook)?.checked_to;
  }

  async setRecoveryCheckpoint(hook: string, deliveredAt: number): Promise<void> {
    this.prepare(
      `INSERT INTO recovery_checkpoints (hook, checked_to, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (hook) DO UPDATE SET checked_to = MAX(checked_to, excluded.checked_to), updated_at = excluded.updated_at`,
    ).run(hook, deliveredAt, this.clock());
  }

  async redeliveries(guids: string[]): Promise<Map<string, Redelivery>> {
    const rows = this.prepare<[string], RedeliveryRow>('SELECT * FROM redeliveries WHERE guid IN (SELECT value FROM json_each(?))').all(JSON.stringify(guids));
    return new Map(rows.map((r) => [r.guid, toRedelivery(r)]));
  }

  async claimRedelivery(r: Pick<Redelivery, 'guid' | 'hook' | 'attemptId'>): Promise<boolean> {
    return this.prepare("INSERT INTO redeliveries (guid, hook, attempt_id, state, requested_at) VALUES (?, ?, ?, 'requested', ?) ON CONFLICT (guid) DO NOTHING")
      .run(r.guid, r.hook, r.attemptId, this.clock()).changes === 1;
  }

  async releaseRedelivery(guid: string): Promise<void> {
    this.prepare("DELETE FROM redeliveries WHERE guid = ? AND state = 'requested'").run(guid);
  }

  async settleRedelivery(guid: string, state: Exclude<RedeliveryState, 'requested'>): Promise<boolean> {
    return this.prepare("UPDATE redeliveries SET state = ?, settled_at = ? WHERE guid = ? AND state = 'requested'").run(state, this.clock(), guid).changes === 1;
  }

  async forgetRedeliveries(requestedBefore: number): Promise<number> {
    return this.prepare('DELETE FROM redeliveries WHERE requested_at < ?').run(requestedBefore).changes;
  }

  /** One process owns the file: a pass already running in it is the only other holder. */
  private recoveryLocked = false;
  async withRecoveryLock<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.recoveryLocked) return undefined;
    this.recoveryLocked = true;
    try {
      return await fn();
    } finally {
      this.recoveryLocked = false;
    }
  }

  async recoverInterrupted(): Promise<number> {
    return this.prepare("UPDATE builds SET state = 'queued', run_after = 0, started_at = NULL, lease_owner = NULL, lease_until = NULL WHERE state = 'running'").run().changes;
  }

  async checkWritable(): Promise<void> {
    this.prepare('INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)').run(this.clock());
  }

  onQueued(fn: () => void): () => void {
    this.queued.on('queued', fn);
    return () => this.queued.off('queued', fn);
  }
}
