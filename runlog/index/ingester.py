"""Ingest of run logs of every format into the SQLite index (schema: :mod:`runlog.index.schema`).

One pass: :class:`~runlog.index.sources.Discovery` finds the sources (a bucket's
listing streams alongside ingest), :class:`~runlog.index.plan.Planner` decides what
changed, :mod:`~runlog.index.flatten` turns a run into rows, and
:class:`~runlog.index.writer.IndexWriter` replaces its run's rows inside one
transaction. Unchanged sources are skipped without being read.

>>> report = ingest([".run_log_store"], "runlog.db")  # doctest: +SKIP
>>> report.ingested, report.unchanged, report.failed   # doctest: +SKIP
(5, 0, 0)
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import BadRunLog, RunlogError, UsageProblem
from ..values import counted
from ..store import is_url, remote_exists
from ..store.objects import open_storage
from . import flatten
from .db import connect_writable, restore_bulk_indexes
from .plan import Planner, epoch_ns
from .sources import Discovery, Lookahead, Source, local_source_exists, read_source, refuse_a_folder_of_stores
from .writer import IndexWriter

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass
class IngestReport:
    """What one ingest did. ``errors`` holds ``(path, message)`` for every source that failed,
    ``skipped`` ``(path, why)`` for every symlink not followed (out of its store, or a loop)."""

    ingested: int = 0
    unchanged: int = 0
    failed: int = 0
    pruned: int = 0
    metric_points: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{counted(self.ingested, 'run')} ingested, {self.unchanged} unchanged, "
            f"{self.failed} failed, {self.pruned} pruned; {counted(self.metric_points, 'metric point')} written"
        )


def ingest(
    paths: Iterable[str | os.PathLike],
    db_path: str | os.PathLike,
    *,
    prune: bool = False,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    endpoint_url: str | None = None,
    recursive: bool = False,
) -> IngestReport:
    """Index every run under ``paths`` (store folders, run-log files or chunked run folders;
    with ``recursive``, every store at or below each folder).

    A path may be a URL (``s3://bucket/prefix``, any fsspec protocol); ``endpoint_url``
    points s3:// at an S3-compatible server. Unchanged objects are recognised by
    their ETags and sizes in the listing, without downloading them.

    Unchanged sources are skipped; a bad source is reported in ``errors`` and in the
    ``ingest_errors`` table while the others are ingested, or, with ``strict``, raises
    :class:`~runlog.errors.BadRunLog`. ``progress(done, total)`` is called after each source;
    ``total`` is None until discovery has ended (a bucket's listing streams alongside ingest).
    A folder that holds no run logs while stores below it do is a
    :class:`~runlog.errors.UsageProblem` naming them, unless ``recursive``.

    >>> ingest([".run_log_store"], "runlog.db", prune=True).summary()  # doctest: +SKIP
    '5 runs ingested, 0 unchanged, 0 failed, 0 pruned; 120 metric points written'
    """
    paths = list(paths)
    missing = [str(p) for p in paths if not is_url(p) and not os.path.lexists(p)]
    if missing and len(missing) == len(paths):  # never leave an empty index behind
        raise UsageProblem(f"nothing to ingest: {', '.join(missing)} does not exist (give a store folder, "
                           "a run-log file, a chunked run folder or a URL)")
    for path in paths:  # what cannot work stops here, before an index is made
        if is_url(path):
            open_storage(str(path), endpoint_url)  # a missing extra, an unknown protocol
        elif not recursive:
            refuse_a_folder_of_stores(path)
    conn = connect_writable(db_path)
    try:
        return Ingester(conn, strict, progress, endpoint_url, recursive).run(paths, prune)
    except sqlite3.OperationalError as exc:  # e.g. locked by another writer for longer than the busy timeout
        hint = ": another process is writing it; try again when it is done" if "locked" in str(exc) else ""
        raise RunlogError(f"cannot write index {db_path}: {exc}{hint}") from None
    finally:
        conn.close()


class Ingester:
    """One ingest: discovery, planning and writing, source by source (see the module's docstring)."""

    def __init__(self, conn: sqlite3.Connection, strict: bool, progress: ProgressCallback | None,
                 endpoint_url: str | None = None, recursive: bool = False):
        now = datetime.now(timezone.utc)
        self.conn = conn
        self.strict = strict
        self.progress = progress
        self.endpoint_url = endpoint_url
        self.report = IngestReport()
        self.writer = IndexWriter(conn, now.isoformat(timespec="microseconds"))
        self.planner = Planner(conn, epoch_ns(now))
        self.discovery = Discovery(endpoint_url, on_error=lambda key, exc: self._fail(key, exc, record=False),
                                   on_skip=lambda key, why: self.report.skipped.append((key, why)),
                                   recursive=recursive)
        self.pruning = False  # with --prune, every remote source listed is kept in temp.listed

    def run(self, paths: list, prune: bool) -> IngestReport:
        if prune:  # the remote sources listed now: prune drops the indexed ones not among them
            self.pruning = True
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (path TEXT PRIMARY KEY) WITHOUT ROWID")
            self.discovery.on_listed = self._listed
        bulk = self.conn.execute("SELECT 1 FROM metrics LIMIT 1").fetchone() is None
        try:
            if bulk:
                self.writer.write(self.writer.drop_bulk_indexes)
            with Lookahead(self.discovery.items(paths), self.planner.stale) as queue:
                for done, (source, layout) in enumerate(queue, 1):
                    self._one(source, layout)
                    if self.progress:
                        self.progress(done, queue.total)
            if prune:  # after ingest, which has taken over any run moved to another source
                self._prune()
        finally:
            self.writer.commit()
            if bulk:
                restore_bulk_indexes(self.conn)
        return self.report

    def _listed(self, url: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO temp.listed (path) VALUES (?)", (url,))

    # one source
    def _one(self, source: Source, layout: str) -> None:
        key = str(source)
        try:
            decision = self.planner.decide(source, layout)
            if decision.action != "read":
                if decision.action == "restat":
                    self.writer.write(lambda: self.writer.restat_source(key, decision.stat))
                self.report.unchanged += 1
                return
            run = read_source(source, layout)
            flat = flatten.flatten_run(run, layout=layout, source_path=key, ingested_at=self.writer.stamp)
            self._check_owner(key, flat.run_id)
            self.writer.write(lambda: self.writer.replace_run(key, decision.old_run_id, flat, decision.stat,
                                                              decision.digest))
        except BadRunLog as exc:
            return self._fail(key, exc)
        except OSError as exc:
            return self._fail(key, BadRunLog(source, f"cannot be read ({exc.strerror or exc})"))
        except (sqlite3.DataError, sqlite3.IntegrityError, sqlite3.InterfaceError, ValueError, OverflowError) as exc:
            return self._fail(key, BadRunLog(source, f"holds a value SQLite cannot store ({exc})"))
        except RecursionError:  # JSON nested within Python's limit to parse, past it to flatten
            return self._fail(key, BadRunLog(source, "is nested too deeply to index"))
        self.report.ingested += 1
        self.report.metric_points += len(flat.metrics)

    def _check_owner(self, key: str, run_id: str) -> None:
        row = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row and row[0] != key and self._exists(row[0]):
            raise BadRunLog(key, f"run_id {run_id!r} is already indexed from {row[0]}: remove one of the two")

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
            self.writer.write(lambda: self.writer.record_error(key, message))
        if self.strict:
            self.writer.commit()
            raise BadRunLog(key, message)

    # --prune
    def _exists(self, key: str) -> bool:
        """Whether a source recorded in the index still exists."""
        if not is_url(key):
            return local_source_exists(Path(key))
        if self.pruning:  # listed just now: no request per source
            if self.conn.execute("SELECT 1 FROM temp.listed WHERE path = ?", (key,)).fetchone():
                return True
            if key.rpartition("/")[0] in self.discovery.complete_prefixes:
                return False
        return remote_exists(key, self.endpoint_url)

    def _prune(self) -> None:
        # A cursor, not fetchall(): the index may hold 100,000 sources.
        gone = [(path, run_id) for path, run_id in self.conn.execute("SELECT path, run_id FROM sources")
                if not self._exists(path)]
        for path, run_id in gone:
            def work(path=path, run_id=run_id):
                if self.writer.prune_source(path, run_id):
                    self.report.pruned += 1
            self.writer.write(work)
        stale = [p for (p,) in self.conn.execute("SELECT path FROM ingest_errors").fetchall()
                 if (not self._exists(p) if is_url(p) else not os.path.exists(p))]
        for path in stale:
            self.writer.write(lambda path=path: self.writer.forget_error(path))
