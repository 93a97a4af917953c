"""Runs sorted and filtered by any metric or param, at a scale MLflow's search struggles with.

    .venv/bin/python -m bench.bench_runs [--runs 100000] [--mlflow-runs 10000]

An index of RUNS runs x 20 metrics x 10 params: each run has one step whose 20 metrics
are curves of 5 points and whose attempt has 10 parameters; its run-level names and
summaries (run_metrics, run_params) are computed by runlog's own code
(runlog.index.summaries), and its runs and steps rows are written as ingest writes
them. (The raw metric points are not written: the query reads only the summaries.)

The question, as the docs ask it (docs/querying.md):

    runlog runs --param lr --metric min:loss --metric argmin:loss \\
        --where "param:lr in (0.1, 0.01) and min:loss < 0.5" --sort min:loss --limit 5

is timed on the whole index and on an index of the first MLFLOW_RUNS runs; the same
MLFLOW_RUNS runs go into MLflow's own SQLite store (one log_batch a run: the 20 metrics'
minima as metrics ``<name>_min``, since MLflow searches only last values, and the 10
params), and ``MlflowClient.search_runs`` answers the nearest question MLflow can ask
(AND only, no IN: ``params.lr = '0.1' and metrics.loss_min < 0.5``, ordered by
``metrics.loss_min``). Each figure is the median of REPEAT calls after a warm-up call.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median_ms, save, table, verdict
from runlog.index import open_db
from runlog.index.runs import list_runs
from runlog.index.schema import INSERT
from runlog.index.summaries import group_series, run_metric_rows, run_param_rows

METRICS = ["loss"] + [f"metric_{i:02d}" for i in range(1, 20)]
PARAMS = ["lr", "batch", "optimizer", "dropout"] + [f"param_{i}" for i in range(4, 10)]
POINTS = 5
QUESTION = dict(columns=["param:lr", "min:loss", "argmin:loss"], where="param:lr in (0.1, 0.01) and min:loss < 0.5",
                sort=["min:loss"], limit=5)


def run_rows(number: int, rng: random.Random) -> dict[str, list[tuple]]:
    """The index rows of one generated run, flattened as ingest flattens them."""
    run_id = f"run-{number:06d}"
    params = {"lr": rng.choice((0.1, 0.01, 0.001, 0.0001)), "batch": rng.choice((16, 32, 64, 128)),
              "optimizer": rng.choice(("sgd", "adam")), "dropout": round(rng.random() / 2, 3),
              **{name: rng.randint(0, 1000) for name in PARAMS[4:]}}
    metric_rows = []
    for name in METRICS:
        base = rng.random()
        for step in range(POINTS):
            value = round(base * (1.0 - 0.15 * step) + rng.uniform(0, 0.05), 6)
            metric_rows.append((run_id, "train", name, step, value, None, "numeric", 1_700_000_000_000 + step))
    param_rows = [(run_id, "train", 1, "input", key, "raw", float(v) if not isinstance(v, str) else None,
                   f'"{v}"' if isinstance(v, str) else str(v)) for key, v in params.items()]
    start = f"2026-01-01 00:{number // 3600 % 60:02d}:{number % 60:02d}.000000"
    return {
        "runs": [(run_id, "bench", "SUCCESS", "", 0, "", start, start, 1.0, "g2", "file-system", "", "", "{}", "{}")],
        "steps": [(run_id, "train", "train", "", "task", "SUCCESS", "", 0, 0)],
        "run_metrics": run_metric_rows(run_id, group_series(metric_rows), {"train": 0}),
        "run_params": run_param_rows(run_id, param_rows, {"train": 0}),
    }


def build_index(path: Path, runs: int, seed: int = 1) -> float:
    """Write the index of ``runs`` generated runs; the seconds it took."""
    began = time.perf_counter()
    conn = open_db(path).conn
    rng = random.Random(seed)
    conn.execute("BEGIN")
    for number in range(runs):
        for table_name, rows in run_rows(number, rng).items():
            conn.executemany(INSERT[table_name], rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - began


def load_mlflow(path: Path, runs: int, seed: int = 1):
    """The first ``runs`` generated runs in MLflow's SQLite store; ``(client, experiment id, seconds)``."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("runlog-bench-runs")
    rng = random.Random(seed)
    began = time.perf_counter()
    for number in range(runs):
        rows = run_rows(number, rng)
        mlflow_run = client.create_run(experiment, run_name=rows["runs"][0][0])
        metrics = [Metric(f"{row[1]}_min", row[12], 0, 0) for row in rows["run_metrics"]]
        params = [Param(row[1], str(row[8])) for row in rows["run_params"]]
        client.log_batch(mlflow_run.info.run_id, metrics=metrics, params=params, synchronous=True)
    return client, experiment, time.perf_counter() - began


