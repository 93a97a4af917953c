"""Shared by the ingest reliability tests: the real CLI as a subprocess, and per-run row counts."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

TABLES = ("steps", "attempts", "metrics", "params", "catalog", "code_identities")
SMALL_BATCHES = "import runlog.index.writer as w; w.BATCH_ROWS = 1500\nfrom runlog.cli import cli; cli(prog_name='runlog')"


def cli(*args: str, small_batches: bool = False) -> list[str]:
    """The real `runlog` CLI as a subprocess argv; ``small_batches`` commits every 1,500 rows."""
    head = [sys.executable, "-c", SMALL_BATCHES] if small_batches else [sys.executable, "-m", "runlog.cli"]
    return [*head, *args]


def ingest_command(store: Path, db: Path, small_batches: bool) -> list[str]:
    return cli("ingest", str(store), "--db", str(db), "--quiet", small_batches=small_batches)


def per_run_counts(db: Path) -> dict[str, tuple[int, ...]]:
    """run_id -> row counts in every per-run table, for every run in ``runs``."""
    conn = sqlite3.connect(db)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:  # killed before the schema was committed
            assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            return {}
        runs = [r for (r,) in conn.execute("SELECT run_id FROM runs")]
        counts = {r: [0] * len(TABLES) for r in runs}
        for i, table in enumerate(TABLES):
            for run_id, n in conn.execute(f"SELECT run_id, count(*) FROM {table} GROUP BY run_id"):
                assert run_id in counts, f"{table} has rows of {run_id}, which is not in runs"
                counts[run_id][i] = n
        sources = sorted(r for (r,) in conn.execute("SELECT run_id FROM sources"))
        assert sources == sorted(runs), "sources and runs disagree"
        return {r: tuple(c) for r, c in counts.items()}
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
