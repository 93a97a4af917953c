"""Opening the index: read-write (created and upgraded to the current schema when
needed) or read-only (``mode=ro``, ``query_only`` and an authorizer that refuses
anything that could write).

>>> db = open_db("runlog.db", readonly=True)            # doctest: +SKIP
>>> db.execute("select count(*) from runs").fetchone()  # doctest: +SKIP
(11,)
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from ..errors import NoIndex, RunlogError, UsageProblem
from . import functions
from .migrations import MIGRATIONS
from .schema import BULK_INDEXES, PAGE_SIZE, SCHEMA_SQL, SCHEMA_VERSION, statements


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

# How long a writer waits for another one (an ingest's batch, or its index build at the end).
WRITE_BUSY_TIMEOUT_MS = 120_000
# Reads of a large index jump between tables (a run's row, its metrics, its params):
# memory-mapped pages and a bigger page cache make those jumps cheap.
MMAP_BYTES = 1 << 30
CACHE_KIB = 65_536


def tune(conn: sqlite3.Connection) -> None:
    """Memory-map the file and enlarge the page cache of one connection."""
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


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
        # No tune() here: a writer's memory-mapped pages and big cache only grow its
        # memory with the index (an ingest of 2 million points: 370 MB, 47 MB without),
        # and save it no time.
        functions.register(conn)
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
        tune(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise RunlogError(f"cannot open index {path}: {exc}") from None
    if version > SCHEMA_VERSION:
        raise RunlogError(f"index {path} has schema version {version}, newer than this runlog ({SCHEMA_VERSION}): upgrade runlog")
    if version == 0:
        raise UsageProblem(f"{path} is not a runlog index (it has no runlog tables): point --db at an index "
                           "that `runlog ingest` built")
    if version < SCHEMA_VERSION:  # an index built by an older runlog: upgrade it in place, once
        conn.close()
        _upgrade(path)
        return _open_readonly(path)
    functions.register(conn)
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    db.refusals = []
    conn.set_authorizer(_read_only_authorizer(db.refusals))
    return db


def _upgrade(path: Path) -> None:
    try:
        open_db(path).close()
    except RunlogError as exc:
        raise RunlogError(f"index {path} was built by an older runlog and must be upgraded, which needs write "
                          f"access ({exc}): run `runlog ingest STORE --db {path}` where it is writable") from None


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
            for statement in statements(SCHEMA_SQL):
                conn.execute(statement)
        else:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
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