def run(work: Path, runs: int, mlflow_runs: int, repeat: int = 10) -> tuple[dict[str, Any], str]:
    print(f"building an index of {runs:,} runs ...", flush=True)
    build_s = build_index(work / "runs.db", runs)
    build_index(work / "subset.db", mlflow_runs)
    print(f"loading {mlflow_runs:,} runs into MLflow's SQLite store ...", flush=True)
    client, experiment, load_s = load_mlflow(work / "mlflow.db", mlflow_runs)
    results: dict[str, Any] = {"runs": runs, "mlflow_runs": mlflow_runs, "build_index_s": build_s,
                               "mlflow_load_s": load_s, "question": QUESTION}
    for name, path in (("runlog", work / "runs.db"), ("runlog_subset", work / "subset.db")):
        db = open_db(path, readonly=True)
        first, median, (_, rows) = median_ms(lambda: list_runs(db, **QUESTION), repeat)
        results[name] = {"first_ms": first, "median_ms": median, "rows": [r["run_id"] for r in rows]}
        db.close()
    first, median, found = median_ms(lambda: client.search_runs(
        [experiment], filter_string="params.lr = '0.1' and metrics.loss_min < 0.5",
        order_by=["metrics.loss_min ASC"], max_results=5), repeat)
    results["mlflow"] = {"first_ms": first, "median_ms": median, "rows": [r.info.run_name for r in found]}
    ratio = results["mlflow"]["median_ms"] / results["runlog_subset"]["median_ms"]
    results["ratio_mlflow_vs_runlog"] = ratio
    text = table(
        f"Runs by metric and param: {runs:,} runs x {len(METRICS)} metrics x {len(PARAMS)} params; "
        f"MLflow holds {mlflow_runs:,} of them (median of {repeat})",
        ["question", "rows", "ms", "ratio to runlog on the same runs", "target", "verdict"],
        [
            [f"runlog runs ... --where ... --sort min:loss --limit 5, {runs:,} runs", len(results["runlog"]["rows"]),
             results["runlog"]["median_ms"], "", "well under 1,000 ms",
             verdict(results["runlog"]["median_ms"] < 500)],
            [f"the same on {mlflow_runs:,} runs", len(results["runlog_subset"]["rows"]),
             results["runlog_subset"]["median_ms"], 1.0, "", ""],
            [f"MLflow search_runs (lr = 0.1 only, AND), {mlflow_runs:,} runs", len(results["mlflow"]["rows"]),
             results["mlflow"]["median_ms"], ratio, ">= 20", verdict(ratio >= 20)],
        ],
    )
    text += (f"\nBuilding the index took {build_s:.1f} s; loading MLflow {load_s:.1f} s "
             f"({mlflow_runs / load_s:,.0f} runs/s).\n")
    return results, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--mlflow-runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runlog-bench-runs-") as tmp:
        results, text = run(Path(tmp), args.runs, args.mlflow_runs, args.repeat)
    print(text)
    print(f"wrote {save('runs', results)}")


if __name__ == "__main__":
    main()
