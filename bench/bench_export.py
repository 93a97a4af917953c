"""Export to a real local MLflow server: `runlog export mlflow` with 1 and 4 workers, against
a single-threaded loop of 1000-metric ``log_batch`` calls and a loop of ``log_metric`` per point.

Each against the same server (SQLite backend, on loopback), each into its own experiment;
once with a server of 1 worker process and once with MLflow's default of 4. Both the
export and the log_batch loop send the same metrics, params and tags, create the runs and
end them; the export's time also includes reading the index. The per-point loop sends
``per_point`` points (or as many as fit in ``per_point_seconds``).

:func:`run_verify` times ``runlog export mlflow --verify`` of N runs x 10 metrics x 100
steps next to the export of the same runs (``python -m bench --only export --verify-runs
1000`` for the full size; the default, 100 runs, suits a 2-core machine).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench import mlflow_side
from bench.common import age, table, timed, verdict
from bench.generate import Shape, generate
from runlog.index import ingest
from runlog.mlflow.export import export_runs
from runlog.mlflow.plan import connect_index, plan_run
from runlog.mlflow.verify import verify_runs

VERIFY_SHAPE = (2, 5, 100)  # steps x keys x increments: 10 metrics of 100 steps a run


def _batch_loop(client, experiment: str, plans: list) -> int:
    """What the export sends (same metrics, params and tags), in a plain loop: one thread,
    metrics 1000 a call, params and tags 100 a call."""
    from mlflow.entities import Metric, Param, RunTag

    experiment_id = client.create_experiment(experiment)
    sent = 0
    for plan in plans:
        mlflow_run = client.create_run(experiment_id, run_name=plan.run_id)
        run_id = mlflow_run.info.run_id
        metrics = [Metric(m.key, m.value, m.timestamp, m.step) for m in plan.metrics]
        for start in range(0, len(metrics), mlflow_side.BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + mlflow_side.BATCH])
        params = [Param(k, v) for k, v in plan.params.items()]
        for start in range(0, len(params), 100):
            client.log_batch(run_id, params=params[start:start + 100])
        tags = [RunTag(k, v) for k, v in plan.tags.items()]
        for start in range(0, len(tags), 100):
            client.log_batch(run_id, tags=tags[start:start + 100])
        client.set_terminated(run_id, plan.status, end_time=plan.end_time_ms)
        sent += len(metrics)
    return sent


def _per_point_loop(client, experiment: str, points: list, seconds: float) -> int:
    """``log_metric`` once per point, until ``points`` are sent or ``seconds`` have passed."""
    experiment_id = client.create_experiment(experiment)
    mlflow_run = client.create_run(experiment_id, run_name="per-point")
    deadline = time.perf_counter() + seconds
    for done, m in enumerate(points, 1):
        client.log_metric(mlflow_run.info.run_id, m.key, m.value, timestamp=m.timestamp, step=m.step)
        if time.perf_counter() > deadline:
            return done
    return len(points)


def fresh(root: Path) -> Path:
    """An empty folder for a server's store (a --work folder keeps the last run's)."""
    shutil.rmtree(root, ignore_errors=True)
    return root


def run(work: Path, shape: Shape, per_point: int = 2000, server_workers: tuple[int, ...] = (1, 4),
        per_point_seconds: float = 30.0) -> tuple[dict[str, Any], str]:
    """All export measures on a store of ``shape``, against a server with each of
    ``server_workers`` worker processes; ``(results, table text)``."""
    from mlflow import MlflowClient

    store, db = work / "export-store", work / "export.db"
    if not store.exists():
        generate(store, shape)
        age(store, 3600)
    ingest([store], db)
    conn = connect_index(db)
    run_ids = [r for (r,) in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    plans = [plan_run(conn, r) for r in run_ids]
    conn.close()
    points = sum(len(p.metrics) for p in plans)
    params = sum(len(p.params) for p in plans)
    all_points = [m for p in plans for m in p.metrics]
    results: dict[str, Any] = {"shape": shape.__dict__, "points": points, "params": params, "servers": []}
    rows = []
    for server_count in server_workers:
        measures = []
        with mlflow_side.Server(fresh(work / f"mlflow-server-{server_count}"), workers=server_count) as server:
            client = MlflowClient(tracking_uri=server.uri)
            for workers in (1, 4):
                print(f"server --workers {server_count}: export --workers {workers} ...", flush=True)
                # copy: the same runs again, into a second experiment (exactly once would skip them)
                seconds, report = timed(lambda w=workers: export_runs(
                    db, run_ids, tracking_uri=server.uri, workers=w, experiment=f"runlog-export-w{w}", copy=True))
                failed = [o.error for o in report.outcomes if o.outcome == "failed"]
                if failed:
                    raise RuntimeError(f"export failed: {failed[:3]}")
                measures.append((f"runlog export mlflow --workers {workers}", seconds,
                                 sum(o.metric_points for o in report.outcomes)))
            print(f"server --workers {server_count}: log_batch loop ...", flush=True)
            seconds, sent = timed(lambda: _batch_loop(client, "baseline-log-batch", plans))
            measures.append(("loop of 1000-metric log_batch calls, 1 thread", seconds, sent))
            print(f"server --workers {server_count}: log_metric loop ...", flush=True)
            seconds, sent = timed(lambda: _per_point_loop(client, "baseline-log-metric", all_points[:per_point],
                                                          per_point_seconds))
            measures.append(("loop of log_metric per point, 1 thread", seconds, sent))
        rates = [n / s for _, s, n in measures]
        best = max(rates[:2])
        ratios = {"export_vs_batch_loop": best / rates[2], "export_vs_per_point": best / rates[3]}
        results["servers"].append({
            "server_workers": server_count, "ratios": ratios,
            "measures": [{"label": label, "seconds": s, "points": n, "points_per_s": n / s} for label, s, n in measures],
        })
        for i, (label, s, n) in enumerate(measures):
            row = [f"server --workers {server_count}", label, s, n, n / s, "", "", ""]
            if i == 2:
                row[5:] = [ratios["export_vs_batch_loop"], ">= 1.5", verdict(ratios["export_vs_batch_loop"] >= 1.5)]
            if i == 3:
                row[5:] = [ratios["export_vs_per_point"], ">= 50", verdict(ratios["export_vs_per_point"] >= 50)]
            rows.append(row)
    text = table(
        f"Export to a local MLflow server (SQLite backend): {points:,} metric points and {params:,} params "
        f"in {len(run_ids)} runs",
        ["server", "measure", "seconds", "points", "points/s", "best export / this", "target", "verdict"],
        rows,
    )
    return results, text


def run_verify(work: Path, runs: int, workers: int = 4) -> tuple[dict[str, Any], str]:
    """Export ``runs`` runs x 10 metrics x 100 steps to a fresh local server (1 worker
    process), then ``--verify`` them; both timed. ``(results, table text)``."""
    store, db = work / f"verify-store-{runs}", work / f"verify-{runs}.db"
    if not store.exists():
        generate(store, Shape(runs, *VERIFY_SHAPE))
        age(store, 3600)
    ingest([store], db)
    with mlflow_side.Server(fresh(work / f"mlflow-verify-{runs}"), workers=1) as server:
        print(f"verify: export of {runs} runs ...", flush=True)
        export_s, report = timed(lambda: export_runs(db, tracking_uri=server.uri, workers=workers, experiment="verify"))
        if report.failed:
            raise RuntimeError(f"export failed: {report.errors[:3]}")
        print(f"verify: --verify of {runs} runs ...", flush=True)
        verify_s, checked = timed(lambda: verify_runs(db, tracking_uri=server.uri, workers=workers,
                                                      experiment="verify"))
    if not checked.ok:
        raise RuntimeError(f"verify after export: {checked.summary()}")
    points = sum(o.metric_points for o in report.outcomes)
    rows = [[f"runlog export mlflow --workers {workers}", export_s, runs, points, points / export_s],
            [f"runlog export mlflow --verify --workers {workers}", verify_s, runs, points, points / verify_s]]
    results = {"runs": runs, "points": points, "export_seconds": export_s, "verify_seconds": verify_s}
    text = table(f"Export, then --verify: {runs} runs x 10 metrics x 100 steps, local MLflow server (1 worker)",
                 ["measure", "seconds", "runs", "points", "points/s"], rows)
    return results, text
