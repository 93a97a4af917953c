"""Ingest of run logs of every format into the SQLite index (schema: :mod:`runlog.db`).

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import flatten
from .db import (  # noqa: F401  (open_db and the schema are also reached through runlog.index)
    BULK_INDEXES,
    MIGRATIONS,
    PAGE_SIZE,
    RUN_TABLES,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    WRITE_BUSY_TIMEOUT_MS,
    _INSERT,
    _TABLE_COLUMNS,
    ensure_schema,
    fill_latest,
    open_db,
    restore_bulk_indexes,
    run_log_json_schema,
    schema_sql,
    sqlite_utils,
)
from ..errors import BadRunLog, RunlogError, UsageProblem
from ..store.objects.base import is_url
from ..store.remote import Listing, Lookahead, RemoteSource, remote_exists
from ..store.local import RunLogStore, read_run_file, read_run_folder, regular_file_stat

# A source whose newest mtime is this close to (or after) its last ingest may
# have changed within one mtime tick: confirm by hash (as git does for "racy" files).
RACY_WINDOW_NS = 2_000_000_000
# Commit after this many metric rows (each run is always whole inside one transaction).
BATCH_ROWS = 50_000

ProgressCallback = Callable[[int, "int | None"], None]

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
    :class:`~runlog.errors.BadRunLog`. ``progress(done, total)`` is called after each source;
    ``total`` is None until discovery has ended (a bucket's listing streams alongside ingest).

    >>> ingest([".run_log_store"], "runlog.db", prune=True).summary()  # doctest: +SKIP
    '5 runs ingested, 0 unchanged, 0 failed, 0 pruned; 120 metric points written'
    """
    paths = list(paths)
    missing = [str(p) for p in paths if not is_url(p) and not os.path.lexists(p)]
    if missing and len(missing) == len(paths):  # never leave an empty index behind
        raise UsageProblem(f"nothing to ingest: {', '.join(missing)} does not exist (give a store folder, "
                           "a run-log file, a chunked run folder or a URL)")
    db = open_db(db_path)
    try:
        return _Ingest(db, strict, progress, endpoint_url).run(paths, prune)
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
        self.recording = False  # whether remote sources listed are kept in temp.listed
        self.conn = db.conn
        self.strict = strict
        self.progress = progress
        self.report = IngestReport()
        self.now = datetime.now(timezone.utc)
        self.stamp = self.now.isoformat(timespec="microseconds")
        self.now_ns = _epoch_ns(self.now)
        self.pending_rows = 0

    def run(self, paths: list, prune: bool) -> IngestReport:
        self.recording = prune
        if prune:  # the remote sources listed now: prune drops the indexed ones not among them
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (path TEXT PRIMARY KEY) WITHOUT ROWID")
        bulk = self.conn.execute("SELECT 1 FROM metrics LIMIT 1").fetchone() is None
        try:
            if bulk:
                self._write(self._drop_bulk_indexes)
            # Discovery streams: a bucket's listing is read page by page while ingest goes on.
            with Lookahead(self._discover(paths), self._stale) as queue:
                for done, (path, layout) in enumerate(queue, 1):
                    self._one(path, layout)
                    if self.progress:
                        self.progress(done, queue.total)
            if prune:  # after ingest, which has taken over any run moved to another source
                self._prune()
        finally:
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
        listing = Listing(url, self.endpoint_url)
        try:
            for source in listing:
                if self.recording:
                    self.conn.execute("INSERT OR IGNORE INTO temp.listed (path) VALUES (?)", (str(source),))
                yield source, source.layout
        except BadRunLog as exc:
            self._fail(exc.path, exc, record=False)
            return
        if listing.complete_prefix is not None:
            self.listed_prefixes.append(listing.complete_prefix)

    def _stale(self, source: RemoteSource) -> bool:
        """Whether ingest will download ``source`` (so it is worth fetching ahead)."""
        known = self.conn.execute("SELECT size, mtime_ns FROM sources WHERE path = ?", (str(source),)).fetchone()
        return known is None or known != (source.size, source.fingerprint) or not source.content_tagged

    def _exists(self, key: str) -> bool:
        """Whether a source recorded in the index still exists."""
        if not is_url(key):
            return _source_exists(Path(key))
        if self.recording:  # listed just now: no request per source
            if self.conn.execute("SELECT 1 FROM temp.listed WHERE path = ?", (key,)).fetchone():
                return True
            if key.rpartition("/")[0] in self.listed_prefixes:
                return False
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
        # A cursor, not fetchall(): the index may hold 100,000 sources.
        gone = [(path, run_id) for path, run_id in self.conn.execute("SELECT path, run_id FROM sources")
                if not self._exists(path)]
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
