"""runlog from Python (``runlog.open``) beside the hand-written way and beside MLflow.

    .venv/bin/python -m bench.bench_api [--runs 300] [--steps 2000] [--big-runs 100000] [--work DIR]

Metric histories: the runs of the web benchmark (RUNS runs x 2 metrics x STEPS steps,
seed-format logs, ingested), every point of ``loss`` and ``accuracy`` into polars and
into pandas, beside the hand-written way measured in the same run: one ``sqlite3``
query of the same points, ``fetchall``, ``polars.DataFrame`` (or ``pandas.DataFrame``,
or ``pandas.read_sql_query``). Then ``max_points=200`` (the charts' buckets).

Runs: the issue-16 question (``--where "param:lr in (0.1, 0.01) and min:loss < 0.5"
--sort min:loss --limit 5``) on the BIG_RUNS-run index of the runs benchmark, to pandas,
beside ``list_runs`` (what ``runlog runs`` prints); and every run with three columns.

MLflow: the same RUNS runs and points loaded into MLflow's own SQLite store
(``log_batch``); ``mlflow.search_runs(output_format="pandas")`` beside ``runs()``, and a
``get_metric_history`` loop (one call per run and metric) into one pandas frame beside
``history().to_pandas()``.

Each figure is the median of REPEAT calls after one warm-up call (MLflow's loop: of
fewer). Nothing asserts on time: the figures are printed and saved to bench/results/.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import bench_runs, bench_web, mlflow_side
from bench.common import median_ms, save, table, verdict, work_folder

METRICS = ["loss", "accuracy"]
# the fastest hand-written way: no order, no run-level names, times left as epoch ms
HAND_SQL = "SELECT run_id, key, step, value, timestamp_ms FROM metrics WHERE key IN ('loss', 'accuracy')"
HAND_COLUMNS = ["run_id", "metric", "step", "value", "timestamp_ms"]


def history_measures(db: Path, repeat: int) -> list[dict[str, Any]]:
    """Ours and the hand-written way, into polars and pandas; each row: what, ms, rows."""
    import pandas as pd
    import polars as pl

    import runlog

    index = runlog.open(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    measures = [
        ("polars", "runlog: index.history(['loss', 'accuracy']).to_polars()",
         lambda: index.history(METRICS).to_polars()),
        ("polars", "by hand: sqlite3 fetchall, then polars.DataFrame(rows, orient='row')",
         lambda: pl.DataFrame(conn.execute(HAND_SQL).fetchall(), schema=HAND_COLUMNS, orient="row")),
        ("pandas", "runlog: index.history(['loss', 'accuracy']).to_pandas()",
         lambda: index.history(METRICS).to_pandas()),
        ("pandas", "by hand: sqlite3 fetchall, then pandas.DataFrame(rows)",
         lambda: pd.DataFrame(conn.execute(HAND_SQL).fetchall(), columns=HAND_COLUMNS)),
        ("pandas", "by hand: pandas.read_sql_query(sql, conn)", lambda: pd.read_sql_query(HAND_SQL, conn)),
        ("arrow", "runlog: index.history(['loss', 'accuracy']).to_arrow()", lambda: index.history(METRICS).to_arrow()),
        ("polars", "runlog: index.history(..., max_points=200).to_polars() (the charts' buckets)",
         lambda: index.history(METRICS, max_points=200).to_polars()),
    ]
    lake = _lake_of(db)
    if lake is not None:
        measures.append(("polars", "runlog over a lake of the same runs (DuckDB): history(...).to_polars()",
                         lambda: lake.history(METRICS).to_polars()))
    found = []
    for library, label, work in measures:
        first, median, frame = median_ms(work, repeat)
        found.append({"library": library, "what": label, "first_ms": first, "ms": median, "rows": len(frame)})
        print(f"  {label}: {median:,.0f} ms", flush=True)
    conn.close()
    index.close()
    return found


def _lake_of(db: Path):
    """The lake of the index's store (built once, beside it), opened; None without the lake extra."""
    import runlog

    try:
        from runlog.lake import build_lake

        dest = db.with_suffix(".lake")
        if not dest.exists():
            build_lake([db], dest, workers=2)
        return runlog.open(dest)
    except ImportError:
        return None


def runs_measures(work: Path, big_runs: int, repeat: int) -> list[dict[str, Any]]:
    """The issue-16 question, and every run, on the index of ``big_runs`` generated runs."""
    import runlog
    from runlog.index import open_db
    from runlog.index.runs import list_runs

    db = work / f"runs-{big_runs}.db"
    if not db.exists():
        print(f"building an index of {big_runs:,} runs ...", flush=True)
        bench_runs.build_index(db, big_runs)
    question = bench_runs.QUESTION
    asked = dict(metrics=["min:loss", "argmin:loss"], params=["lr"], where=question["where"], sort=question["sort"],
                 limit=question["limit"])
    index, reader = runlog.open(db), open_db(db, readonly=True)
    measures = [
        ("runlog: index.runs(<the issue-16 question>).to_pandas()", lambda: index.runs(**asked).to_pandas()),
        ("list_runs(<the same>): the rows runlog runs prints", lambda: list_runs(reader, **question)[1]),
        (f"runlog: index.runs(metrics=['min:loss'], params=['lr']).to_pandas(), all {big_runs:,} runs",
         lambda: index.runs(metrics=["min:loss"], params=["lr"]).to_pandas()),
    ]
    found = []
    for label, call in measures:
        first, median, rows = median_ms(call, repeat)
        found.append({"what": label, "first_ms": first, "ms": median, "rows": len(rows)})
        print(f"  {label}: {median:,.0f} ms", flush=True)
    index.close()
    reader.close()
    return found


