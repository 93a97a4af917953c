"""The SQLite index's schema, in one place: tables, indexes, views, migrations, and
opening an index (read-write, or read-only behind an authorizer).

>>> db = open_db("runlog.db", readonly=True)            # doctest: +SKIP
>>> db.execute("select count(*) from runs").fetchone()  # doctest: +SKIP
(11,)
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import flatten
from ..errors import NoIndex, RunlogError, UsageProblem


def _import_sqlite_utils():
    """sqlite-utils imports pandas and numpy when they are installed (MLflow brings them),
    a third of a second on every command; runlog never gives it pandas or numpy values."""
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # makes `import pandas` raise ImportError, which it handles
    try:
        import sqlite_utils
    finally:
        for name in blocked:
            sys.modules.pop(name, None)
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

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
_FILL_LATEST = (
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
_TABLE_COLUMNS = {
    "runs": flatten.RUN_COLUMNS,
    "steps": flatten.STEP_COLUMNS,
    "attempts": flatten.ATTEMPT_COLUMNS,
    "metrics": flatten.METRIC_COLUMNS,
    "params": flatten.PARAM_COLUMNS,
    "catalog": flatten.CATALOG_COLUMNS,
    "code_identities": flatten.CODE_IDENTITY_COLUMNS,
}
_INSERT = {
    table: f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    for table, cols in _TABLE_COLUMNS.items()
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

# How long a writer waits for another one (an ingest's batch, or its index build at the end).
WRITE_BUSY_TIMEOUT_MS = 120_000



def fill_latest(conn: sqlite3.Connection, run_id: str) -> None:
    """Compute ``step_latest`` and ``run_latest`` of one run from its metric rows
    (ingest does this inside the run's transaction)."""
    for statement in _FILL_LATEST:
        conn.execute(statement, (run_id,))


def schema_sql() -> str:
    """The DDL of the index, as written to ``schema/index.sql``."""
    return SCHEMA_SQL


def run_log_json_schema() -> dict[str, Any]:
    """The JSON Schema of a run log (``RunLog.model_json_schema()``, published as schema/runlog.schema.json)."""
    from ..models import run_log_json_schema

    return run_log_json_schema()


# -- opening -------------------------------------------------------------------


def open_db(path: str | os.PathLike, readonly: bool = False) -> sqlite_utils.Database:
    """Open (and, unless ``readonly``, create or upgrade) the index at ``path``.

    A read-only database is opened with ``mode=ro`` and ``PRAGMA query_only`` and
    refuses, through an authorizer, anything that could write (ATTACH, VACUUM INTO,
    writable_schema...). ``db.refusals`` lists what it refused.

    >>> db = open_db("runlog.db", readonly=True)      # doctest: +SKIP
    >>> db.execute("select count(*) from runs").fetchone()  # doctest: +SKIP
    (5,)
    """
    path = Path(path)
    if readonly:
        return _open_readonly(path)
    try:
        new = not path.exists() or path.stat().st_size == 0
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {WRITE_BUSY_TIMEOUT_MS}")
        if new:  # larger pages: fewer B-tree splits on bulk inserts (only settable before the first table)
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        db = sqlite_utils.Database(conn, execute_plugins=False)
        ensure_schema(db)
    except sqlite3.Error as exc:
        raise RunlogError(f"cannot open index {path}: {exc}") from None
    return db


def _open_readonly(path: Path) -> sqlite_utils.Database:
    if not path.is_file():
        raise NoIndex(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA query_only = 1")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise RunlogError(f"cannot open index {path}: {exc}") from None
    if version > SCHEMA_VERSION:
        raise RunlogError(f"index {path} has schema version {version}, newer than this runlog ({SCHEMA_VERSION}): upgrade runlog")
    if version == 0:
        raise UsageProblem(f"{path} is not a runlog index (it has no runlog tables): point --db at an index "
                           "that `runlog ingest` built")
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    db.refusals = []
    conn.set_authorizer(_read_only_authorizer(db.refusals))
    return db


# Pragmas that only read: these with no value, and the introspection ones with a table name.
_NAME_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list", "table_list"}
_READ_PRAGMAS = _NAME_PRAGMAS | {
    "database_list", "collation_list", "function_list", "pragma_list", "user_version", "schema_version",
    "page_count", "page_size", "encoding", "compile_options", "journal_mode",
}
_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT,
}
_ACTION_NAMES = {
    sqlite3.SQLITE_INSERT: "INSERT into {}", sqlite3.SQLITE_UPDATE: "UPDATE {}", sqlite3.SQLITE_DELETE: "DELETE from {}",
    sqlite3.SQLITE_ATTACH: "attach the database {} (ATTACH or VACUUM INTO)", sqlite3.SQLITE_DETACH: "DETACH {}",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE {}", sqlite3.SQLITE_DROP_TABLE: "DROP TABLE {}",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE {}", sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE {}",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX {}", sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW {}",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER {}", sqlite3.SQLITE_REINDEX: "REINDEX {}",
    sqlite3.SQLITE_ANALYZE: "ANALYZE {}", sqlite3.SQLITE_DROP_VIEW: "DROP VIEW {}", sqlite3.SQLITE_DROP_INDEX: "DROP INDEX {}",
}


def _read_only_authorizer(refusals: list[str]):
    def authorize(action, arg1, arg2, _db, _trigger):
        if action in _ALLOWED_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and arg2 in ("load_extension", "writefile", "edit"):
                refusals.append(f"call {arg2}()")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in (_READ_PRAGMAS if arg2 is None else _NAME_PRAGMAS):
                return sqlite3.SQLITE_OK
            refusals.append(f"run PRAGMA {name}" + (f" = {arg2}" if arg2 is not None else ""))
            return sqlite3.SQLITE_DENY
        if arg1 in ("sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"):
            refusals.append("change the schema (CREATE, DROP or ALTER)")
        else:
            refusals.append(_ACTION_NAMES.get(action, "run operation #%d on {}" % action).format(arg1 or "").rstrip())
        return sqlite3.SQLITE_DENY

    return authorize


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create the tables, indexes and views when missing; apply numbered migrations.

    Writes nothing when the schema is already current.
    """
    conn = db.conn
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        restore_bulk_indexes(conn)
        return
    if version > SCHEMA_VERSION:
        raise RunlogError(f"index has schema version {version}, newer than this runlog ({SCHEMA_VERSION}): upgrade runlog")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version == 0:
            for statement in _statements(SCHEMA_SQL):
                conn.execute(statement)
        else:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[step]):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def restore_bulk_indexes(conn: sqlite3.Connection) -> None:
    """Create the metrics indexes a first ingest builds at its end, if that ingest was killed before.

    Writes nothing when they exist.
    """
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    missing = [sql for name, sql in BULK_INDEXES.items() if name not in present]
    if not missing:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql in missing:
            conn.execute(sql)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


