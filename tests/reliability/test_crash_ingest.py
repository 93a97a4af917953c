"""`runlog ingest` killed with SIGKILL at random moments: the index stays valid, never
holds part of a run, and the next ingest completes it to exactly a clean ingest's rows.

Each round starts the real CLI in a subprocess on the same index and kills it at a
random moment: after a random delay scaled to a measured clean ingest, or (small
commits) at a random moment after the ingest's first commit. After at most three kills in a row
the next ingest is left to complete; the index is then checked against the clean one
and started afresh. Two chains run at once: one runs the CLI as shipped (one commit
per 50,000 metric rows, so a kill lands before or after a large commit), the other
commits every 1,500 rows (``BATCH_ROWS``), so that kills also land between many
small commits.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bench.generate import Shape, generate

from .helpers import TABLES, ingest_command, integrity, per_run_counts

RUNS = 100
SHAPE = Shape(runs=RUNS, steps=4, keys=3, increments=25)
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ingest-crash") / "store"
    generate(root, SHAPE)
    hour_ago = time.time_ns() - 3600 * 10**9
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), ns=(hour_ago, hour_ago))
    return root


def timed_ingest(store: Path, db: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(ingest_command(store, db, False), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def kill_chain(store: Path, work: Path, clean: dict, timing: tuple[float, float], kills: int, small: bool,
               seed: int) -> dict[str, int]:
    """Kill ``kills`` ingests of one kind; return how many left a partial index and how many completed."""
    rng = random.Random(seed)
    startup, clean_seconds = timing
    points = {r: c[TABLES.index("metrics")] for r, c in clean.items()}
    stats = {"kills": 0, "partial": 0, "completed": 0}
    chain = in_chain = 0
    db = work / "chain-0.db"
    while stats["kills"] < kills or in_chain:
        before = per_run_counts(db) if db.exists() else {}
        proc = subprocess.Popen(ingest_command(store, db, small), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if in_chain == 3 or stats["kills"] == kills:  # the next ingest must complete
            proc.wait(timeout=300)
        elif small:  # once this ingest has committed something, at a random moment
            if committed_more(proc, db, len(before)):
                time.sleep(rng.uniform(0.0, 0.5) * (clean_seconds - startup))
            proc.send_signal(signal.SIGKILL)
        else:  # mostly after the imports, anywhere in the work, sometimes not at all
            delay = startup * rng.uniform(0.7, 1.0) + (clean_seconds - startup) * rng.uniform(0.0, 1.2)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            stats["kills"] += 1
            in_chain += 1
            if db.exists():
                assert integrity(db) == "ok"
                after = per_run_counts(db)
                for run_id, counts in after.items():
                    assert counts == clean[run_id], f"run {run_id} is partly indexed: {counts} != {clean[run_id]}"
                assert set(before) <= set(after), "a kill lost runs that an earlier ingest had committed"
                stats["partial"] += 0 < len(after) < RUNS
            continue
        # Not killed in time: this ingest completed what the killed ones left.
        assert (proc.returncode, stderr) == (0, ""), stderr
        fresh = sorted(set(clean) - set(before))
        written = sum(points[r] for r in fresh)
        assert stdout == (
            f"{len(fresh)} run{'' if len(fresh) == 1 else 's'} ingested, {len(before)} unchanged, 0 failed, "
            f"0 pruned; {written} metric point{'' if written == 1 else 's'} written\n"
        )
        assert integrity(db) == "ok"
        assert per_run_counts(db) == clean
        stats["completed"] += 1
        chain += 1
        in_chain = 0
        db = work / f"chain-{chain}.db"
    return stats


def committed_more(proc: subprocess.Popen, db: Path, runs_before: int) -> bool:
    """Wait until ``db`` holds more than ``runs_before`` runs (True) or ``proc`` ended (False)."""
    while proc.poll() is None:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                if conn.execute("SELECT count(*) FROM runs").fetchone()[0] > runs_before:
                    return True
            finally:
                conn.close()
        except sqlite3.Error:  # not created yet
            pass
        time.sleep(0.01)
    return False


def kill_ingests(store: Path, work: Path, kills: int, seed: int) -> dict[str, int]:
    """Two chains at once (the shipped CLI, and small commits), ``kills`` kills in all."""
    clean_db = work / "clean.db"
    clean_seconds = timed_ingest(store, clean_db)
    startup = timed_ingest(store, clean_db)  # nothing to do: imports, checks, exit
    clean = per_run_counts(clean_db)
    assert len(clean) == RUNS
    timing = (startup, max(clean_seconds, startup * 1.2))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = []
        for small in (False, True):
            folder = work / ("small" if small else "shipped")
            folder.mkdir()
            futures.append(pool.submit(kill_chain, store, folder, clean, timing, kills // 2, small, seed + small))
        results = [f.result() for f in futures]
    return {key: sum(r[key] for r in results) for key in results[0]} | {"small": results[1]["partial"]}


def test_sigkill_ingest_50_times(store, tmp_path):
    stats = kill_ingests(store, tmp_path, kills=50, seed=6)
    assert stats["kills"] == 50
    assert stats["completed"] >= 1, stats
    assert stats["small"] >= 5, f"too few kills landed mid-ingest: {stats}"


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_sigkill_ingest_soak(store, tmp_path):
    stats = kill_ingests(store, tmp_path, kills=500, seed=60)
    assert stats["small"] >= 50, stats
