"""The index's schema, in one place: tables, indexes and views (``SCHEMA_SQL``, also
``schema/index.sql`` and ``runlog schema --sql``), the numbered migrations that
upgrade an older index in place, and the column order of every table's rows.

>>> SCHEMA_VERSION
1
"""

from __future__ import annotations

from . import flatten

SCHEMA_VERSION = 1

# The index schema. schema/index.sql is this text (`runlog schema --sql`); a test
# fails when that file is stale. A change to it gets a numbered migration below.
SCHEMA_SQL = """\
-- runlog index schema, version 1 (PRAGMA user_version = 1)
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    tag TEXT,
    status TEXT,
    dag_hash TEXT,
    use_cached INTEGER,
    original_run_id TEXT,
    start_time TEXT,
    end_time TEXT,
    duration_s REAL,
    format TEXT,
    layout TEXT,
    source_path TEXT,
    ingested_at TEXT,
    parameters TEXT,
    run_config TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    name TEXT,
    branch TEXT,
    step_type TEXT,
    status TEXT,
    message TEXT,
    mock INTEGER,
    position INTEGER,
    PRIMARY KEY (run_id, step_name)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    status TEXT,
    start_time TEXT,
    end_time TEXT,
    duration_s REAL,
    message TEXT,
    retry_indicator TEXT,
    PRIMARY KEY (run_id, step_name, attempt_number)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    value_text TEXT,
    kind TEXT NOT NULL,
    timestamp_ms INTEGER,
    PRIMARY KEY (run_id, step_name, key, step)
);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    direction TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT,
    value REAL,
    value_text TEXT,
    PRIMARY KEY (run_id, step_name, attempt_number, direction, key)
);
CREATE TABLE IF NOT EXISTS catalog (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    name TEXT,
    data_hash TEXT,
    catalog_relative_path TEXT,
    catalog_handler_location TEXT,
    stage TEXT
);
CREATE TABLE IF NOT EXISTS code_identities (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_name TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    code_identifier TEXT,
    code_identifier_type TEXT,
    code_identifier_dependable INTEGER,
    code_identifier_url TEXT,
    code_identifier_message TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,
    run_id TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    hash TEXT,
    ingested_at TEXT
);
CREATE TABLE IF NOT EXISTS ingest_errors (
    path TEXT PRIMARY KEY,
    error TEXT,
    seen_at TEXT
);
CREATE INDEX IF NOT EXISTS metrics_run_key_step ON metrics (run_id, key, step);
CREATE INDEX IF NOT EXISTS metrics_key_run_step ON metrics (key, run_id, step);
CREATE INDEX IF NOT EXISTS runs_tag ON runs (tag);
CREATE INDEX IF NOT EXISTS runs_start_time ON runs (start_time);
CREATE INDEX IF NOT EXISTS catalog_run ON catalog (run_id, step_name);
CREATE INDEX IF NOT EXISTS code_identities_run ON code_identities (run_id, step_name);
CREATE INDEX IF NOT EXISTS sources_run ON sources (run_id);
-- Latest values, kept by ingest (whole per run, like every other table) so that
-- "latest of every metric of a run" and leaderboards are index lookups at any size.
-- step_latest: the row at the highest step of every (run, step, key).
CREATE TABLE IF NOT EXISTS step_latest (
    run_id TEXT NOT NULL,
    step_name TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    value_text TEXT,
    kind TEXT NOT NULL,
    timestamp_ms INTEGER,
    PRIMARY KEY (run_id, step_name, key)
);
-- run_latest: per (run, key), the latest numeric point over all steps of the run:
-- highest step, then the attempt that ended last, then step name (what leaderboards rank).
CREATE TABLE IF NOT EXISTS run_latest (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step_name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    timestamp_ms INTEGER,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS run_latest_key_value ON run_latest (key, value);
CREATE VIEW IF NOT EXISTS latest_metrics AS
SELECT run_id, step_name, key, step, value, value_text, kind FROM step_latest;
CREATE VIEW IF NOT EXISTS run_summary AS
SELECT r.run_id, r.tag, r.status, r.start_time, r.duration_s,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) AS steps,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id AND s.status = 'FAIL') AS failed_steps
FROM runs r;
"""

# version -> SQL that upgrades an index from version - 1. None yet.
MIGRATIONS: dict[int, str] = {}

RUN_TABLES = ("metrics", "step_latest", "run_latest", "params", "attempts", "catalog", "code_identities", "steps", "runs")

# Filled from the run's metric rows just written (the metrics primary key makes both cheap).
FILL_LATEST = (
    """INSERT INTO step_latest (run_id, step_name, key, step, value, value_text, kind, timestamp_ms)
SELECT run_id, step_name, key, max(step), value, value_text, kind, timestamp_ms
FROM metrics WHERE run_id = ? GROUP BY step_name, key""",
    # Each step's highest numeric point (a streaming GROUP BY in primary-key order), then
    # the best of those per key: the same row as ranking every point, far fewer to sort.
    """INSERT INTO run_latest (run_id, key, step_name, step, value, timestamp_ms)
SELECT run_id, key, step_name, step, value, timestamp_ms FROM (
    SELECT p.*, row_number() OVER (
        PARTITION BY key ORDER BY step DESC, timestamp_ms DESC, step_name DESC) AS rank
    FROM (SELECT run_id, step_name, key, max(step) AS step, value, timestamp_ms
          FROM metrics WHERE run_id = ? AND kind = 'numeric' GROUP BY step_name, key) p
) WHERE rank = 1""",
)
TABLE_COLUMNS = {
    "runs": flatten.RUN_COLUMNS,
    "steps": flatten.STEP_COLUMNS,
    "attempts": flatten.ATTEMPT_COLUMNS,
    "metrics": flatten.METRIC_COLUMNS,
    "params": flatten.PARAM_COLUMNS,
    "catalog": flatten.CATALOG_COLUMNS,
    "code_identities": flatten.CODE_IDENTITY_COLUMNS,
}
INSERT = {
    table: f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    for table, cols in TABLE_COLUMNS.items()
}
# Page size of a new index file: fewer B-tree splits and levels for millions of metric rows.
PAGE_SIZE = 16384
# The secondary metrics indexes (as in SCHEMA_SQL). An ingest into an empty metrics table
# drops them and builds them once at its end: one sort is much cheaper than keeping two
# more B-trees up to date row by row. open_db() builds them if that ingest was killed.
BULK_INDEXES = {
    "metrics_run_key_step": "CREATE INDEX IF NOT EXISTS metrics_run_key_step ON metrics (run_id, key, step)",
    "metrics_key_run_step": "CREATE INDEX IF NOT EXISTS metrics_key_run_step ON metrics (key, run_id, step)",
}


def schema_sql() -> str:
    """The DDL of the index, as written to ``schema/index.sql``."""
    return SCHEMA_SQL