def mlflow_measures(db: Path, work: Path, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The same runs in MLflow's SQLite store: search_runs and a get_metric_history loop, beside ours."""
    import mlflow
    import pandas as pd

    import runlog

    path = work / f"mlflow-{db.stem}.db"
    fresh = not path.exists()
    client = mlflow_side.sqlite_client(path)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    run_ids = [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    if fresh:
        print(f"loading {len(run_ids)} runs into MLflow's SQLite store ...", flush=True)
        loaded = mlflow_side.load(client, "runlog-bench-api", {r: mlflow_side.series(conn, r) for r in run_ids})
        load = {"points": loaded.points, "seconds": loaded.seconds}
    else:
        load = {"points": None, "seconds": None}
    conn.close()
    experiment = client.get_experiment_by_name("runlog-bench-api").experiment_id
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment], max_results=50_000)}
    index = runlog.open(db)

    def history_loop():
        rows = [(name, key, m.step, m.value, m.timestamp) for name, run_id in runs.items()
                for key in ("train/loss", "train/accuracy") for m in client.get_metric_history(run_id, key)]
        return pd.DataFrame(rows, columns=HAND_COLUMNS)

    measures = [
        ("MLflow: mlflow.search_runs(output_format='pandas')", repeat,
         lambda: mlflow.search_runs([experiment], output_format="pandas", max_results=50_000)),
        ("runlog: index.runs(metrics=['loss', 'accuracy']).to_pandas()", repeat,
         lambda: index.runs(metrics=METRICS).to_pandas()),
        (f"MLflow: get_metric_history x {2 * len(runs)} (a run and a metric a call), into pandas", max(1, repeat // 3),
         history_loop),
        ("runlog: index.history(['loss', 'accuracy']).to_pandas()", repeat, lambda: index.history(METRICS).to_pandas()),
    ]
    found = []
    for label, times, call in measures:
        first, median, frame = median_ms(call, times)
        found.append({"what": label, "first_ms": first, "ms": median, "rows": len(frame)})
        print(f"  {label}: {median:,.0f} ms", flush=True)
    index.close()
    return found, load


def run(work: Path, runs: int = 300, steps: int = 2000, big_runs: int = 100_000,
        repeat: int = 5) -> tuple[dict[str, Any], str]:
    db = bench_web.build(work, runs, steps)
    print(f"histories of {runs} runs x 2 metrics x {steps:,} steps ...", flush=True)
    history = history_measures(db, repeat)
    print(f"runs() on {big_runs:,} runs ...", flush=True)
    runs_found = runs_measures(work, big_runs, repeat)
    print("MLflow ...", flush=True)
    mlflow_found, load = mlflow_measures(db, work, repeat)
    results = {"runs": runs, "steps": steps, "points": runs * 2 * steps, "big_runs": big_runs, "repeat": repeat,
               "history": history, "runs_question": runs_found, "mlflow": mlflow_found, "mlflow_load": load}
    return results, tables(results)


def tables(results: dict[str, Any]) -> str:
    runs, steps, points = results["runs"], results["steps"], results["points"]
    hand = {m["library"]: m["ms"] for m in results["history"] if m["what"].startswith("by hand: sqlite3")}
    rows = []
    for m in results["history"]:
        plain = f"runlog: index.history(['loss', 'accuracy']).to_{m['library']}()"
        compared = m["library"] in hand and m["what"] == plain
        ratio = hand[m["library"]] / m["ms"] if compared else ""
        ok = verdict(ratio >= 1) if compared else ""
        rows.append([m["what"], m["rows"], m["ms"], ratio, ">= 1" if ok else "", ok])
    text = table(f"History into a frame: {runs} runs x 2 metrics x {steps:,} steps ({points:,} points), median of "
                 f"{results['repeat']}", ["what", "rows", "ms", "by hand / runlog", "target", "verdict"], rows)
    question = results["runs_question"][0]
    rows = [[m["what"], m["rows"], m["ms"], "well under 1,000 ms" if m is question else "",
             verdict(m["ms"] < 500) if m is question else ""] for m in results["runs_question"]]
    text += "\n" + table(f"runs() on {results['big_runs']:,} runs x 20 metrics x 10 params (median of "
                         f"{results['repeat']})", ["what", "rows", "ms", "target", "verdict"], rows)
    rows = []
    for i, m in enumerate(results["mlflow"]):
        ratio = results["mlflow"][i - 1]["ms"] / m["ms"] if i % 2 else ""
        rows.append([m["what"], m["rows"], m["ms"], ratio])
    text += "\n" + table(f"MLflow's own SQLite store, the same {runs} runs and {points:,} points, in process",
                         ["what", "rows", "ms", "MLflow / runlog"], rows)
    load = results["mlflow_load"]
    if load["seconds"]:
        text += (f"\nLoading MLflow's store took {load['seconds']:.1f} s of log_batch "
                 f"({load['points'] / load['seconds']:,.0f} points/s).\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--big-runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, help="keep the generated stores, indexes and MLflow store here (reused)")
    args = parser.parse_args()
    work = work_folder(args.work, "api")
    began = time.perf_counter()
    results, text = run(work, args.runs, args.steps, args.big_runs, args.repeat)
    print(text)
    print(f"wrote {save('api', results)} ({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
