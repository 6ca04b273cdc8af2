-- The shared visit counter (one row) and the live slot's job log.
CREATE TABLE visits (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  count INTEGER NOT NULL
);
INSERT INTO visits (id, count) VALUES (1, 0);
CREATE TABLE job_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  color TEXT NOT NULL,
  version TEXT NOT NULL,
  at TEXT NOT NULL
);
