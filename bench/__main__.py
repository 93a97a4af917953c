"""Run every benchmark: `make bench`, or

    .venv/bin/python -m bench [--quick] [--shape 500x10x10x100] [--only ingest,query,export,runs,web,api,lake]
                              [--export-shape 10x10x10x40] [--verify-runs 100] [--work DIR]

The default shape is the "large" set: 500 runs x 10 steps x 10 keys x 100 increments,
about 5 million metric points in all four layouts/generations. ``--quick`` uses a small
shape (40x10x10x25, ~100k points) to check that everything runs. Each benchmark prints
a table and writes JSON, with the machine's description, to bench/results/. Query needs
ingest (it asks the index and MLflow store that ingest built). ``runs`` sorts and filters
100,000 runs by metric and param beside MLflow's search_runs on 10,000 of them (10,000
and 1,000 with ``--quick``). ``web`` times runlog's pages on 300 runs x 2 metrics x 10,000
steps (30 x 2 x 2,000 with ``--quick``). ``api`` loads the histories of 300 runs x 2 metrics
x 2,000 steps into polars and pandas beside the hand-written way and MLflow's own store, and
asks ``runs()`` the question of ``runs`` (30 runs and 10,000 with ``--quick``). ``lake``
builds a Parquet lake from the same shape of seed-format JSON against the SQLite ingest. ``export`` also times
``--verify`` of ``--verify-runs`` runs x 10 metrics x 100 steps (default 100, 20 with
``--quick``; 1000 is the full size) next to their export. Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from bench.common import machine, save  # noqa: E402
from bench.generate import Shape  # noqa: E402

LARGE = "500x10x10x100"
QUICK = "40x10x10x25"
EXPORT = "10x10x10x40"
QUICK_EXPORT = "4x5x5x20"


def _shape(text: str) -> Shape:
    try:
        runs, steps, keys, increments = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: --shape {text!r}: expected RUNSxSTEPSxKEYSxINCREMENTS, e.g. {LARGE}") from None
    if steps < 2 or keys < 2:
        raise SystemExit("error: --shape needs at least 2 steps and 2 keys (the questions ask about step1/key_1)")
    return Shape(runs, steps, keys, increments)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"small shapes ({QUICK}, export {QUICK_EXPORT})")
    parser.add_argument("--shape", help=f"RUNSxSTEPSxKEYSxINCREMENTS of the ingest/query set (default {LARGE})")
    parser.add_argument("--export-shape", help=f"shape of the export set (default {EXPORT})")
    parser.add_argument("--verify-runs", type=int,
                        help="runs (x 10 metrics x 100 steps) of the export/--verify measure (default 100; full: 1000)")
    parser.add_argument("--only", default="ingest,query,export,runs,web,api,lake",
                        help="comma-separated: ingest, query, export, runs, web, api, lake")
    parser.add_argument("--work", type=Path, help="keep the generated data here (reused when run again)")
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if "query" in only and "ingest" not in only:
        raise SystemExit("error: --only query needs ingest too (it queries what ingest built)")
    shape = _shape(args.shape or (QUICK if args.quick else LARGE))
    export_shape = _shape(args.export_shape or (QUICK_EXPORT if args.quick else EXPORT))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    info = machine()
    print(f"machine: {info['cpu_count']} x {info['cpu_model']}, Python {info['python']}, "
          f"SQLite {info['sqlite']}, MLflow {info['mlflow']}", flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="runlog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tables = []
    try:
        if "ingest" in only:
            from bench import bench_ingest

            data = work / f"set-{shape.runs}x{shape.steps}x{shape.keys}x{shape.increments}"
            results, text, loaded = bench_ingest.run(data, shape)
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('ingest', results, stamp)}")
            if "query" in only:
                from bench import bench_query

                results, text = bench_query.run(data / "runlog.db", loaded, data / "mlflow.db")
                print(text, flush=True)
                tables.append(text)
                print(f"wrote {save('query', results, stamp)}")
        if "runs" in only:
            from bench import bench_runs

            folder = work / "runs"
            folder.mkdir(exist_ok=True)
            results, text = bench_runs.run(folder, *((10_000, 1_000) if args.quick else (100_000, 10_000)))
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('runs', results, stamp)}")
        if "web" in only:
            from bench import bench_web

            folder = work / "web"
            folder.mkdir(exist_ok=True)
            results, text = bench_web.run(folder, *((30, 2_000) if args.quick else (300, 10_000)))
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('web', results, stamp)}")
        if "api" in only:
            from bench import bench_api

            folder = work / "api"
            folder.mkdir(exist_ok=True)
            results, text = bench_api.run(folder, *((30, 2_000, 10_000) if args.quick else (300, 2_000, 100_000)))
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('api', results, stamp)}")
        if "lake" in only:
            from bench import bench_lake

            data = work / f"lake-{shape.runs}x{shape.steps}x{shape.keys}x{shape.increments}"
            data.mkdir(parents=True, exist_ok=True)
            results, text = bench_lake.run(data, shape)
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('lake', results, stamp)}")
        if "export" in only:
            from bench import bench_export

            results, text = bench_export.run(work / "export", export_shape, per_point=300 if args.quick else 2000)
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('export', results, stamp)}")
            results, text = bench_export.run_verify(work / "export", args.verify_runs or (20 if args.quick else 100))
            print(text, flush=True)
            tables.append(text)
            print(f"wrote {save('export-verify', results, stamp)}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    save("summary", {"tables": "\n".join(tables)}, stamp)
    print("\n".join(tables))


if __name__ == "__main__":
    main()
