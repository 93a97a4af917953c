"""The index opened for reading: a plain ``sqlite3`` connection (``mode=ro``,
``query_only``) behind an authorizer that refuses anything that could write, and
says what it refused.

Every read path (queries, pages, exports, the lake's reader) goes through
:class:`IndexReader`; sqlite-utils is imported only where tables are created or
changed (:mod:`.db`), so a read command does not pay for importing it.

>>> with IndexReader.open("runlog.db") as db:                       # doctest: +SKIP
...     db.execute("select count(*) from runs").fetchone()
(6,)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..errors import NoIndex, RunlogError, UsageProblem
from . import functions
from .schema import SCHEMA_VERSION

# Reads of a large index jump between tables (a run's row, its metrics, its params):
# memory-mapped pages and a bigger page cache make those jumps cheap.
MMAP_BYTES = 1 << 30
CACHE_KIB = 65_536


def tune(conn: sqlite3.Connection) -> None:
    """Memory-map the file and enlarge the page cache of one connection."""
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


class IndexReader:
    """A read-only connection to the index: ``conn`` for queries, ``refusals`` for what
    the authorizer refused during the last statements (cleared by :func:`run_sql`).

    >>> db = IndexReader.open("runlog.db")                      # doctest: +SKIP
    >>> db.execute("DELETE FROM runs")                          # doctest: +SKIP
    sqlite3.DatabaseError: not authorized
    >>> db.refusals                                             # doctest: +SKIP
    ['DELETE from runs']
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self.refusals: list[str] = []
        conn.set_authorizer(read_only_authorizer(self.refusals))

    @classmethod
    def open(cls, path: str | Path) -> IndexReader:
        """Open the index at ``path`` read-only. A missing file, a file that is not an
        index, and an index of another schema version are usage errors that say the fix;
        nothing here ever writes (an old index is not upgraded: see ``runlog upgrade``)."""
        path = Path(path)
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
        try:
            check_version(path, version)
        except RunlogError:
            conn.close()
            raise
        functions.register(conn)
        return cls(conn, path)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_version(path: Path, version: int) -> None:
    """Refuse an index this runlog cannot read as it is, naming the fix."""
    if version > SCHEMA_VERSION:
        raise RunlogError(f"index {path} has schema version {version}, newer than this runlog ({SCHEMA_VERSION}): "
                          "upgrade runlog")
    if version == 0:
        raise UsageProblem(f"{path} is not a runlog index (it has no runlog tables): point --db at an index "
                           "that `runlog ingest` built")
    if version < SCHEMA_VERSION:
        raise UsageProblem(f"index {path} has schema version {version}, older than this runlog ({SCHEMA_VERSION}): "
                           f"upgrade it in place with `runlog upgrade --db {path}` (or `runlog ingest STORE --db "
                           f"{path}`), where it is writable")


# Pragmas that only read: these with no value, and the ones that take a table name
# (or, for the checks, a table name or a count of errors).
_NAME_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                 "table_list", "integrity_check", "quick_check"}
_READ_PRAGMAS = _NAME_PRAGMAS | {
    "database_list", "collation_list", "function_list", "module_list", "pragma_list", "user_version",
    "schema_version", "page_count", "page_size", "freelist_count", "encoding", "compile_options", "journal_mode",
}
_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT,
}
# SQLite checks writes to these itself (they need writable_schema, which is refused), and
# it asks about them both for a schema change (whose own action comes next and is refused
# by name below) and for a read of a table-valued pragma (``pragma_table_info('runs')``).
_SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"}
_FUNCTIONS_THAT_WRITE = {"load_extension", "writefile", "edit"}
# What a refused action would do, from the authorizer's two arguments ({0}, {1}).
REFUSAL_TEXT = {
    sqlite3.SQLITE_INSERT: "INSERT into {0}", sqlite3.SQLITE_UPDATE: "UPDATE {0}", sqlite3.SQLITE_DELETE: "DELETE from {0}",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE {0}", sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE {0}",
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX {0} on {1}", sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX {0} on {1}",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW {0}", sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW {0}",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER {0} on {1}",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER {0} on {1}",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE {0} (module {1})",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE {0}", sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TEMP TABLE {0}",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX {0}", sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP TEMP INDEX {0}",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW {0}", sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP TEMP VIEW {0}",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER {0}", sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TEMP TRIGGER {0}",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE {0}",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE {1}",  # {0} is the database (main)
    sqlite3.SQLITE_REINDEX: "REINDEX (it rebuilds the index {0})", sqlite3.SQLITE_ANALYZE: "ANALYZE {0}",
    sqlite3.SQLITE_ATTACH: "attach the database {0} (ATTACH or VACUUM INTO)", sqlite3.SQLITE_DETACH: "DETACH {0}",
}


def refusal(action: int, arg1: str | None, arg2: str | None) -> str:
    """What a statement refused with this authorizer action would have done, in words.

    >>> refusal(sqlite3.SQLITE_DELETE, "runs", None)
    'DELETE from runs'
    >>> refusal(sqlite3.SQLITE_ATTACH, "", None)
    'VACUUM (it rewrites the whole file)'
    """
    if action == sqlite3.SQLITE_ATTACH and not arg1:  # VACUUM asks to attach a database with no name
        return "VACUUM (it rewrites the whole file)"
    if action == sqlite3.SQLITE_CREATE_TABLE and (arg1 or "").startswith("sqlite_stat"):
        return "ANALYZE (it writes statistics tables into the index)"
    if action == sqlite3.SQLITE_FUNCTION:
        return f"call {arg2}()"
    if action == sqlite3.SQLITE_PRAGMA:
        return f"run PRAGMA {(arg1 or '').lower()}" + (f" = {arg2}" if arg2 is not None else "")
    text = REFUSAL_TEXT.get(action, "run operation #%d on {0}" % action)
    return text.format(arg1 or "", arg2 or "").rstrip()


def read_only_authorizer(refusals: list[str]):
    """An authorizer for :meth:`sqlite3.Connection.set_authorizer` that allows reads,
    refuses anything that could write and appends what it refused to ``refusals``."""

    def authorize(action, arg1, arg2, _db, _trigger):
        if _allowed(action, arg1, arg2):
            return sqlite3.SQLITE_OK
        refusals.append(refusal(action, arg1, arg2))
        return sqlite3.SQLITE_DENY

    return authorize


def _allowed(action: int, arg1: str | None, arg2: str | None) -> bool:
    if action == sqlite3.SQLITE_FUNCTION:
        return arg2 not in _FUNCTIONS_THAT_WRITE
    if action in _ALLOWED_ACTIONS:
        return True
    if action == sqlite3.SQLITE_PRAGMA:
        return (arg1 or "").lower() in (_READ_PRAGMAS if arg2 is None else _NAME_PRAGMAS)
    return action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE) and arg1 in _SCHEMA_TABLES
