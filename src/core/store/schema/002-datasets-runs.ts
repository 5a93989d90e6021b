/** Datasets, images, labels with history, splits, snapshots, imports, runs, metrics, checkpoints. */
export const DATASETS_AND_RUNS = `
CREATE TABLE datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) BETWEEN 1 AND 120),
  description TEXT NOT NULL DEFAULT '',
  split_seed INTEGER NOT NULL DEFAULT 1,
  split_train REAL NOT NULL DEFAULT 0.8,
  split_validation REAL NOT NULL DEFAULT 0.1,
  split_test REAL NOT NULL DEFAULT 0.1,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  CHECK (abs(split_train + split_validation + split_test - 1.0) < 1e-9)
);

-- Deleted classes stay as rows (deleted_at set) so that undoing a merge or delete can restore them.
CREATE TABLE classes (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (length(trim(name)) BETWEEN 1 AND 100),
  position INTEGER NOT NULL,
  deleted_at TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX classes_live_name ON classes (dataset_id, name) WHERE deleted_at IS NULL;

CREATE TABLE imports (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('class-folders', 'flat', 'csv', 'idx', 'files')),
  status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
  total INTEGER NOT NULL DEFAULT 0,
  imported INTEGER NOT NULL DEFAULT 0,
  already_present INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  finished_at TEXT
);

-- status: 'ok' images train; 'rejected' ones were set aside by the user and never train.
-- class_id is the current label; label_changes holds its history.
CREATE TABLE images (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  content_hash TEXT NOT NULL,
  original_path TEXT NOT NULL,
  byte_size INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  format TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'rejected')),
  class_id INTEGER REFERENCES classes(id),
  split TEXT CHECK (split IN ('train', 'validation', 'test')),
  import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL,
  imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (dataset_id, content_hash)
);
-- One index per filter and sort the image grid offers, each leading with (dataset, status), so
-- that a page and its count stay index-only at 100,000 images.
CREATE INDEX images_by_status ON images (dataset_id, status, id);
CREATE INDEX images_by_status_path ON images (dataset_id, status, original_path);
CREATE INDEX images_by_status_size ON images (dataset_id, status, byte_size);
CREATE INDEX images_by_class ON images (dataset_id, status, class_id, id);
CREATE INDEX images_by_class_path ON images (dataset_id, status, class_id, original_path);
CREATE INDEX images_by_class_size ON images (dataset_id, status, class_id, byte_size);
CREATE INDEX images_by_split ON images (dataset_id, status, split, id);

-- Files an import met but did not add: duplicates of an image already there, and rejected files.
CREATE TABLE import_issues (
  id INTEGER PRIMARY KEY,
  import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('duplicate', 'rejected')),
  reason TEXT NOT NULL,
  duplicate_of INTEGER REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX import_issues_by_import ON import_issues (import_id, kind);
CREATE INDEX import_issues_by_image ON import_issues (duplicate_of);

-- One user action (label, unlabel, merge, delete a class) is one row here and many in label_changes.
CREATE TABLE label_actions (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('label', 'merge', 'delete-class')),
  description TEXT NOT NULL,
  -- the class a merge or delete removed, restored by undo
  removed_class_id INTEGER REFERENCES classes(id),
  undone INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX label_actions_by_dataset ON label_actions (dataset_id, undone, id);

CREATE TABLE label_changes (
  action_id INTEGER NOT NULL REFERENCES label_actions(id) ON DELETE CASCADE,
  image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  old_class_id INTEGER REFERENCES classes(id),
  new_class_id INTEGER REFERENCES classes(id),
  PRIMARY KEY (action_id, image_id)
) WITHOUT ROWID;

-- Exactly which images, with which labels and splits, a run trained and validated on.
CREATE TABLE dataset_snapshots (
  id INTEGER PRIMARY KEY,
  dataset_id INTEGER NOT NULL REFERENCES datasets(id),
  class_names TEXT NOT NULL,
  image_count INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE snapshot_images (
  snapshot_id INTEGER NOT NULL REFERENCES dataset_snapshots(id) ON DELETE CASCADE,
  image_id INTEGER NOT NULL REFERENCES images(id),
  class_index INTEGER NOT NULL,
  split TEXT NOT NULL CHECK (split IN ('train', 'validation', 'test')),
  PRIMARY KEY (snapshot_id, image_id)
) WITHOUT ROWID;

CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
  snapshot_id INTEGER REFERENCES dataset_snapshots(id),
  parent_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  spec TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'failed', 'cancelled')),
  failure_reason TEXT,
  backend TEXT,
  notes TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at TEXT,
  finished_at TEXT
);
CREATE INDEX runs_by_status ON runs (status, id);

-- (run, name, step) is unique: a step's metric written twice (a retried batch) is kept once.
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  value REAL NOT NULL,
  time REAL NOT NULL,
  PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  metrics TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (run_id, epoch)
);

CREATE TABLE artifacts (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE run_tags (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tag TEXT NOT NULL CHECK (length(trim(tag)) BETWEEN 1 AND 60),
  PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;
`
