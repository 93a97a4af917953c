"""Queries at the large set, each beside MLflow answering the same question.

runlog asks its index of every point; MLflow holds (loaded by the ingest benchmark)
the one metric of every run that the history and leaderboard questions ask about,
and every numeric metric of the two runs compared. Each figure is the median of
``repeat`` calls after one warm-up call (reported as "first call" in the JSON). MLflow
answers twice: from its SQLite store in this process (its fastest path) and through a
local tracking server (1 worker) on the same store, as a team usually reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import mlflow_side
from bench.bench_ingest import HISTORY_STEP, KEY
from bench.common import median_ms, table, verdict
from runlog.index import queries, reports
from runlog.index.runs import compare_runs
from runlog.index import open_db


def run(db_path: Path, loaded: mlflow_side.Loaded, mlflow_db: Path, repeat: int = 20) -> tuple[dict[str, Any], str]:
    """All query measures; ``(results, table text)``."""
    db = open_db(db_path, readonly=True)
    points, runs = db.conn.execute("SELECT (SELECT count(*) FROM metrics), (SELECT count(*) FROM runs)").fetchone()
    compared = sorted(loaded.run_ids)[1:3]
    first = compared[0]
    client, name = loaded.client, mlflow_side.metric_name(HISTORY_STEP, KEY)
    ids = [loaded.run_ids[r] for r in compared]

    def questions(client) -> list:
        return [
            (f"history of one key in one run ({HISTORY_STEP}/{KEY} of {first})", 5.0,
             lambda: reports.metric_history(db, first, KEY, HISTORY_STEP)[1],
             "get_metric_history", lambda: client.get_metric_history(ids[0], name)),
            (f"leaderboard: last {name} of all {runs} runs", 50.0,
             lambda: queries.run_named(db, "leaderboard", {"key": name})[1],
             "search_runs ordered by the metric",
             lambda: client.search_runs([loaded.experiment_id], order_by=[f"metrics.`{name}` DESC"], max_results=1000)),
            (f"compare two runs ({', '.join(compared)})", None,
             lambda: compare_runs(db, compared)[1],
             "get_run x 2", lambda: [client.get_run(i) for i in ids]),
        ]

    results: dict[str, Any] = {"index_points": points, "index_runs": runs, "mlflow_points": loaded.points,
                               "mlflow_runs": len(loaded.run_ids), "repeat": repeat, "questions": []}
    rows = []
    with mlflow_side.Server(mlflow_db.parent / "query-server", workers=1, backend=mlflow_db) as server:
        from mlflow import MlflowClient

        for where, mlflow_client in (("SQLite store, in process", client), ("local server", MlflowClient(server.uri))):
            for label, limit_ms, ours, theirs_label, theirs in questions(mlflow_client):
                ours_first, ours_ms, ours_rows = median_ms(ours, repeat)
                theirs_first, theirs_ms, theirs_rows = median_ms(theirs, repeat)
                speedup = theirs_ms / ours_ms if ours_ms else 0.0
                results["questions"].append({
                    "question": label, "runlog_first_ms": ours_first, "runlog_ms": ours_ms,
                    "runlog_rows": len(ours_rows), "mlflow": f"{theirs_label} ({where})", "mlflow_first_ms": theirs_first,
                    "mlflow_ms": theirs_ms, "mlflow_rows": len(theirs_rows), "speedup": speedup,
                })
                target = f"< {limit_ms:g} ms, >= 10x" if limit_ms else ">= 10x"
                ok = speedup >= 10 and (limit_ms is None or ours_ms < limit_ms)
                rows.append([label, ours_ms, len(ours_rows), f"{theirs_label} ({where})", theirs_ms, len(theirs_rows),
                             speedup, target, verdict(ok)])
    db.close()
    text = table(
        f"Queries: runlog index of {points:,} points; MLflow store of {loaded.points:,} points "
        f"({len(loaded.run_ids)} runs), median of {repeat}",
        ["question", "runlog ms", "rows", "MLflow call", "MLflow ms", "rows", "speed-up", "target", "verdict"],
        rows,
    )
    return results, text
