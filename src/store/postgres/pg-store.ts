import pg from 'pg';
import { AppError } from '../../errors.js';
import type { BuildRequest } from '../../intake.js';
import type { Logger } from '../../log.js';
import { checkPlan, emptyCounts, requestValues, toDeployment, toRecord, type BuildRow, type DeploymentRow } from '../rows.js';
import { schemaTooNew } from '../schema-version.js';
import type { BuildRecord, BuildState, EnqueueResult, Lease, ListQuery, PlannedImage, PlatformImage, ArtifactRecord, PushedRef, Store, DeploymentRecord, DeploymentState, NewDeployment, Redelivery, RedeliveryState } from '../store.js';
import { isConnectionError, redactDatabaseUrl, unavailable } from './errors.js';
import { PgNotifier } from './notifier.js';
import { MIGRATIONS } from './schema.js';
import { toRedelivery, type RedeliveryRow } from '../redelivery-rows.js';

// BIGINT columns hold milliseconds and ids, far below 2^53: numbers, not strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** The database's clock, in ms: every host sees one time for leases and retry delays, whatever its own clock says. */
const NOW = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** Any number: the key of the advisory lock that serialises migrations across starting processes. */
const MIGRATION_LOCK = 0x646f636b; // 'dock'
/** The advisory lock one recovery pass holds, so receivers sharing the database take turns ('dockr'). */
const RECOVERY_LOCK = 0x646f636b72;
export const QUEUED_CHANNEL = 'dockhook_queued';
/** A builds row with its needs (the service names of the builds it waits for, a jsonb array), for toRecord; also as a RETURNING list. */
const COLUMNS = `builds.*, (SELECT COALESCE(jsonb_agg(n.service), '[]'::jsonb) FROM build_needs bn JOIN builds n ON n.id = bn.needs_id WHERE bn.build_id = builds.id) AS needs`;
/** A row's group: its head's id for an image build, its own id otherwise. */
const groupKey = (t: string) => `COALESCE(${t}.group_id, ${t}.id)`;

type Queryable = pg.Pool | pg.PoolClient;

/**
 * The shared store: receivers and workers on any number of hosts use one
 * database. Claims are `SELECT … FOR UPDATE SKIP LOCKED` under a lease; the
 * rules are unique indexes (see schema.ts), so two hosts racing get one
 * winner, never two builds. Enqueues NOTIFY `dockhook_queued` in their
 * transaction, so an idle worker wakes as soon as the build is committed.
 */
