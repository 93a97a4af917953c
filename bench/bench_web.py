"""The web pages at size: 300 runs x 2 metrics x 10,000 steps (6 million points).

    .venv/bin/python -m bench.bench_web [--runs 300] [--steps 10000] [--work DIR]

The runs are seed-format run logs (one ``train`` step with ``loss`` and ``accuracy``
curves, with the odd spike, and ``lr``/``batch`` parameters), ingested by ``runlog
ingest``. Then each page is fetched through Datasette's own ASGI client in this
process (so the figures are the server's work, without a network), several times, and
the median time and the size of the page are printed beside the budgets of issue 17:

- a run page under 300 ms;
- the compare page of all runs on one metric under 1 s and under 1 MB;
- the runs page (100 runs, sorted by a metric) and Datasette's own ``metrics`` table
  page under 500 ms.

Beside them, the baseline measured in the same run: reading every point of the
compare page's 300 curves (what drawing them would cost without the tiles that ingest
keeps), and the compare page's time as a share of it.

Nothing asserts on time: the figures are printed and saved to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import save, table, verdict, work_folder

START = "2026-01-01 09:00:00.000000"


def write_runs(store: Path, runs: int, steps: int, seed: int = 5) -> None:
    """``runs`` seed-format run logs of ``steps`` points per curve."""
    store.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for number in range(runs):
        lr = rng.choice((0.1, 0.03, 0.01, 0.003))
        batch = rng.choice((32, 64, 128))
        speed = 3.0 + 10 * lr
        loss, accuracy = {}, {}
        for step in range(steps):
            value = 0.1 + math.exp(-speed * step / steps) + rng.uniform(0, 0.02)
            if rng.random() < 0.0005:  # a rare spike that the charts must keep
                value *= 5
            loss[str(step)] = round(value, 6)
            accuracy[str(step)] = round(1 - value / 2, 6)
        run = {
            "run_id": f"web-{number:04d}", "tag": "web", "status": "SUCCESS", "steps": {"train": {
                "name": "train", "internal_name": "train", "status": "SUCCESS", "step_type": "task",
                "attempts": [{"attempt_number": 1, "status": "SUCCESS", "start_time": START,
                              "end_time": f"2026-01-01 09:{10 + number % 50:02d}:00.000000",
                              "parameters": {"lr": lr, "batch": batch}}],
                "user_defined_metrics": {"loss": loss, "accuracy": accuracy}}}}
        (store / f"web-{number:04d}.json").write_text(json.dumps(run))


def build(work: Path, runs: int, steps: int) -> Path:
    """The index of the generated store (reused when ``work`` already holds it)."""
    from runlog.index import ingest

    db = work / f"web-{runs}x{steps}.db"
    if db.exists():
        return db
    store = work / f"store-{runs}x{steps}"
    write_runs(store, runs, steps)
    began = time.perf_counter()
    report = ingest([store], db)
    print(f"ingested {report.metric_points:,} points in {time.perf_counter() - began:.1f} s", flush=True)
    return db


async def fetch(ds, path: str, repeat: int) -> tuple[float, int, int]:
    """``(median ms, bytes, status)`` of ``repeat`` GETs after a warm-up."""
    response = await ds.client.get(path)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = await ds.client.get(path)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, len(response.content), response.status_code


def measure(db: Path, runs: int, steps: int, repeat: int) -> list[dict[str, Any]]:
    from runlog.web import make_datasette

    ds = make_datasette(db)
    name = db.stem
    pages = [
        (f"run page (2 curves of {steps:,} points)", "/-/runlog/run/web-0007", 300, None),
        (f"compare page, all {runs} runs on loss", "/-/runlog/compare?where=tag%20%3D%20%27web%27&metric=loss",
         1000, 1_000_000),
        ("runs page, 100 runs sorted by min:loss", "/-/runlog/runs?sort=min%3Aloss", 500, None),
        ("Datasette's metrics table page", f"/{name}/metrics", 500, None),
    ]

    async def run_all():
        return [(label, budget, size_budget, *(await fetch(ds, path, repeat)))
                for label, path, budget, size_budget in pages]

    return [{"page": label, "ms": ms, "bytes": size, "status": status, "budget_ms": budget, "budget_bytes": limit}
            for label, budget, limit, ms, size, status in asyncio.run(run_all())]


def every_point_ms(db: Path, repeat: int) -> float:
    """Median ms to read every point of every run's ``loss`` (the baseline)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        times = []
        for _ in range(repeat + 1):
            began = time.perf_counter()
            for (run_id,) in conn.execute("SELECT run_id FROM runs WHERE tag = 'web'").fetchall():
                conn.execute("SELECT step, value FROM metrics WHERE run_id = ? AND step_name = 'train' AND key = 'loss' "
                             "ORDER BY step", (run_id,)).fetchall()
            times.append(time.perf_counter() - began)
        return statistics.median(times[1:]) * 1000
    finally:
        conn.close()


def run(work: Path, runs: int = 300, steps: int = 10_000, repeat: int = 5) -> tuple[dict[str, Any], str]:
    db = build(work, runs, steps)
    found = measure(db, runs, steps, repeat)
    baseline = every_point_ms(db, repeat)
    rows = []
    for page in found:
        ok = page["status"] == 200 and page["ms"] < page["budget_ms"] and (
            page["budget_bytes"] is None or page["bytes"] < page["budget_bytes"])
        budget = f"< {page['budget_ms']:,} ms" + (f", < {page['budget_bytes'] / 1e6:.0f} MB"
                                                   if page["budget_bytes"] else "")
        rows.append([page["page"], page["ms"], page["bytes"] / 1000, budget, verdict(ok)])
    compare = found[1]["ms"]
    rows.append([f"baseline: read every point of the {runs} loss curves", baseline, "",
                 f"compare page = {compare / baseline:.2f} x this", ""])
    text = table(f"Web pages: {runs} runs x 2 metrics x {steps:,} steps ({runs * 2 * steps:,} points), "
                 f"median of {repeat}", ["page", "ms", "kB", "budget", "verdict"], rows)
    return {"runs": runs, "steps": steps, "pages": found, "every_point_ms": baseline}, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, help="keep the generated store and index here (reused)")
    args = parser.parse_args()
    work = work_folder(args.work, "web")
    results, text = run(work, args.runs, args.steps, args.repeat)
    print(text)
    print(f"wrote {save('web', results)}")


if __name__ == "__main__":
    main()
