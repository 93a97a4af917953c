"""Writing the index: each run whole, many runs per transaction.

Every change to one run (its rows replaced, deleted, an error recorded) runs inside
a savepoint of a transaction that is committed every BATCH_ROWS rows: a reader, or
an ingest killed at any moment, never sees part of a run, and the next ingest
completes what a killed one left.

>>> writer = IndexWriter(conn, stamp="2026-12-01T00:00:00+00:00")   # doctest: +SKIP
>>> writer.write(lambda: writer.replace_run(key, None, flat, stat, digest))   # doctest: +SKIP
>>> writer.commit()                                                  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from . import flatten
from .schema import BULK_INDEXES, FILL_STEP_LATEST, INSERT, RUN_TABLES
from .sources import Stat
from .summaries import group_series, run_metric_rows, run_param_rows
from .tiles import tile_rows

# Commit after this many rows (each run is always whole inside one transaction).
BATCH_ROWS = 50_000


def refill_run_tables(conn: sqlite3.Connection, run_id: str) -> None:
    """Recompute ``run_metrics``, ``run_params`` and ``metric_tiles`` of one run from its rows
    in the index (the schema-3 migration does this for every run; ingest computes them
    while flattening)."""
    for table in ("run_metrics", "run_params", "metric_tiles"):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    positions = dict(conn.execute("SELECT step_name, position FROM steps WHERE run_id = ?", (run_id,)))
    series = group_series(conn.execute(
        "SELECT run_id, step_name, key, step, value, value_text, kind, timestamp_ms FROM metrics "
        "WHERE run_id = ? ORDER BY step_name, key, step", (run_id,)))
    conn.executemany(INSERT["run_metrics"], run_metric_rows(run_id, series, positions))
    conn.executemany(INSERT["metric_tiles"], tile_rows(run_id, series))
    params = conn.execute(
        "SELECT run_id, step_name, attempt_number, direction, key, kind, value, value_text FROM params "
        "WHERE run_id = ?", (run_id,))
    conn.executemany(INSERT["run_params"], run_param_rows(run_id, params, positions))


def fill_latest(conn: sqlite3.Connection, run_id: str) -> None:
    """Compute ``step_latest`` of one run from its metric rows (ingest does this inside
    the run's transaction)."""
    conn.execute(FILL_STEP_LATEST, (run_id,))


class IndexWriter:
    """The only code that changes a run's rows in the index."""

    def __init__(self, conn: sqlite3.Connection, stamp: str):
        self.conn = conn
        self.stamp = stamp  # ingested_at of everything written now
        self.pending_rows = 0

    def write(self, work: Callable[[], Any]) -> None:
        """Run ``work`` whole or not at all (a savepoint), committing full batches."""
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
            self.commit()

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.pending_rows = 0

    def drop_bulk_indexes(self) -> None:
        """Before a first ingest into an empty index: one sort at the end beats keeping
        two more B-trees up to date row by row (db.restore_bulk_indexes builds them)."""
        for name in BULK_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    # -- one run's rows (call inside write()) ---------------------------------------
    def replace_run(self, key: str, old_run_id: str | None, flat: flatten.FlatRun, stat: Stat, digest: str) -> None:
        """Put ``flat`` in place of whatever the source ``key`` and the run held before."""
        conn = self.conn
        if old_run_id is not None and old_run_id != flat.run_id:
            self.delete_run(old_run_id, only_from=key)
        self.delete_run(flat.run_id)
        conn.execute("DELETE FROM sources WHERE run_id = ? AND path != ?", (flat.run_id, key))
        conn.execute(INSERT["runs"], flat.run)
        for table in ("steps", "attempts", "params", "catalog", "code_identities", "metrics", "run_metrics",
                      "run_params", "metric_tiles"):
            if table == "metrics":  # made as SQLite takes them: a long run's rows are never all held at once
                conn.executemany(INSERT[table], flat.metric_rows())
            elif rows := getattr(flat, table):
                conn.executemany(INSERT[table], rows)
        if flat.metric_count:
            fill_latest(conn, flat.run_id)
        self.record_source(key, flat.run_id, stat, digest)
        conn.execute("DELETE FROM ingest_errors WHERE path = ?", (key,))
        self.pending_rows += flat.metric_count + len(flat.params) + len(flat.steps) + 1

    def delete_run(self, run_id: str, only_from: str | None = None) -> None:
        """Every row of ``run_id`` (only when it was read from ``only_from``, if given)."""
        if only_from is not None:
            owner = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if owner and owner[0] != only_from:
                return
        for table in RUN_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    def record_source(self, key: str, run_id: str, stat: Stat, digest: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sources (path, run_id, size, mtime_ns, hash, ingested_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, run_id, stat.size, stat.mtime_ns, digest, self.stamp),
        )

    def restat_source(self, key: str, stat: Stat) -> None:
        """The same content under a new size/mtime (or no longer racy)."""
        self.conn.execute("UPDATE sources SET size = ?, mtime_ns = ?, ingested_at = ? WHERE path = ?",
                          (stat.size, stat.mtime_ns, self.stamp, key))

    def record_error(self, key: str, message: str) -> None:
        self.conn.execute(
            "INSERT INTO ingest_errors (path, error, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET error = excluded.error, seen_at = excluded.seen_at "
            "WHERE error IS NOT excluded.error",
            (key, message, self.stamp))

    def prune_source(self, path: str, run_id: str) -> bool:
        """Forget a source that is gone, and its run if the run was read from it."""
        owner = self.conn.execute("SELECT source_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        pruned = bool(owner and owner[0] == path)
        if pruned:
            self.delete_run(run_id)
        self.conn.execute("DELETE FROM sources WHERE path = ?", (path,))
        return pruned

    def forget_error(self, path: str) -> None:
        self.conn.execute("DELETE FROM ingest_errors WHERE path = ?", (path,))
