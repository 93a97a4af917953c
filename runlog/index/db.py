"""Opening the index: read-write for ingest and ``runlog upgrade`` (created, and
upgraded to the current schema, when needed), or read-only for everything else
(:class:`~.readonly.IndexReader`, which never writes, not even to upgrade).

sqlite-utils is imported here only when a migration changes tables, or when a caller
asks :func:`open_db` for a read-write ``sqlite_utils.Database``; never on a read path, nor
by an ingest of a current index: importing it imports pandas and numpy when they are
installed (MLflow brings them), a third of a second that those commands do not need.

>>> db = open_db("runlog.db", readonly=True)            # doctest: +SKIP
>>> db.execute("select count(*) from runs").fetchone()  # doctest: +SKIP
(11,)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from ..errors import NoIndex, RunlogError
from . import functions
from .migrations import MIGRATIONS
from .readonly import IndexReader, check_version
from .schema import BULK_INDEXES, PAGE_SIZE, SCHEMA_SQL, SCHEMA_VERSION, statements

if TYPE_CHECKING:
    import sqlite_utils

# How long a writer waits for another one (an ingest's batch, or its index build at the end).
WRITE_BUSY_TIMEOUT_MS = 120_000


@overload
def open_db(path: str | os.PathLike, readonly: Literal[True]) -> IndexReader: ...
@overload
def open_db(path: str | os.PathLike, readonly: Literal[False] = False) -> sqlite_utils.Database: ...


def open_db(path, readonly=False):
    """Open the index at ``path``: read-only (an :class:`IndexReader`), or read-write (a
    ``sqlite_utils.Database``; the file is created, or upgraded to the current schema,
    when needed).

    A read-only index is opened with ``mode=ro`` and ``PRAGMA query_only`` and refuses,
    through an authorizer, anything that could write (ATTACH, VACUUM, writable_schema...);
    ``db.refusals`` lists what it refused. An index of an older schema opened read-only is
    a usage error that names ``runlog upgrade``: reading never writes.

    >>> db = open_db("runlog.db", readonly=True)      # doctest: +SKIP
    >>> db.execute("select count(*) from runs").fetchone()  # doctest: +SKIP
    (5,)
    """
    if readonly:
        return IndexReader.open(path)
    import sqlite_utils

    return sqlite_utils.Database(connect_writable(Path(path)), execute_plugins=False)


def connect_writable(path: str | os.PathLike) -> sqlite3.Connection:
    """A read-write connection to the index at ``path`` (created, or upgraded to the
    current schema, when needed), tuned for ingest: WAL, and large pages in a new file.
    sqlite-utils is imported only when a migration runs."""
    path = Path(path)
    try:
        new = not path.exists() or path.stat().st_size == 0
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {WRITE_BUSY_TIMEOUT_MS}")
        if new:  # larger pages: fewer B-tree splits on bulk inserts (only settable before the first table)
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # No readonly.tune() here: a writer's memory-mapped pages and big cache only grow its
        # memory with the index (an ingest of 2 million points: 370 MB, 47 MB without),
        # and save it no time.
        functions.register(conn)
        ensure_schema(conn)
    except sqlite3.Error as exc:
        raise RunlogError(f"cannot open index {path}: {exc}") from None
    return conn


def upgrade_index(path: str | os.PathLike) -> tuple[int, int]:
    """Upgrade the existing index at ``path`` to the current schema, in place, from its
    own tables; ``(version before, version after)``. Nothing is created: a missing file
    is :class:`~runlog.errors.NoIndex`.

    >>> upgrade_index("old.db")           # doctest: +SKIP
    (1, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise NoIndex(path)
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            before = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise RunlogError(f"cannot open index {path}: {exc}") from None
    if before == 0 or before > SCHEMA_VERSION:  # not an index, or one of a newer runlog
        check_version(path, before)
    try:
        connect_writable(path).close()
    except RunlogError as exc:
        raise RunlogError(f"index {path} must be upgraded, which needs write access ({exc}): run "
                          "`runlog upgrade` where it is writable") from None
    return before, SCHEMA_VERSION


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables, indexes and views when missing; apply numbered migrations
    (through sqlite-utils, imported only then).

    Writes nothing when the schema is already current.
    """
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
            import sqlite_utils

            db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](db)
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
