"""Ingest: full ingest against the raw executemany limit and MLflow's log_batch; re-ingest; peak memory.

    .venv/bin/python -m bench --only ingest [--quick | --shape 500x10x10x100]

1. Full ingest (in a subprocess, which also gives its peak RSS) in metric points/s.
2. The raw limit: the same rows, read and flattened beforehand (not timed), inserted
   with plain ``executemany`` into a fresh index with the same schema, in one transaction.
3. MLflow: ``log_batch`` (1000 metrics a call) into MLflow's SQLite store, of the points
   the query benchmark asks MLflow about (one metric of every run, and every numeric
   metric of two runs).
4. Re-ingest of unchanged input, and after rewriting 1% of the runs with new values.

Files get mtimes an hour old, as in a store of finished runs (a file modified within
seconds of its last ingest is confirmed by hash). Nothing here asserts on time.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import mlflow_side
from bench.common import age, table, timed, verdict
from bench.generate import FORMATS, Shape, generate, make_run, write_run
from runlog.index import flatten
from runlog.index import ingest, open_db
from runlog.index.schema import TABLE_COLUMNS
from runlog.store import RunLogStore, read_run_file, read_run_folder

# The series MLflow holds for every run (history and leaderboard), and the two runs compared.
HISTORY_STEP, KEY = "step1", "key_1"


def prepare(work: Path, shape: Shape) -> Path:
    """The synthetic store for ``shape`` under ``work`` (generated once)."""
    store = work / "store"
    if not (work / "store.done").exists():
        print(f"generating {shape.points:,} metric points ({shape.runs} runs) in {store} ...", flush=True)
        generate(store, shape)
        age(store, 3600)
        (work / "store.done").write_text(json.dumps(shape.__dict__))
    return store


def full_ingest(store: Path, db: Path, summaries: bool = True) -> dict[str, Any]:
    """One full ingest into a new ``db`` in a subprocess: its time, counts and peak RSS
    (without ``summaries``: as before schema 2, the baseline of their cost)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    flags = [] if summaries else ["--no-summaries"]
    out = subprocess.run([sys.executable, "-m", "bench.ingest_child", str(store), str(db), *flags],
                         check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_limit(store: Path, db: Path) -> dict[str, Any]:
    """Read and flatten every run (timed apart), then insert the prebuilt rows with executemany."""
    sources = list(RunLogStore(store).iter_sources())
    read_s, runs = timed(lambda: [read_run_folder(p) if layout == "chunked-fs" else read_run_file(p)
                                  for p, layout in sources])
    flatten_s, flats = timed(lambda runs=runs: [flatten.flatten_run(run, layout=layout, source_path=str(p))
                                      for run, (p, layout) in zip(runs, sources)])
    del runs
    tables = ("runs", "steps", "attempts", "params", "catalog", "code_identities", "metrics")
    rows: dict[str, list[tuple]] = {t: [] for t in tables}
    for flat in flats:
        rows["runs"].append(flat.run)
        for name in tables[1:]:
            rows[name].extend(getattr(flat, name))
    del flats
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = open_db(db).conn
    statements = {t: f"INSERT INTO {t} ({', '.join(c)}) VALUES ({', '.join('?' * len(c))})"
                  for t, c in TABLE_COLUMNS.items()}

    def insert() -> None:
        conn.execute("BEGIN")
        for name in tables:  # the rows runlog flattens (not the latest tables it derives)
            conn.executemany(statements[name], rows[name])
        conn.execute("COMMIT")

    insert_s, _ = timed(insert)
    conn.close()
    return {"read_s": read_s, "flatten_s": flatten_s, "insert_s": insert_s, "metric_rows": len(rows["metrics"]),
            "rows": sum(len(r) for r in rows.values())}


def change_runs(store: Path, shape: Shape, fraction: float = 0.01) -> list[str]:
    """Rewrite ``fraction`` of the runs (at least one) with new values, in their own layout."""
    count = max(1, round(shape.runs * fraction))
    rng = random.Random(7)
    changed = []
    for index in sorted(rng.sample(range(shape.runs), count)):
        fmt = FORMATS[index % len(FORMATS)]
        # New values every time, so that reused data (--work) really changes too.
        run = make_run(index, shape, fmt, random.Random(time.time_ns() + index))
        write_run(store, run, fmt, version=1_700_000_000_000_000_000 + index)
        changed.append(run["run_id"])
    return changed


def load_mlflow(db: Path, mlflow_db: Path) -> mlflow_side.Loaded:
    """MLflow's SQLite store holding the (HISTORY_STEP, KEY) series of every run and all of two runs."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    run_ids = [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    compared = run_ids[1:3]
    points = {r: (mlflow_side.series(conn, r) if r in compared else mlflow_side.series(conn, r, HISTORY_STEP, KEY))
              for r in run_ids}
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{mlflow_db}{suffix}").unlink(missing_ok=True)
    client = mlflow_side.sqlite_client(mlflow_db)
    return mlflow_side.load(client, "runlog-bench", points)


def run(work: Path, shape: Shape) -> tuple[dict[str, Any], str, mlflow_side.Loaded]:
    """All ingest measures on ``shape``; ``(results, tables, MLflow store loaded for the queries)``."""
    store = prepare(work, shape)
    db = work / "runlog.db"
    print("full ingest (subprocess), with and without run-level summaries, twice each ...", flush=True)
    bare = min((full_ingest(store, work / "bare.db", summaries=False) for _ in range(2)), key=lambda r: r["seconds"])
    (work / "bare.db").unlink(missing_ok=True)
    full = min((full_ingest(store, db) for _ in range(2)), key=lambda r: r["seconds"])
    points = full["metric_points"]
    print("raw executemany limit ...", flush=True)
    limit = raw_limit(store, work / "limit.db")
    (work / "limit.db").unlink(missing_ok=True)
    print("re-ingest ...", flush=True)
    unchanged_s, unchanged = timed(lambda: ingest([store], db))
    changed = change_runs(store, shape)
    time.sleep(0.01)
    changed_s, changed_report = timed(lambda: ingest([store], db))
    print("MLflow log_batch into its SQLite store ...", flush=True)
    loaded = load_mlflow(db, work / "mlflow.db")

    ingest_rate = points / full["seconds"]
    limit_rate = limit["metric_rows"] / limit["insert_s"]
    mlflow_rate = loaded.full_batch_points / loaded.full_batch_seconds if loaded.full_batch_seconds else 0.0
    mlflow_all_rate = loaded.points / loaded.seconds if loaded.seconds else 0.0
    peak_mb = full["maxrss_kib"] / 1024
    results = {
        "shape": shape.__dict__, "metric_points": points, "full_ingest": full, "raw_limit": limit,
        "reingest_unchanged": {"seconds": unchanged_s, "summary": unchanged.summary()},
        "reingest_1pct": {"seconds": changed_s, "runs_changed": len(changed), "summary": changed_report.summary()},
        "mlflow_log_batch": {"points": loaded.points, "calls": loaded.calls, "seconds": loaded.seconds,
                             "points_per_s": mlflow_all_rate, "full_batch_points": loaded.full_batch_points,
                             "full_batch_points_per_s": mlflow_rate},
        "ratios": {"ingest_vs_limit": ingest_rate / limit_rate,
                   "ingest_vs_mlflow": ingest_rate / mlflow_rate if mlflow_rate else None,
                   "unchanged_vs_full": unchanged_s / full["seconds"], "changed_vs_full": changed_s / full["seconds"],
                   "with_vs_without_summaries": full["seconds"] / bare["seconds"]},
        "without_summaries": bare,
    }
    r = results["ratios"]
    text = table(
        f"Ingest: {points:,} metric points, {shape.runs} runs ({shape.runs}x{shape.steps}x{shape.keys}x{shape.increments})",
        ["measure", "seconds", "points/s", "ratio", "target", "verdict"],
        [
            ["runlog full ingest (best of 2)", full["seconds"], ingest_rate, "", "", ""],
            ["the same without run-level names and summaries (as before schema 2; best of 2)", bare["seconds"],
             points / bare["seconds"], r["with_vs_without_summaries"], "<= 1.10",
             verdict(r["with_vs_without_summaries"] <= 1.10)],
            ["raw limit: executemany of prebuilt rows, same schema", limit["insert_s"], limit_rate,
             r["ingest_vs_limit"], ">= 0.5", verdict(r["ingest_vs_limit"] >= 0.5)],
            [f"MLflow log_batch into SQLite ({loaded.full_batch_points:,} points in 1000-metric calls)",
             loaded.full_batch_seconds, mlflow_rate, r["ingest_vs_mlflow"] or 0.0, ">= 30",
             verdict((r["ingest_vs_mlflow"] or 0) >= 30)],
            [f"MLflow log_batch, all {loaded.points:,} points ({loaded.calls:,} calls)", loaded.seconds,
             mlflow_all_rate, ingest_rate / mlflow_all_rate if mlflow_all_rate else 0.0, "", ""],
            ["re-ingest, nothing changed", unchanged_s, "", r["unchanged_vs_full"], "<= 0.02",
             verdict(r["unchanged_vs_full"] <= 0.02)],
            [f"re-ingest, 1% of runs changed ({len(changed)} runs)", changed_s, "", r["changed_vs_full"], "<= 0.05",
             verdict(r["changed_vs_full"] <= 0.05)],
            ["peak RSS of the full ingest (MB)", "", "", peak_mb, "<= 300", verdict(peak_mb <= 300)],
        ],
    )
    text += (
        f"\nPeak RSS {peak_mb:,.0f} MB, of which {full['maxrss_kib_after_imports'] / 1024:,.0f} MB after the imports. "
        f"Split of the raw-limit preparation: read+validate {limit['read_s']:.2f} s, flatten {limit['flatten_s']:.2f} s.\n"
    )
    return results, text, loaded


def main() -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="40x10x10x50", help="RUNSxSTEPSxKEYSxINCREMENTS")
    args = parser.parse_args()
    shape = Shape(*(int(x) for x in args.shape.split("x")))
    with tempfile.TemporaryDirectory(prefix="runlog-bench-") as tmp:
        _, text, _ = run(Path(tmp), shape)
        print(text)


if __name__ == "__main__":
    main()
