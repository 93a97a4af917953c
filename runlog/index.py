"""The SQLite index: the schema (in one place) and ingest of run logs of every format.

One SQLite file (sqlite-utils) that a user can query with SQL, browse with
Datasette and export from. Ingest is incremental: a source whose size and mtime
are unchanged (confirmed by content hash when in doubt) is skipped; a changed
source replaces its run's rows inside one transaction.

>>> report = ingest([".run_log_store"], "runlog.db")  # doctest: +SKIP
>>> report.ingested, report.unchanged, report.failed   # doctest: +SKIP
(5, 0, 0)
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any



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

from . import flatten
from .errors import BadRunLog, RunlogError
from .objectstore import is_url
from .remote_store import Prefetcher, RemoteSource, discover, remote_exists
from .store import RunLogStore, read_run_file, read_run_folder, regular_file_stat

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
# A source whose newest mtime is this close to (or after) its last ingest may
# have changed within one mtime tick: confirm by hash (as git does for "racy" files).
RACY_WINDOW_NS = 2_000_000_000
# Commit after this many metric rows (each run is always whole inside one transaction).
BATCH_ROWS = 50_000
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

ProgressCallback = Callable[[int, int], None]


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
    from .models import run_log_json_schema

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
        raise RunlogError(f"no index at {path}: run `runlog ingest --db {path}` first")
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
        raise RunlogError(f"{path} is not a runlog index: run `runlog ingest --db {path}` first")
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


# -- ingest --------------------------------------------------------------------


@dataclass
class IngestReport:
    """What one ingest did. ``errors`` holds ``(path, message)`` for every source that failed."""

    ingested: int = 0
    unchanged: int = 0
    failed: int = 0
    pruned: int = 0
    metric_points: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.ingested} runs ingested, {self.unchanged} unchanged, {self.failed} failed, "
            f"{self.pruned} pruned; {self.metric_points} metric points written"
        )


@dataclass(frozen=True)
class _Stat:
    size: int
    mtime_ns: int  # a file's mtime, or a fingerprint of a chunked folder's files
    newest_ns: int  # newest mtime among the files


def ingest(
    paths: Iterable[str | os.PathLike],
    db_path: str | os.PathLike,
    *,
    prune: bool = False,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    endpoint_url: str | None = None,
) -> IngestReport:
    """Index every run under ``paths`` (store folders, run-log files or chunked run folders).

    A path may be a URL (``s3://bucket/prefix``, any fsspec protocol); ``endpoint_url``
    points s3:// at an S3-compatible server. Unchanged objects are recognised by
    their ETags and sizes in the listing, without downloading them.

    Unchanged sources are skipped; a bad source is reported in ``errors`` and in the
    ``ingest_errors`` table while the others are ingested, or, with ``strict``, raises
    :class:`~runlog.errors.BadRunLog`. ``progress(done, total)`` is called after each source.

    >>> ingest([".run_log_store"], "runlog.db", prune=True).summary()  # doctest: +SKIP
    '5 runs ingested, 0 unchanged, 0 failed, 0 pruned; 120 metric points written'
    """
    db = open_db(db_path)
    try:
        return _Ingest(db, strict, progress, endpoint_url).run(list(paths), prune)
    except sqlite3.OperationalError as exc:  # e.g. locked by another writer for longer than the busy timeout
        hint = ": another process is writing it; try again when it is done" if "locked" in str(exc) else ""
        raise RunlogError(f"cannot write index {db_path}: {exc}{hint}") from None
    finally:
        db.close()


class _Ingest:
    def __init__(self, db: sqlite_utils.Database, strict: bool, progress: ProgressCallback | None,
                 endpoint_url: str | None = None):
        self.endpoint_url = endpoint_url
        self.listed_prefixes: list[str] = []  # URL prefixes listed in full: --prune trusts these
        self.listed: set[str] = set()
        self.conn = db.conn
        self.strict = strict
        self.progress = progress
        self.report = IngestReport()
        self.now = datetime.now(timezone.utc)
        self.stamp = self.now.isoformat(timespec="microseconds")
        self.now_ns = _epoch_ns(self.now)
        self.pending_rows = 0

    def run(self, paths: list, prune: bool) -> IngestReport:
        bulk = False
        ahead = None
        try:
            # Listing reads nothing from the index, and prune needs the listing of object storage.
            sources = list(self._discover(paths))
            self.listed = {str(source) for source, _ in sources if isinstance(source, RemoteSource)}
            if prune:  # before ingesting, so that a run moved to another folder is taken over
                self._prune()
            ahead = Prefetcher([s for s, _ in sources if isinstance(s, RemoteSource) and self._stale(s)])
            if sources and self.conn.execute("SELECT 1 FROM metrics LIMIT 1").fetchone() is None:
                bulk = True
                self._write(self._drop_bulk_indexes)
            for done, (path, layout) in enumerate(sources, 1):
                self._one(path, layout)
                if self.progress:
                    self.progress(done, len(sources))
        finally:
            if ahead is not None:
                ahead.close()
            self._commit()
            if bulk:
                restore_bulk_indexes(self.conn)
        return self.report

    def _drop_bulk_indexes(self) -> None:
        for name in BULK_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    # discovery
    def _discover(self, paths: list) -> Iterator[tuple[Path, str]]:
        seen: set[str] = set()
        for given in paths:
            if is_url(given):
                yield from self._discover_remote(str(given))
                continue
            path = Path(given)
            if (path / "RunLog.json").is_file():
                found = [(path, "chunked-fs")]
            elif path.is_dir():
                found = list(RunLogStore(path).iter_sources())
            elif path.is_file():
                found = [(path, "file-system")]
            else:
                self._fail(str(path), BadRunLog(path, "no such file or folder"), record=False)
                continue
            for source, layout in found:
                key = os.path.abspath(source)
                if not _is_utf8(key):  # SQLite TEXT cannot hold it (os.fsdecode's lone surrogates)
                    self._fail(key, BadRunLog(key, "has a name that is not UTF-8: rename it"), record=False)
                    continue
                if key not in seen:
                    seen.add(key)
                    yield Path(key), layout

    def _discover_remote(self, url: str) -> Iterator[tuple[RemoteSource, str]]:
        try:
            sources, listed = discover(url, self.endpoint_url)
        except BadRunLog as exc:
            self._fail(exc.path, exc, record=False)
            return
        self.listed_prefixes += listed
        for source in sources:
            yield source, source.layout

    def _stale(self, source: RemoteSource) -> bool:
        """Whether ingest will download ``source`` (so it is worth fetching ahead)."""
        known = self.conn.execute("SELECT size, mtime_ns FROM sources WHERE path = ?", (str(source),)).fetchone()
        return known is None or known != (source.size, source.fingerprint) or not source.content_tagged

    def _exists(self, key: str) -> bool:
        """Whether a source recorded in the index still exists."""
        if not is_url(key):
            return _source_exists(Path(key))
        parent = key.rpartition("/")[0]
        if parent in self.listed_prefixes:
            return key in self.listed  # its folder was listed just now: no request per source
        return remote_exists(key, self.endpoint_url)

    # one source
    def _one(self, path: Path, layout: str) -> None:
        key = str(path)
        try:
            stat = _stat(path, layout)
            known = self.conn.execute(
                "SELECT run_id, size, mtime_ns, hash, ingested_at FROM sources WHERE path = ?", (key,)
            ).fetchone()
            if known and self._unchanged(path, layout, stat, known):
                self.report.unchanged += 1
                return
            digest = _content_hash(path, layout)
            if known and known[3] == digest:
                # Same content: remember the new size/mtime (or that it is no longer racy).
                if (stat.size, stat.mtime_ns) != known[1:3] or stat.newest_ns < self.now_ns - RACY_WINDOW_NS:
                    self._write(lambda: self.conn.execute(
                        "UPDATE sources SET size = ?, mtime_ns = ?, ingested_at = ? WHERE path = ?",
                        (stat.size, stat.mtime_ns, self.stamp, key)))
                self.report.unchanged += 1
                return
            run = _read_run(path, layout)
            flat = flatten.flatten_run(run, layout=layout, source_path=key, ingested_at=self.stamp)
            self._check_owner(path, flat.run_id)
            self._write(lambda: self._replace(key, known[0] if known else None, flat, stat, digest))
        except BadRunLog as exc:
            self._fail(key, exc)
            return
        except OSError as exc:
            self._fail(key, BadRunLog(path, f"cannot be read ({exc.strerror or exc})"))
            return
        except (sqlite3.DataError, sqlite3.IntegrityError, sqlite3.InterfaceError, ValueError, OverflowError) as exc:
            self._fail(key, BadRunLog(path, f"holds a value SQLite cannot store ({exc})"))
            return
        except RecursionError:  # JSON nested within Python's limit to parse, past it to flatten
            self._fail(key, BadRunLog(path, "is nested too deeply to index"))
            return
        self.report.ingested += 1
        self.report.metric_points += len(flat.metrics)

    def _unchanged(self, path: Path, layout: str, stat: _Stat, known: tuple) -> bool:
        _, size, mtime_ns, _, ingested_at = known
        if size != stat.size or mtime_ns != stat.mtime_ns:
            return False
        try:
            last = datetime.fromisoformat(ingested_at)
        except (TypeError, ValueError):
            return False
        return stat.newest_ns < _epoch_ns(last) - RACY_WINDOW_NS

    def _check_owner(self, path: Path, run_id: str) -> None:
        row = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row and row[0] != str(path) and self._exists(row[0]):
            raise BadRunLog(path, f"run_id {run_id!r} is already indexed from {row[0]}: remove one of the two")

    def _replace(self, key: str, old_run_id: str | None, flat: flatten.FlatRun, stat: _Stat, digest: str) -> None:
        conn = self.conn
        if old_run_id is not None and old_run_id != flat.run_id:
            self._delete_run(old_run_id, only_from=key)
        self._delete_run(flat.run_id)
        conn.execute("DELETE FROM sources WHERE run_id = ? AND path != ?", (flat.run_id, key))
        conn.execute(_INSERT["runs"], flat.run)
        for table in ("steps", "attempts", "params", "catalog", "code_identities", "metrics"):
            rows = getattr(flat, table)
            if rows:
                conn.executemany(_INSERT[table], rows)
        if flat.metrics:
            fill_latest(conn, flat.run_id)
        conn.execute(
            "INSERT OR REPLACE INTO sources (path, run_id, size, mtime_ns, hash, ingested_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, flat.run_id, stat.size, stat.mtime_ns, digest, self.stamp),
        )
        conn.execute("DELETE FROM ingest_errors WHERE path = ?", (key,))
        self.pending_rows += len(flat.metrics) + len(flat.params) + len(flat.steps) + 1

    def _delete_run(self, run_id: str, only_from: str | None = None) -> None:
        if only_from is not None:
            owner = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if owner and owner[0] != only_from:
                return
        for table in RUN_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    # writing: many runs per transaction, each run whole inside a savepoint
    def _write(self, work: Callable[[], Any]) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("SAVEPOINT run")
        try:
            work()
        except BaseException:
            self.conn.execute("ROLLBACK TO run")
            self.conn.execute("RELEASE run")
            raise
        self.conn.execute("RELEASE run")
        if self.pending_rows >= BATCH_ROWS:
            self._commit()

    def _commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.pending_rows = 0

    def _fail(self, key: str, exc: BadRunLog, record: bool = True) -> None:
        if exc.path == key:
            message = exc.reason
        elif exc.path.startswith(key + os.sep):  # a chunk file inside a run folder
            message = f"{os.path.relpath(exc.path, key)}: {exc.reason}"
        else:
            message = str(exc)
        self.report.failed += 1
        self.report.errors.append((key, message))
        if record:
            self._write(lambda: self.conn.execute(
                "INSERT INTO ingest_errors (path, error, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET error = excluded.error, seen_at = excluded.seen_at "
                "WHERE error IS NOT excluded.error",
                (key, message, self.stamp)))
        if self.strict:
            self._commit()
            raise BadRunLog(key, message)

    def _prune(self) -> None:
        gone = [
            (path, run_id)
            for path, run_id in self.conn.execute("SELECT path, run_id FROM sources").fetchall()
            if not self._exists(path)
        ]
        for path, run_id in gone:
            def work(path=path, run_id=run_id):
                owner = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if owner and owner[0] == path:
                    self._delete_run(run_id)
                    self.report.pruned += 1
                self.conn.execute("DELETE FROM sources WHERE path = ?", (path,))
            self._write(work)
        stale = [p for (p,) in self.conn.execute("SELECT path FROM ingest_errors").fetchall()
                 if (not self._exists(p) if is_url(p) else not os.path.exists(p))]
        for path in stale:
            self._write(lambda path=path: self.conn.execute("DELETE FROM ingest_errors WHERE path = ?", (path,)))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _source_exists(path: Path) -> bool:
    return path.is_file() or (path / "RunLog.json").is_file()


def _epoch_ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) * 1000


def _chunk_files(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(
            (e for e in entries if not e.name.startswith(".") and not e.name.endswith(".tmp") and e.is_file()),
            key=lambda e: e.name,
        )


def _read_run(path: Path | RemoteSource, layout: str):
    if isinstance(path, RemoteSource):
        return path.load()[0]
    return read_run_folder(path) if layout == "chunked-fs" else read_run_file(path)


def _stat(path: Path | RemoteSource, layout: str) -> _Stat:
    """Size and mtime of a file; for a chunked folder, total size and a fingerprint of names, sizes, mtimes."""
    if isinstance(path, RemoteSource):
        # ETags change with the content: a matching fingerprint needs no hash check (never
        # "racy"). Without ETags (memory://...) always confirm by hash.
        newest = 0 if path.content_tagged else 2**62
        return _Stat(path.size, path.fingerprint, newest)
    if layout != "chunked-fs":
        st = regular_file_stat(path)  # never open a FIFO planted in the store: it would block
        return _Stat(st.st_size, st.st_mtime_ns, st.st_mtime_ns)
    fingerprint = hashlib.sha256()
    size = newest = 0
    for entry in _chunk_files(path):
        st = entry.stat()
        size += st.st_size
        newest = max(newest, st.st_mtime_ns)
        fingerprint.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return _Stat(size, int.from_bytes(fingerprint.digest()[:8], "big") >> 1, newest)


def _content_hash(path: Path | RemoteSource, layout: str) -> str:
    if isinstance(path, RemoteSource):
        return path.load()[1]
    if layout != "chunked-fs":
        return _file_hash(path)
    digest = hashlib.sha256()
    for entry in _chunk_files(path):
        digest.update(f"{entry.name}\0{_file_hash(Path(entry.path))}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
