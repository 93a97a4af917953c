"""The index's schema, in one place: tables, indexes and views (``SCHEMA_SQL``, also
``schema/index.sql`` and ``runlog schema --sql``), the numbered migrations that
upgrade an older index in place, and the column order of every table's rows.

>>> SCHEMA_VERSION
2
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

from . import flatten, summaries, tiles

SCHEMA_VERSION = 3

# The index schema. schema/index.sql is this text (`runlog schema --sql`); a test
# fails when that file is stale. A change to it gets a numbered migration below.
SCHEMA_SQL = """\
-- runlog index schema, version 3 (PRAGMA user_version = 3)
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
-- Run-level names and summaries (runlog.index.summaries), kept by ingest: within a run,
-- a key's plain name belongs to the first step in run order that recorded it; the same
-- key in another step is <step_name>/<key>. What runs, leaderboards, compare and the
-- web pages sort and filter by: kept in name order (WITHOUT ROWID), so that every run's
-- value of one name is one range, and each run's is one seek.
CREATE TABLE IF NOT EXISTS run_metrics (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    step_name TEXT NOT NULL,
    key TEXT NOT NULL,
    position INTEGER,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    first REAL,
    first_step INTEGER,
    last REAL,
    last_step INTEGER,
    last_text TEXT,
    min REAL,
    argmin INTEGER,
    max REAL,
    argmax INTEGER,
    mean REAL,
    timestamp_ms INTEGER,
    timestamps INTEGER,
    PRIMARY KEY (name, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_metrics_run ON run_metrics (run_id);
CREATE TABLE IF NOT EXISTS run_params (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    step_name TEXT NOT NULL,
    key TEXT NOT NULL,
    position INTEGER,
    direction TEXT NOT NULL,
    kind TEXT,
    value REAL,
    text TEXT,
    PRIMARY KEY (name, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_params_run ON run_params (run_id);
-- Tiles of long numeric series (runlog.index.tiles), kept by ingest: per run of `width`
-- steps, its count, sum, lowest and highest value with their steps; charts read these
-- instead of every point.
CREATE TABLE IF NOT EXISTS metric_tiles (
    run_id TEXT NOT NULL,
    step_name TEXT NOT NULL,
    key TEXT NOT NULL,
    width INTEGER NOT NULL,
    tile INTEGER NOT NULL,
    count INTEGER NOT NULL,
    total REAL,
    lo REAL,
    lo_step INTEGER,
    hi REAL,
    hi_step INTEGER,
    first_step INTEGER,
    last_step INTEGER,
    PRIMARY KEY (run_id, step_name, key, width, tile)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS latest_metrics AS
SELECT run_id, step_name, key, step, value, value_text, kind FROM step_latest;
CREATE VIEW IF NOT EXISTS run_summary AS
SELECT r.run_id, r.tag, r.status, r.start_time, r.duration_s,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) AS steps,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id AND s.status = 'FAIL') AS failed_steps
FROM runs r;
"""

RUN_TABLES = ("metrics", "step_latest", "run_metrics", "run_params", "metric_tiles", "params", "attempts",
              "catalog", "code_identities", "steps", "runs")

# Filled from the run's metric rows just written (a streaming GROUP BY in primary-key order).
FILL_STEP_LATEST = """INSERT INTO step_latest (run_id, step_name, key, step, value, value_text, kind, timestamp_ms)
SELECT run_id, step_name, key, max(step), value, value_text, kind, timestamp_ms
FROM metrics WHERE run_id = ? GROUP BY step_name, key"""
TABLE_COLUMNS = {
    "runs": flatten.RUN_COLUMNS,
    "steps": flatten.STEP_COLUMNS,
    "attempts": flatten.ATTEMPT_COLUMNS,
    "metrics": flatten.METRIC_COLUMNS,
    "params": flatten.PARAM_COLUMNS,
    "catalog": flatten.CATALOG_COLUMNS,
    "code_identities": flatten.CODE_IDENTITY_COLUMNS,
    "run_metrics": summaries.RUN_METRIC_COLUMNS,
    "run_params": summaries.RUN_PARAM_COLUMNS,
    "metric_tiles": tiles.TILE_COLUMNS,
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


def statements(script: str, tables: tuple[str, ...] | None = None) -> Iterator[str]:
    """The statements of ``script``, comments aside; with ``tables``, only those that
    create one of them or an index on one of them."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if tables is None or re.search(rf"\b(?:TABLE IF NOT EXISTS|ON) ({'|'.join(tables)})\b", statement):
                yield statement


def schema_sql() -> str:
    """The DDL of the index, as written to ``schema/index.sql``."""
    return SCHEMA_SQL
