"""Ingest speed: first ingest, re-ingest of unchanged input, and re-ingest after touching every file.

    .venv/bin/python -m bench.bench_ingest [--runs 200] [--steps 10] [--keys 10] [--increments 20]

Prints the figures and the ratio first/re-ingest (issue 3 expects at least 20x);
asserts nothing about time. The files get mtimes an hour old, as in a store of
finished runs (a file modified within seconds of its last ingest is re-hashed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from bench.generate import Shape, generate
from runlog.index import ingest


def _age(root: Path, seconds: int) -> None:
    moment = time.time_ns() - seconds * 1_000_000_000
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), ns=(moment, moment))


def _digest(db: Path) -> str:
    digest = hashlib.sha256()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _timed(label: str, paths, db: Path):
    start = time.perf_counter()
    report = ingest(paths, db)
    seconds = time.perf_counter() - start
    print(f"{label:<28} {seconds:9.3f} s   {report.summary()}")
    return seconds, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--increments", type=int, default=20)
    args = parser.parse_args()
    shape = Shape(args.runs, args.steps, args.keys, args.increments)
    with tempfile.TemporaryDirectory(prefix="runlog-bench-") as tmp:
        store, db = Path(tmp) / "store", Path(tmp) / "runlog.db"
        points = generate(store, shape)
        _age(store, 3600)
        print(f"{shape.runs} runs, {points:,} metric points (all four formats)")
        first, report = _timed("first ingest", [store], db)
        before = _digest(db)
        again, _ = _timed("re-ingest, unchanged", [store], db)
        unchanged_db = _digest(db) == before
        _age(store, 1800)  # same content, new mtimes: confirmed by hash
        touched, _ = _timed("re-ingest, touched (hashed)", [store], db)
        print(f"metric points/s on first ingest: {report.metric_points / first:,.0f}")
        print(f"first / re-ingest: {first / again:,.1f}x  (expected >= 20x)")
        print(f"first / touched re-ingest: {first / touched:,.1f}x")
        print(f"re-ingest of unchanged input left the database bytes identical: {unchanged_db}")


if __name__ == "__main__":
    main()
