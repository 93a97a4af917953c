"""Lake build: seed-format (g2) JSON on local disk to a Parquet lake, against the SQLite
ingest of the same store in the same run.

    .venv/bin/python -m bench --only lake [--quick | --shape 500x10x10x100]

1. SQLite ingest (``runlog ingest``, in a subprocess, best of 2): the baseline.
2. ``runlog lake build --workers 2`` and ``--workers 1`` into a new lake (a subprocess
   timing ``build_lake`` itself, best of 2): metric points/s and the ratio to the ingest.
3. The same build again on unchanged input: its time, and what it wrote (nothing).

The store is ``bench/generate.py``'s seed file-system format (g2), files an hour old.
Nothing here asserts on time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bench_ingest import full_ingest
from bench.common import age, table, verdict
from bench.generate import Shape, generate

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
from runlog.lake import build_lake
start = time.perf_counter()
report = build_lake([sys.argv[1]], sys.argv[2], workers=int(sys.argv[3]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "written": report.written, "unchanged": report.unchanged,
                  "points": report.metric_points, "buckets_written": report.buckets_written,
                  "failed": report.failed}))
"""


def build(store: Path, lake: Path, workers: int, fresh: bool = True) -> dict[str, Any]:
    if fresh:
        shutil.rmtree(lake, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", CHILD, str(store), str(lake), str(workers)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(work: Path, shape: Shape) -> tuple[dict[str, Any], str]:
    store = work / "g2-store"
    if not (work / "g2-store.done").exists():
        print(f"generating {shape.points:,} metric points ({shape.runs} seed-format runs) in {store} ...", flush=True)
        generate(store, shape, formats=("seed-file-system",))
        age(store, 3600)
        (work / "g2-store.done").write_text(json.dumps(shape.__dict__))
    print("SQLite ingest (subprocess), best of 2 ...", flush=True)
    sqlite = min((full_ingest(store, work / "lake-bench.db") for _ in range(2)), key=lambda r: r["seconds"])
    points = sqlite["metric_points"]
    print("lake build --workers 2 and --workers 1, best of 2 each ...", flush=True)
    two = min((build(store, work / "lake", 2) for _ in range(2)), key=lambda r: r["seconds"])
    one = min((build(store, work / "lake1", 1) for _ in range(2)), key=lambda r: r["seconds"])
    again = build(store, work / "lake", 2, fresh=False)
    assert two["points"] == one["points"] == points, (two, one, points)
    rates = {"sqlite": points / sqlite["seconds"], "two": points / two["seconds"], "one": points / one["seconds"]}
    results = {"shape": shape.__dict__, "metric_points": points, "sqlite_ingest": sqlite, "lake_workers_2": two,
               "lake_workers_1": one, "lake_rebuild_unchanged": again,
               "points_per_s": rates, "ratio_workers_2_vs_ingest": rates["two"] / rates["sqlite"]}
    text = table(
        f"Lake build: {points:,} metric points, {shape.runs} seed-format (g2) runs on local disk "
        f"({shape.runs}x{shape.steps}x{shape.keys}x{shape.increments})",
        ["measure", "seconds", "points/s", "x SQLite ingest", "target", "verdict"],
        [
            ["SQLite ingest (runlog ingest; best of 2)", sqlite["seconds"], rates["sqlite"], 1.0, "", ""],
            ["lake build --workers 2 (best of 2)", two["seconds"], rates["two"], rates["two"] / rates["sqlite"],
             ">= 500,000 points/s", verdict(rates["two"] >= 500_000)],
            ["lake build --workers 1 (best of 2)", one["seconds"], rates["one"], rates["one"] / rates["sqlite"], "", ""],
            [f"lake build again, nothing changed ({again['written']} runs and {again['buckets_written']} buckets "
             "written)", again["seconds"], "", again["seconds"] / two["seconds"], "writes nothing",
             verdict(again["written"] == 0 and again["buckets_written"] == 0)],
        ],
    )
    return results, text


def main() -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="100x10x10x100", help="RUNSxSTEPSxKEYSxINCREMENTS")
    args = parser.parse_args()
    shape = Shape(*(int(x) for x in args.shape.split("x")))
    with tempfile.TemporaryDirectory(prefix="runlog-bench-") as tmp:
        print(run(Path(tmp), shape)[1])


if __name__ == "__main__":
    main()
