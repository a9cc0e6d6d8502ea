/**
 * PostgreSQL's schema, step by step: index i goes from version i to i + 1,
 * and schema_version holds the version a database is at. The same rules as
 * SQLite's, as constraints: one live build per commit (and one live forced
 * one), one running build per repository and image, one delivery row per
 * GUID, one `latest` holder per image, one commit per image:version.
 */
export const MIGRATIONS: string[] = [
  `
CREATE TABLE builds (
  id                BIGSERIAL PRIMARY KEY,
  delivery_id       TEXT NOT NULL,
  trigger           TEXT NOT NULL,
  owner             TEXT NOT NULL,
  repo              TEXT NOT NULL,
  repo_url          TEXT NOT NULL,
  default_branch    TEXT NOT NULL,
  branch            TEXT NOT NULL,
  sha               TEXT NOT NULL,
  merged_at         TEXT NOT NULL,
  pr_number         INTEGER,
  pr_title          TEXT,
  pr_url            TEXT,
  state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  attempts          INTEGER NOT NULL DEFAULT 0,
  run_after         BIGINT NOT NULL DEFAULT 0,
  created_at        BIGINT NOT NULL,
  first_started_at  BIGINT,
  started_at        BIGINT,
  finished_at       BIGINT,
  image             TEXT,
  version           TEXT,
  pushed            JSONB NOT NULL DEFAULT '[]',
  latest_pushed     BOOLEAN NOT NULL DEFAULT false,
  failure           TEXT,
  notes             JSONB NOT NULL DEFAULT '[]',
  lease_owner       TEXT,
  lease_until       BIGINT,
  retention_claimed BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX builds_state ON builds (state, run_after);
CREATE INDEX builds_repo_order ON builds (owner, repo, merged_at, id);
CREATE INDEX builds_image ON builds (image, sha);
CREATE UNIQUE INDEX builds_one_live_per_commit ON builds (owner, repo, sha) WHERE state <> 'failed';
CREATE UNIQUE INDEX builds_one_running_per_repo ON builds (owner, repo) WHERE state = 'running';
CREATE TABLE deliveries (
  delivery_id TEXT PRIMARY KEY,
  build_id    BIGINT NOT NULL REFERENCES builds (id),
  received_at BIGINT NOT NULL
);
CREATE TABLE image_latest (
  image     TEXT PRIMARY KEY,
  merged_at TEXT NOT NULL,
  build_id  BIGINT NOT NULL
);
CREATE TABLE version_commits (
  image   TEXT NOT NULL,
  version TEXT NOT NULL,
  sha     TEXT NOT NULL,
  PRIMARY KEY (image, version)
);
-- every line of every build, numbered from 1 across attempts; written in batches by the worker
CREATE TABLE build_logs (
  build_id BIGINT NOT NULL,
  n        INTEGER NOT NULL,
  line     TEXT NOT NULL,
  PRIMARY KEY (build_id, n)
);
-- one row, rewritten by /readyz to prove the store accepts writes
CREATE TABLE probe (id INTEGER PRIMARY KEY, at BIGINT NOT NULL);
`,
  // 2: multi-image merges (a head and its image builds, with their needs), forced and image-limited manual builds
  `
ALTER TABLE builds
  ADD COLUMN group_id    BIGINT,
  ADD COLUMN service     TEXT,
  ADD COLUMN fingerprint TEXT,
  ADD COLUMN forced      BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN only_images JSONB;
-- a commit has one live or successful unforced build, and one queued or running forced build; image builds (group_id set) belong to their head's
DROP INDEX builds_one_live_per_commit;
CREATE UNIQUE INDEX builds_one_live_per_commit ON builds (owner, repo, sha) WHERE state <> 'failed' AND group_id IS NULL AND NOT forced;
CREATE UNIQUE INDEX builds_one_forced_live_per_commit ON builds (owner, repo, sha) WHERE state IN ('queued', 'running') AND group_id IS NULL AND forced;
-- the images of one merge run in parallel, one build per image at a time
DROP INDEX builds_one_running_per_repo;
CREATE UNIQUE INDEX builds_one_running_per_image ON builds (owner, repo, (COALESCE(service, ''))) WHERE state = 'running';
CREATE INDEX builds_group ON builds (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX builds_image_success ON builds (image, merged_at) WHERE state = 'succeeded';
-- an image build waits for these builds of its group (by id)
CREATE TABLE build_needs (
  build_id BIGINT NOT NULL REFERENCES builds (id),
  needs_id BIGINT NOT NULL REFERENCES builds (id),
  PRIMARY KEY (build_id, needs_id)
);
`,
  // 3: multi-platform builds (each platform's image) and artifacts
  `
ALTER TABLE builds
  ADD COLUMN platforms JSONB NOT NULL DEFAULT '[]',
  ADD COLUMN artifacts JSONB NOT NULL DEFAULT '[]';
`,
  // 4: deployments (issue 14)
  `
CREATE TABLE deployments (
  id          BIGSERIAL PRIMARY KEY,
  service     TEXT NOT NULL,
  version     TEXT NOT NULL,
  sha         TEXT NOT NULL,
  digest      TEXT NOT NULL,
  build_id    BIGINT NOT NULL REFERENCES builds (id),
  trigger     TEXT NOT NULL,
  environment TEXT NOT NULL,
  state       TEXT NOT NULL,
  reason      TEXT,
  log         JSONB NOT NULL DEFAULT '[]',
  github_id   BIGINT,
  created_at  BIGINT NOT NULL,
  finished_at BIGINT
);
-- one deploy of a service at a time: two swaps of one container would undo each other
CREATE UNIQUE INDEX deployments_one_running_per_service ON deployments (service) WHERE state = 'in_progress';
CREATE INDEX deployments_service ON deployments (service, id);
CREATE INDEX deployments_build ON deployments (build_id);
`,
  // 5: recovery of missed deliveries (issue 15): where each hook's last pass stopped, and each GUID asked to be redelivered (once)
  `
CREATE TABLE recovery_checkpoints (
  hook       TEXT PRIMARY KEY,
  checked_to BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE redeliveries (
  guid         TEXT PRIMARY KEY,
  hook         TEXT NOT NULL,
  attempt_id   BIGINT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('requested', 'delivered', 'failed', 'refused')),
  requested_at BIGINT NOT NULL,
  settled_at   BIGINT
);
CREATE INDEX redeliveries_requested_at ON redeliveries (requested_at);
`,
];
