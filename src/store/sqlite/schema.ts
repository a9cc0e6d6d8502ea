/**
 * The store keeps what only dockhook knows: the builds it owes and the
 * deliveries it has seen. Images, tags and digests live in the registry;
 * commits and pull requests live on GitHub.
 */
/** Index i holds the step from schema version i to i + 1; PRAGMA user_version is the version a file is at. */
export const MIGRATIONS: string[] = [
  // 1: the first schema (CREATE IF NOT EXISTS: files from before user_version was kept are at 0 but have it)
  `
CREATE TABLE IF NOT EXISTS builds (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id      TEXT NOT NULL,
  trigger          TEXT NOT NULL,
  owner            TEXT NOT NULL,
  repo             TEXT NOT NULL,
  repo_url         TEXT NOT NULL,
  default_branch   TEXT NOT NULL,
  branch           TEXT NOT NULL,
  sha              TEXT NOT NULL,
  merged_at        TEXT NOT NULL,
  pr_number        INTEGER,
  pr_title         TEXT,
  pr_url           TEXT,
  state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  run_after        INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  first_started_at INTEGER,
  started_at       INTEGER,
  finished_at      INTEGER,
  image            TEXT,
  version          TEXT,
  pushed           TEXT NOT NULL DEFAULT '[]',
  latest_pushed    INTEGER NOT NULL DEFAULT 0,
  failure          TEXT,
  notes            TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS builds_state ON builds (state, run_after);
CREATE INDEX IF NOT EXISTS builds_commit ON builds (owner, repo, sha);
CREATE INDEX IF NOT EXISTS builds_image ON builds (image, latest_pushed);
CREATE TABLE IF NOT EXISTS deliveries (
  delivery_id TEXT PRIMARY KEY,
  build_id    INTEGER NOT NULL REFERENCES builds (id),
  received_at INTEGER NOT NULL
);
-- one row, rewritten by /readyz to prove the store accepts writes
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
`,
  // 2: leases, and the rules as constraints (for many workers; PostgreSQL has the same ones)
  `
ALTER TABLE builds ADD COLUMN lease_owner TEXT;
ALTER TABLE builds ADD COLUMN lease_until INTEGER;
ALTER TABLE builds ADD COLUMN retention_claimed INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX builds_one_live_per_commit ON builds (owner, repo, sha) WHERE state != 'failed';
CREATE UNIQUE INDEX builds_one_running_per_repo ON builds (owner, repo) WHERE state = 'running';
CREATE TABLE image_latest (
  image     TEXT PRIMARY KEY,
  merged_at TEXT NOT NULL,
  build_id  INTEGER NOT NULL
);
-- SQLite returns the row of the MAX() for the bare column id
INSERT INTO image_latest (image, merged_at, build_id)
  SELECT image, MAX(merged_at), id FROM builds WHERE latest_pushed = 1 AND image IS NOT NULL GROUP BY image;
CREATE TABLE version_commits (
  image   TEXT NOT NULL,
  version TEXT NOT NULL,
  sha     TEXT NOT NULL,
  PRIMARY KEY (image, version)
);
INSERT OR IGNORE INTO version_commits (image, version, sha)
  SELECT image, version, sha FROM builds WHERE state = 'succeeded' AND image IS NOT NULL AND version IS NOT NULL ORDER BY id;
UPDATE builds SET retention_claimed = 1 WHERE state = 'succeeded';
`,
  // 3: multi-image merges (a head and its image builds, with their needs), forced and image-limited manual builds
  `
ALTER TABLE builds ADD COLUMN group_id INTEGER;
ALTER TABLE builds ADD COLUMN service TEXT;
ALTER TABLE builds ADD COLUMN fingerprint TEXT;
ALTER TABLE builds ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN only_images TEXT;
-- a commit has one live or successful unforced build, and one queued or running forced build; image builds (group_id set) belong to their head's
DROP INDEX builds_one_live_per_commit;
CREATE UNIQUE INDEX builds_one_live_per_commit ON builds (owner, repo, sha) WHERE state != 'failed' AND group_id IS NULL AND forced = 0;
CREATE UNIQUE INDEX builds_one_forced_live_per_commit ON builds (owner, repo, sha) WHERE state IN ('queued', 'running') AND group_id IS NULL AND forced = 1;
-- the images of one merge run in parallel, one build per image at a time
DROP INDEX builds_one_running_per_repo;
CREATE UNIQUE INDEX builds_one_running_per_image ON builds (owner, repo, COALESCE(service, '')) WHERE state = 'running';
CREATE INDEX builds_group ON builds (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX builds_image_success ON builds (image, merged_at) WHERE state = 'succeeded';
-- an image build waits for these builds of its group (by id)
CREATE TABLE build_needs (
  build_id INTEGER NOT NULL REFERENCES builds (id),
  needs_id INTEGER NOT NULL REFERENCES builds (id),
  PRIMARY KEY (build_id, needs_id)
);
`,
  // 4: multi-platform builds (each platform's image) and artifacts
  `
ALTER TABLE builds ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]';
ALTER TABLE builds ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
`,
  // 5: deployments (issue 14)
  `
CREATE TABLE deployments (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  service     TEXT NOT NULL,
  version     TEXT NOT NULL,
  sha         TEXT NOT NULL,
  digest      TEXT NOT NULL,
  build_id    INTEGER NOT NULL REFERENCES builds (id),
  trigger     TEXT NOT NULL,
  environment TEXT NOT NULL,
  state       TEXT NOT NULL,
  reason      TEXT,
  log         TEXT NOT NULL DEFAULT '[]',
  github_id   INTEGER,
  created_at  INTEGER NOT NULL,
  finished_at INTEGER
);
-- one deploy of a service at a time: two swaps of one container would undo each other
CREATE UNIQUE INDEX deployments_one_running_per_service ON deployments (service) WHERE state = 'in_progress';
CREATE INDEX deployments_service ON deployments (service, id);
CREATE INDEX deployments_build ON deployments (build_id);
`,
  // 6: recovery of missed deliveries (issue 15): where each hook's last pass stopped, and each GUID asked to be redelivered (once)
  `
CREATE TABLE recovery_checkpoints (
  hook       TEXT PRIMARY KEY,
  checked_to INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE redeliveries (
  guid         TEXT PRIMARY KEY,
  hook         TEXT NOT NULL,
  attempt_id   INTEGER NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('requested', 'delivered', 'failed', 'refused')),
  requested_at INTEGER NOT NULL,
  settled_at   INTEGER
);
CREATE INDEX redeliveries_requested_at ON redeliveries (requested_at);
`,
];
