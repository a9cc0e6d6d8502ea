/**
 * The store keeps what only dockhook knows: the builds it owes and the
 * deliveries it has seen. Images, tags and digests live in the registry;
 * commits and pull requests live on GitHub.
 */
export const SCHEMA = `
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
`;