export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly notifier: PgNotifier;

  private constructor(
    private readonly url: string,
    log: Logger,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000 });
    // An idle client whose server went away emits here; without a listener the process would crash.
    this.pool.on('error', (err) => log.warn({ err: err.message }, 'an idle PostgreSQL connection was lost'));
    this.notifier = new PgNotifier(url, log);
  }

  /** Connects and migrates; fails naming DATABASE_URL (password redacted) when PostgreSQL cannot be reached. */
  static async open(url: string, log: Logger): Promise<PgStore> {
    const store = new PgStore(url, log);
    try {
      await store.migrate();
    } catch (err) {
      await store.pool.end().catch(() => {});
      if (isConnectionError(err) || (err as { code?: string }).code === '28P01' || (err as { code?: string }).code === '3D000') {
        throw new AppError(503, `cannot open the store at DATABASE_URL=${redactDatabaseUrl(url)}: ${(err as Error).message}`, {
          hint: 'check that PostgreSQL runs, that this host reaches it, and the user, password and database in DATABASE_URL',
          cause: err,
        });
      }
      throw err;
    }
    return store;
  }

  /** Under an advisory lock, so two processes starting at once migrate once. */
  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version');
      const at = rows[0]?.version ?? 0;
      if (at > MIGRATIONS.length) throw schemaTooNew(`the database at DATABASE_URL=${redactDatabaseUrl(this.url)}`, at, MIGRATIONS.length);
      for (let v = at; v < MIGRATIONS.length; v++) {
        await client.query('BEGIN');
        await client.query(MIGRATIONS[v]!);
        await client.query('DELETE FROM schema_version');
        await client.query('INSERT INTO schema_version (version) VALUES ($1)', [v + 1]);
        await client.query('COMMIT');
      }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
      client.release();
    }
  }

  private async q<R extends pg.QueryResultRow>(sql: string, args: unknown[] = [], on: Queryable = this.pool): Promise<pg.QueryResult<R>> {
    try {
      // Named, so each connection parses and plans a statement once: the webhook path runs several per delivery.
      if (/^(BEGIN|COMMIT|ROLLBACK)$/.test(sql)) return await on.query<R>(sql);
      return await on.query<R>({ name: this.statementName(sql), text: sql, values: args });
    } catch (err) {
      throw isConnectionError(err) ? unavailable(this.url, err) : err;
    }
  }

  private readonly statementNames = new Map<string, string>();
  private statementName(sql: string): string {
    let name = this.statementNames.get(sql);
    if (!name) {
      name = `dockhook_${this.statementNames.size + 1}`;
      this.statementNames.set(sql, name);
    }
    return name;
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw isConnectionError(err) ? unavailable(this.url, err) : err;
    }
    // A checked-out client has no pool listener: a server going away between two statements
    // would otherwise be an unhandled 'error' event, which ends the process. The statement that
    // follows fails instead (and says the store is unavailable).
    let lost: Error | undefined;
    const onError = (err: Error) => (lost = err);
    client.on('error', onError);
    try {
      await this.q('BEGIN', [], client);
      const result = await fn(client);
      await this.q('COMMIT', [], client);
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  }

  private async enqueueIn(client: pg.PoolClient, request: BuildRequest): Promise<EnqueueResult> {
    const seen = await this.q<BuildRow>(`SELECT ${COLUMNS} FROM deliveries d JOIN builds ON builds.id = d.build_id WHERE d.delivery_id = $1`, [request.deliveryId], client);
    if (seen.rows[0] && seen.rows[0].state !== 'failed') return { outcome: 'duplicate', build: toRecord(seen.rows[0]) };
    // The unique index on live builds of a commit decides (for a forced request: on its queued or
    // running forced build). Each WHERE is its index's, word for word, so ON CONFLICT infers it.
    const live = request.force
      ? "state IN ('queued', 'running') AND group_id IS NULL AND forced"
      : "state <> 'failed' AND group_id IS NULL AND NOT forced";
    // A concurrent transaction inserting the same commit makes ours wait, then DO NOTHING: one build, never two.
    const inserted = await this.q<BuildRow>(
      `INSERT INTO builds (delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, only_images, forced, state, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, 'queued', ${NOW})
       ON CONFLICT (owner, repo, sha) WHERE ${live} DO NOTHING RETURNING ${COLUMNS}`,
      [...requestValues(request), request.force === true],
      client,
    );
    const build = inserted.rows[0];
    if (!build) {
      const existing = await this.q<BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE owner = $1 AND repo = $2 AND sha = $3 AND ${live}`, [request.owner, request.repo, request.sha], client);
      // Failed (or, forced, finished) between our insert and this read: the caller's retry inserts a fresh build.
      if (!existing.rows[0]) throw new RetryEnqueue();
      await this.q(`INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES ($1, $2, ${NOW}) ON CONFLICT (delivery_id) DO NOTHING`, [request.deliveryId, existing.rows[0].id], client);
      return { outcome: 'duplicate', build: toRecord(existing.rows[0]) };
    }
    await this.q(
      `INSERT INTO deliveries (delivery_id, build_id, received_at) VALUES ($1, $2, ${NOW}) ON CONFLICT (delivery_id) DO UPDATE SET build_id = excluded.build_id`,
      [request.deliveryId, build.id],
      client,
    );
    return { outcome: 'queued', build: toRecord(build) };
  }

  async enqueue(request: BuildRequest): Promise<EnqueueResult> {
    return (await this.enqueueMany([request]))[0]!;
  }

  async enqueueMany(requests: BuildRequest[]): Promise<EnqueueResult[]> {
    if (requests.length === 0) return [];
    const keys = commitLockKeys(requests);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction(async (client) => {
          // Two batches naming the same commits in different orders would each wait for the other's
          // insert (a deadlock PostgreSQL breaks only after deadlock_timeout, 1 s). Taking the
          // commits' locks first, in one global order, makes the later batch wait for the earlier.
          // One commit cannot close such a cycle, so a single delivery (the usual batch) skips this.
          if (keys.length > 1) await this.q(`SELECT pg_advisory_xact_lock(${ENQUEUE_LOCK}, k) FROM unnest($1::int[]) AS k`, [keys], client);
          const results: EnqueueResult[] = [];
          for (const r of requests) results.push(await this.enqueueIn(client, r));
          // Delivered at COMMIT, to every LISTENing worker.
          if (results.some((r) => r.outcome === 'queued')) await this.q(`SELECT pg_notify('${QUEUED_CHANNEL}', '')`, [], client);
          return results;
        });
      } catch (err) {
        const retry = err instanceof RetryEnqueue || (err as { code?: string }).code === DEADLOCK;
        if (!retry || attempt >= 3) throw err;
      }
    }
  }

  async get(id: number): Promise<BuildRecord | undefined> {
    const { rows } = await this.q<BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE id = $1`, [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(query: ListQuery): Promise<BuildRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => `$${args.push(v)}`;
    if (query.repo) {
      const [owner, repo] = query.repo.split('/');
      where.push(`owner = ${arg(owner ?? '')} AND repo = ${arg(repo ?? '')}`);
    }
    if (query.state) where.push(`state = ${arg(query.state)}`);
    if (query.before !== undefined) where.push(`id < ${arg(query.before)}`);
    const sql = `SELECT ${COLUMNS} FROM builds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${arg(query.limit)}`;
    return (await this.q<BuildRow>(sql, args)).rows.map(toRecord);
  }

  async countByState(): Promise<Record<BuildState, number>> {
    const counts = emptyCounts();
    const { rows } = await this.q<{ state: BuildState; n: number }>('SELECT state, COUNT(*)::int AS n FROM builds GROUP BY state');
    for (const r of rows) counts[r.state] = r.n;
    return counts;
  }

  async claimNext(lease: Lease): Promise<BuildRecord | undefined> {
    // A build locked by another claimer is skipped, and while uncommitted it still counts as the
    // repository's earlier queued merge (or as a queued need), so what waits for it is not taken either.
    // A group's images appear (and its head ends) in one commit, so no snapshot shows a merge with nothing live.
    const sql = `
      WITH next AS (
        SELECT b.id FROM builds b
         WHERE (b.state = 'queued' AND b.run_after <= ${NOW}
                -- another merge of the repository running, or waiting and earlier (a group is one merge)
                AND NOT EXISTS (
                  SELECT 1 FROM builds o WHERE o.owner = b.owner AND o.repo = b.repo AND ${groupKey('o')} <> ${groupKey('b')}
                    AND (o.state = 'running' OR (o.state = 'queued' AND (o.merged_at < b.merged_at OR (o.merged_at = b.merged_at AND ${groupKey('o')} < ${groupKey('b')})))))
                -- an image of its own group it needs, not final yet
                AND NOT EXISTS (
                  SELECT 1 FROM build_needs bn JOIN builds n ON n.id = bn.needs_id WHERE bn.build_id = b.id AND n.state IN ('queued', 'running')))
            -- another worker's lapsed lease; our own build is still running here
            OR (b.state = 'running' AND b.lease_until <= ${NOW} AND b.lease_owner <> $1)
         ORDER BY (b.state = 'running') DESC, b.merged_at, ${groupKey('b')}, b.id
         LIMIT 1
         FOR UPDATE OF b SKIP LOCKED)
      UPDATE builds SET state = 'running', attempts = attempts + 1, started_at = ${NOW}, first_started_at = COALESCE(first_started_at, ${NOW}),
             lease_owner = $1, lease_until = ${NOW} + $2
        FROM next WHERE builds.id = next.id
      RETURNING ${COLUMNS}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.q<BuildRow>(sql, [lease.owner, lease.ms]);
        return rows[0] ? toRecord(rows[0]) : undefined;
      } catch (err) {
        // Another worker started a build of the same repository (and image) in the same instant: the unique index said no.
        if ((err as { code?: string }).code !== '23505' || attempt >= 3) throw err;
      }
    }
  }

  async renewLease(id: number, lease: Lease): Promise<boolean> {
    const { rowCount } = await this.q(`UPDATE builds SET lease_until = ${NOW} + $3 WHERE id = $1 AND state = 'running' AND lease_owner = $2`, [id, lease.owner, lease.ms]);
    return rowCount === 1;
  }

  async nextWakeAt(): Promise<number | undefined> {
    // In this host's clock: the worker's timer runs here. The offset to the database's clock is added back.
    const { rows } = await this.q<{ t: number | null; now: number }>(
      `SELECT LEAST((SELECT MIN(run_after) FROM builds WHERE state = 'queued' AND run_after > ${NOW}),
                     (SELECT MIN(lease_until) FROM builds WHERE state = 'running' AND lease_until > ${NOW})) AS t, ${NOW} AS now`,
    );
    const row = rows[0];
    if (!row || row.t === null) return undefined;
    return Date.now() + (row.t - row.now);
  }

  async expandGroup(headId: number, images: PlannedImage[], note: string, owner: string): Promise<BuildRecord[] | undefined> {
    checkPlan(images);
    return this.transaction(async (client) => {
      // Locked: a takeover of a lapsed lease waits for this, then finds the head finished.
      const head = await this.q("SELECT id FROM builds WHERE id = $1 AND state = 'running' AND lease_owner = $2 FOR UPDATE", [headId, owner], client);
      if (head.rowCount !== 1) return undefined;
      const { rows } = await this.q<{ id: number; service: string }>(
        `INSERT INTO builds (delivery_id, trigger, owner, repo, repo_url, default_branch, branch, sha, merged_at, pr_number, pr_title, pr_url, forced,
                             state, created_at, group_id, service, fingerprint)
         SELECT h.delivery_id, h.trigger, h.owner, h.repo, h.repo_url, h.default_branch, h.branch, h.sha, h.merged_at, h.pr_number, h.pr_title, h.pr_url, h.forced,
                'queued', ${NOW}, h.id, p.service, p.fingerprint
           FROM builds h, unnest($2::text[], $3::text[]) WITH ORDINALITY AS p (service, fingerprint, n)
          WHERE h.id = $1 ORDER BY p.n
         RETURNING id, service`,
        [headId, images.map((i) => i.service), images.map((i) => i.fingerprint ?? null)],
        client,
      );
      const byService = new Map(rows.map((r) => [r.service, r.id]));
      const pairs = images.flatMap((i) => [...new Set(i.needs)].map((n) => [byService.get(i.service)!, byService.get(n)!]));
      if (pairs.length) {
        await this.q('INSERT INTO build_needs (build_id, needs_id) SELECT * FROM unnest($1::bigint[], $2::bigint[])', [pairs.map((p) => p[0]), pairs.map((p) => p[1])], client);
      }
      await this.q(
        `UPDATE builds SET state = 'succeeded', failure = NULL, finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL, notes = notes || jsonb_build_array($2::text)
          WHERE id = $1`,
        [headId, note],
        client,
      );
      if (rows.length) await this.q(`SELECT pg_notify('${QUEUED_CHANNEL}', '')`, [], client);
      const ids = images.map((i) => byService.get(i.service)!);
      const built = await this.q<BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE id = ANY($1::bigint[])`, [ids], client);
      const byId = new Map(built.rows.map((r) => [Number(r.id), toRecord(r)]));
      return ids.map((id) => byId.get(id)!);
    });
  }

  async listGroup(groupId: number): Promise<BuildRecord[]> {
    return (await this.q<BuildRow>(`SELECT ${COLUMNS} FROM builds WHERE group_id = $1 ORDER BY id`, [groupId])).rows.map(toRecord);
  }

  async lastSuccess(image: string): Promise<BuildRecord | undefined> {
    const { rows } = await this.q<BuildRow>(
      `SELECT ${COLUMNS} FROM builds WHERE image = $1 AND state = 'succeeded' AND jsonb_array_length(pushed) > 0 ORDER BY merged_at DESC, id DESC LIMIT 1`,
      [image],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async setImage(id: number, image: string, version: string, fingerprint?: string): Promise<void> {
    await this.q('UPDATE builds SET image = $2, version = $3, fingerprint = COALESCE($4, fingerprint) WHERE id = $1', [id, image, version, fingerprint ?? null]);
  }

  async hasLaterLatest(image: string, mergedAt: string, id: number): Promise<boolean> {
    const { rowCount } = await this.q('SELECT 1 FROM image_latest WHERE image = $1 AND build_id <> $2 AND merged_at > $3', [image, id, mergedAt]);
    return (rowCount ?? 0) > 0;
  }

  async claimLatest(image: string, mergedAt: string, id: number): Promise<boolean> {
    const { rowCount } = await this.q(
      `INSERT INTO image_latest (image, merged_at, build_id) VALUES ($1, $2, $3)
       ON CONFLICT (image) DO UPDATE SET merged_at = excluded.merged_at, build_id = excluded.build_id
       WHERE excluded.merged_at >= image_latest.merged_at OR image_latest.build_id = excluded.build_id`,
      [image, mergedAt, id],
    );
    return rowCount === 1;
  }

  async claimVersion(image: string, version: string, sha: string): Promise<string> {
    for (;;) {
      const { rows } = await this.q<{ sha: string }>(
        `WITH claim AS (
           INSERT INTO version_commits (image, version, sha) VALUES ($1, $2, $3)
           ON CONFLICT (image, version) DO UPDATE SET sha = excluded.sha
           WHERE NOT EXISTS (SELECT 1 FROM builds b WHERE b.image = version_commits.image AND b.sha = version_commits.sha AND b.state IN ('queued', 'running'))
           RETURNING sha)
         SELECT sha FROM claim UNION ALL SELECT sha FROM version_commits WHERE image = $1 AND version = $2 AND NOT EXISTS (SELECT 1 FROM claim)`,
        [image, version, sha],
      );
      if (rows[0]) return rows[0].sha;
      // The binding that kept ours out was committed by another claimer after this statement's
      // snapshot, so the SELECT half cannot see it; a new statement does.
      const bound = await this.q<{ sha: string }>('SELECT sha FROM version_commits WHERE image = $1 AND version = $2', [image, version]);
      if (bound.rows[0]) return bound.rows[0].sha;
      // Released in between: claim again.
    }
  }

  async versionsOf(image: string): Promise<string[]> {
    const { rows } = await this.q<{ version: string }>('SELECT version FROM version_commits WHERE image = $1 ORDER BY version COLLATE "C"', [image]);
    return rows.map((r) => r.version);
  }

  async releaseVersion(image: string, version: string): Promise<void> {
    await this.q('DELETE FROM version_commits WHERE image = $1 AND version = $2', [image, version]);
  }

  async claimRetention(id: number): Promise<boolean> {
    const { rowCount } = await this.q('UPDATE builds SET retention_claimed = true WHERE id = $1 AND NOT retention_claimed', [id]);
    return rowCount === 1;
  }

  async addNote(id: number, note: string): Promise<void> {
    await this.q('UPDATE builds SET notes = notes || jsonb_build_array($2::text) WHERE id = $1', [id, note]);
  }

  async createDeployment(d: NewDeployment): Promise<DeploymentRecord | undefined> {
    const state = d.state ?? 'in_progress';
    const now = Date.now();
    const { rows } = await this.q<DeploymentRow>(
      `INSERT INTO deployments (service, version, sha, digest, build_id, trigger, environment, state, reason, created_at, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING *`,
      [d.service, d.version, d.sha, d.digest, d.buildId, d.trigger, d.environment, state, d.reason ?? null, now, state === 'in_progress' ? null : now],
    );
    return rows[0] ? toDeployment(rows[0]) : undefined;
  }

  async finishDeployment(id: number, state: Exclude<DeploymentState, 'in_progress'>, reason: string | undefined, log: string[]): Promise<void> {
    await this.q('UPDATE deployments SET state = $2, reason = $3, finished_at = $4, log = log || $5::jsonb WHERE id = $1', [id, state, reason ?? null, Date.now(), JSON.stringify(log)]);
  }

  async setDeploymentGithubId(id: number, githubId: number): Promise<void> {
    await this.q('UPDATE deployments SET github_id = $2 WHERE id = $1', [id, githubId]);
  }

  async getDeployment(id: number): Promise<DeploymentRecord | undefined> {
    const { rows } = await this.q<DeploymentRow>('SELECT * FROM deployments WHERE id = $1', [id]);
    return rows[0] ? toDeployment(rows[0]) : undefined;
  }

  async listDeployments(query: { service?: string; buildId?: number; limit: number }): Promise<DeploymentRecord[]> {
    const { rows } = await this.q<DeploymentRow>(
      'SELECT * FROM deployments WHERE ($1::text IS NULL OR service = $1) AND ($2::bigint IS NULL OR build_id = $2) ORDER BY id DESC LIMIT $3',
      [query.service ?? null, query.buildId ?? null, query.limit],
    );
    return rows.map(toDeployment);
  }

  async buildOfVersion(service: string, version: string): Promise<BuildRecord | undefined> {
    const { rows } = await this.q<BuildRow>(
      `SELECT ${COLUMNS} FROM builds WHERE image = $1 AND version = $2 AND state = 'succeeded' AND jsonb_array_length(pushed) > 0 ORDER BY id DESC LIMIT 1`,
      [service, version],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async recordPlatform(id: number, image: PlatformImage): Promise<void> {
    await this.q(
      `UPDATE builds SET platforms = (
         SELECT COALESCE(jsonb_agg(e), '[]'::jsonb) FROM (
           SELECT e FROM jsonb_array_elements(builds.platforms) e WHERE e->>'platform' IS DISTINCT FROM $2
           UNION ALL SELECT $3::jsonb) x (e))
       WHERE id = $1`,
      [id, image.platform, JSON.stringify(image)],
    );
  }

  async recordArtifact(id: number, artifact: ArtifactRecord): Promise<void> {
    await this.q(
      `UPDATE builds SET artifacts = (
         SELECT COALESCE(jsonb_agg(e), '[]'::jsonb) FROM (
           SELECT e FROM jsonb_array_elements(builds.artifacts) e WHERE NOT (e->>'name' = $2 AND e->>'platform' IS NOT DISTINCT FROM $3)
           UNION ALL SELECT $4::jsonb) x (e))
       WHERE id = $1`,
      [id, artifact.name, artifact.platform ?? null, JSON.stringify(artifact)],
    );
  }

  async recordPush(id: number, pushed: PushedRef, isLatest: boolean): Promise<void> {
    await this.q('UPDATE builds SET pushed = pushed || jsonb_build_array($2::jsonb), latest_pushed = latest_pushed OR $3 WHERE id = $1', [id, JSON.stringify(pushed), isLatest]);
  }

  async markSucceeded(id: number, owner: string): Promise<boolean> {
    const { rowCount } = await this.q(
      // The repository's next merge may run now: wake the workers of every host.
      `WITH done AS (UPDATE builds SET state = 'succeeded', failure = NULL, finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL
                      WHERE id = $1 AND state = 'running' AND lease_owner = $2 RETURNING id)
       SELECT pg_notify('${QUEUED_CHANNEL}', '') FROM done`,
      [id, owner],
    );
    return rowCount === 1;
  }

  async markFailed(id: number, reason: string, owner: string): Promise<boolean> {
    const { rowCount } = await this.q(
      // An image of a merge failed: so did the merge (its head), whose redelivery then builds again.
      `WITH done AS (UPDATE builds SET state = 'failed', failure = $3, finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL
                      WHERE id = $1 AND state = 'running' AND lease_owner = $2 RETURNING id, group_id, service),
            head AS (UPDATE builds h SET state = 'failed', failure = COALESCE(done.service, 'an image') || ' failed'
                       FROM done WHERE h.id = done.group_id AND h.state = 'succeeded' RETURNING h.id)
       SELECT pg_notify('${QUEUED_CHANNEL}', '') FROM done`,
      [id, owner, reason],
    );
    return rowCount === 1;
  }

  async requeue(id: number, delayMs: number, reason: string | undefined, owner: string): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rowCount } = await this.q(
        `UPDATE builds SET state = 'queued', run_after = ${NOW} + $3, failure = $4, started_at = NULL, lease_owner = NULL, lease_until = NULL
          WHERE id = $1 AND state = 'running' AND lease_owner = $2`,
        [id, owner, delayMs, reason ?? null],
        client,
      );
      if (rowCount === 1) await this.q(`SELECT pg_notify('${QUEUED_CHANNEL}', '')`, [], client);
      return rowCount === 1;
    });
  }

  /** Other workers may be running: nothing is taken from them. A dead worker's builds come back when their leases run out. */
  async storedDeliveries(guids: string[]): Promise<Set<string>> {
    if (guids.length === 0) return new Set();
    const { rows } = await this.q<{ delivery_id: string }>('SELECT delivery_id FROM deliveries WHERE delivery_id = ANY($1::text[])', [[...new Set(guids)]]);
    return new Set(rows.map((r) => r.delivery_id));
  }

  async recoveryCheckpoint(hook: string): Promise<number | undefined> {
    const { rows } = await this.q<{ checked_to: number }>('SELECT checked_to FROM recovery_checkpoints WHERE hook = $1', [hook]);
    return rows[0]?.checked_to;
  }

  async setRecoveryCheckpoint(hook: string, deliveredAt: number): Promise<void> {
    await this.q(
      `INSERT INTO recovery_checkpoints (hook, checked_to, updated_at) VALUES ($1, $2, ${NOW})
       ON CONFLICT (hook) DO UPDATE SET checked_to = GREATEST(recovery_checkpoints.checked_to, excluded.checked_to), updated_at = excluded.updated_at`,
      [hook, deliveredAt],
    );
  }

  async redeliveries(guids: string[]): Promise<Map<string, Redelivery>> {
    if (guids.length === 0) return new Map();
    const { rows } = await this.q<RedeliveryRow>('SELECT * FROM redeliveries WHERE guid = ANY($1::text[])', [[...new Set(guids)]]);
    return new Map(rows.map((r) => [r.guid, toRedelivery(r)]));
  }

  async claimRedelivery(r: Pick<Redelivery, 'guid' | 'hook' | 'attemptId'>): Promise<boolean> {
    const { rowCount } = await this.q(
      `INSERT INTO redeliveries (guid, hook, attempt_id, state, requested_at) VALUES ($1, $2, $3, 'requested', ${NOW}) ON CONFLICT (guid) DO NOTHING`,
      [r.guid, r.hook, r.attemptId],
    );
    return rowCount === 1;
  }

  async releaseRedelivery(guid: string): Promise<void> {
    await this.q("DELETE FROM redeliveries WHERE guid = $1 AND state = 'requested'", [guid]);
  }

  async settleRedelivery(guid: string, state: Exclude<RedeliveryState, 'requested'>): Promise<boolean> {
    const { rowCount } = await this.q(`UPDATE redeliveries SET state = $1, settled_at = ${NOW} WHERE guid = $2 AND state = 'requested'`, [state, guid]);
    return rowCount === 1;
  }

  async forgetRedeliveries(requestedBefore: number): Promise<number> {
    const { rowCount } = await this.q('DELETE FROM redeliveries WHERE requested_at < $1', [requestedBefore]);
    return rowCount ?? 0;
  }

  /**
   * pg_try_advisory_lock on one pooled connection, held for the whole pass
   * and unlocked on that same connection after it. A connection that dies
   * mid-pass lets go of the lock with it (PostgreSQL ends the session's locks).
   */
  async withRecoveryLock<T>(fn: () => Promise<T>): Promise<T | undefined> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw isConnectionError(err) ? unavailable(this.url, err) : err;
    }
    let lost: Error | boolean | undefined;
    const onError = (err: Error) => (lost = err);
    client.on('error', onError);
    try {
      const { rows } = await this.q<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RECOVERY_LOCK], client);
      if (!rows[0]?.locked) return undefined;
      try {
        return await fn();
      } finally {
        // Could not unlock: drop the connection rather than return it to the pool still holding the lock.
        await client.query('SELECT pg_advisory_unlock($1)', [RECOVERY_LOCK]).catch(() => (lost ??= true));
      }
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  }

  async recoverInterrupted(): Promise<number> {
    return 0;
  }

  async checkWritable(): Promise<void> {
    await this.q(`INSERT INTO probe (id, at) VALUES (1, ${NOW}) ON CONFLICT (id) DO UPDATE SET at = excluded.at`);
  }

  onQueued(fn: () => void): () => void {
    return this.notifier.on(QUEUED_CHANNEL, fn);
  }

  async close(): Promise<void> {
    await this.notifier.close();
    await this.pool.end();
  }
}

class RetryEnqueue extends Error {}

const DEADLOCK = '40P01';
/** The first key of enqueue's advisory locks ('dkq'); the second is the commit's hash. */
const ENQUEUE_LOCK = 0x646b71;

/** The distinct repository + commit pairs of a batch as int4 lock keys, ascending: every batch takes them in this order. */
function commitLockKeys(requests: BuildRequest[]): number[] {
  const keys = new Set<number>();
  for (const r of requests) {
    // FNV-1a, 32 bits: a collision only makes two commits share a lock.
    let h = 0x811c9dc5;
    for (const ch of `${r.owner}/${r.repo}/${r.sha}`) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193);
    keys.add(h | 0);
  }
  return [...keys].sort((a, b) => a - b);
}
