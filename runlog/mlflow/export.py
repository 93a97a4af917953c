"""Export runs from the SQLite index to MLflow: batched, in parallel, idempotent and
resumable. An exported MLflow run carries ``runlog.run_id``; the tags
``runlog.export_digest`` and ``runlog.export_complete`` are set last, so a run whose
digest matches is skipped, and one an earlier export did not finish is completed.

>>> report = export_runs("runlog.db", ["blazing-colden-0544"],
...                      tracking_uri="http://127.0.0.1:5000")    # doctest: +SKIP
>>> report.exported, report.skipped, report.failed                # doctest: +SKIP
(1, 0, 0)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import RunlogError
from .client import (
    TAG_COMPLETE,
    TAG_DIGEST,
    TAG_RUN_ID,
    Experiments,
    ExportError,
    check_server,
    configure_http,
    describe,
    existing_runs,
    is_unreachable,
    pick_existing,
    require_mlflow,
    send,
)
from .naming import MetricPoint
from .plan import RunPlan, connect_index, json_equal, plan_run, select_runs


@dataclasses.dataclass
class RunOutcome:
    """What happened to one run: exported (new), resumed (completed or updated an
    earlier export), skipped (already in MLflow), failed."""

    run_id: str
    outcome: str
    experiment: str = ""
    mlflow_run_id: str = ""
    metric_points: int = 0
    params: int = 0
    error: str = ""

    def row(self) -> dict[str, Any]:
        """The report's row of this run."""
        return {"run_id": self.run_id, "outcome": self.outcome, "experiment": self.experiment,
                "mlflow_run_id": self.mlflow_run_id, "metric_points": self.metric_points, "params": self.params,
                "error": self.error}


@dataclasses.dataclass
class ExportReport:
    outcomes: list[RunOutcome] = dataclasses.field(default_factory=list)
    plans: list[RunPlan] = dataclasses.field(default_factory=list)  # dry run

    def count(self, *kinds: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome in kinds)

    @property
    def exported(self) -> int:
        return self.count("exported", "resumed")

    @property
    def resumed(self) -> int:
        return self.count("resumed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(o.run_id, o.error) for o in self.outcomes if o.outcome == "failed"]

    def summary(self) -> str:
        points = sum(o.metric_points for o in self.outcomes)
        params = sum(o.params for o in self.outcomes)
        resumed = f" ({self.resumed} resumed)" if self.resumed else ""
        return (
            f"{_n(self.exported, 'run')} exported{resumed}, {self.skipped} skipped as already in MLflow, "
            f"{self.failed} failed; {_n(points, 'metric point')} and {_n(params, 'param')} sent"
        )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def export_runs(
    db_path: str | os.PathLike,
    run_ids: Sequence[str] = (),
    *,
    tracking_uri: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    experiment: str | None = None,
    workers: int = 4,
    dry_run: bool = False,
    progress: Callable[[int, int, RunOutcome], None] | None = None,
) -> ExportReport:
    """Export runs of the index to MLflow: the named runs, or all runs matching
    ``tag``/``status`` when none are named. Idempotent and resumable (see module doc).
    ``progress(done, total, outcome)`` is called as each run finishes.

    >>> export_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()  # doctest: +SKIP
    '3 runs exported, 0 skipped as already in MLflow, 0 failed; 120 metric points and 9 params sent'
    """
    conn = connect_index(db_path)
    found, missing = select_runs(conn, run_ids, tag, status)
    report = ExportReport([RunOutcome(r, "failed", error=f"run {r} is not in the index {db_path}") for r in missing])
    if dry_run:
        report.plans = [plan_run(conn, r, experiment) for r in found]
        return report
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise ExportError("no MLflow tracking URI: pass --tracking-uri or set $MLFLOW_TRACKING_URI")
    require_mlflow(tracking_uri)
    configure_http()
    check_server(tracking_uri)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exporter = _Exporter(client, db_path, tracking_uri, experiment)
    total = len(report.outcomes) + len(found)
    for done, outcome in enumerate(report.outcomes, start=1):
        if progress:
            progress(done, total, outcome)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(exporter.export_one, r) for r in found]
        for future in concurrent.futures.as_completed(futures):
            report.outcomes.append(future.result())
            if progress:
                progress(len(report.outcomes), total, report.outcomes[-1])
    finally:  # on Ctrl-C, do not start the queued runs; the next export completes them
        pool.shutdown(wait=False, cancel_futures=True)
    order = {r: i for i, r in enumerate(list(missing) + found)}
    report.outcomes.sort(key=lambda o: order.get(o.run_id, 0))
    return report


class _Exporter:
    """Exports one run at a time, from any thread; stops early once the server is gone."""

    def __init__(self, client, db_path, tracking_uri: str, experiment: str | None):
        self.client = client
        self.db_path = db_path
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.experiments = Experiments(client)
        self._existing: dict[str, dict[str, list[Any]]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.server_gone = ""

    def conn(self) -> sqlite3.Connection:
        if not hasattr(self._local, "conn"):
            self._local.conn = connect_index(self.db_path)
        return self._local.conn

    def existing(self, experiment_id: str, run_id: str) -> Any | None:
        with self._lock:
            if experiment_id not in self._existing:
                self._existing[experiment_id] = existing_runs(self.client, experiment_id)
            return pick_existing(self._existing[experiment_id].get(run_id, []))

    def export_one(self, run_id: str) -> RunOutcome:
        if self.server_gone:
            return RunOutcome(run_id, "failed", error=f"run {run_id}: not attempted: {self.server_gone}")
        try:
            plan = plan_run(self.conn(), run_id, self.experiment)
            return self._send(plan)
        except Exception as exc:  # one run's failure must not stop the others
            message = exc.args[0] if isinstance(exc, RunlogError) else describe(exc, self.tracking_uri)
            if is_unreachable(exc):
                self.server_gone = message
            return RunOutcome(run_id, "failed", error=f"run {run_id}: {message}")

    def _send(self, plan: RunPlan) -> RunOutcome:
        client = self.client
        experiment_id = self.experiments.id_for(plan.experiment)
        run = self.existing(experiment_id, plan.run_id)
        tags_done = run.data.tags if run else {}
        if tags_done.get(TAG_COMPLETE) == "true" and tags_done.get(TAG_DIGEST) == plan.digest:
            return RunOutcome(plan.run_id, "skipped", plan.experiment, run.info.run_id)
        if run is None:
            run = client.create_run(
                experiment_id, start_time=plan.start_time_ms, tags={TAG_RUN_ID: plan.run_id}, run_name=plan.run_id
            )
            outcome, params, metrics = "exported", plan.params, plan.metrics
        else:
            outcome = "resumed"
            params, metrics = self._missing(run, plan)
        mlflow_run_id = run.info.run_id
        send(client, mlflow_run_id, params, plan.tags, metrics)
        client.set_terminated(mlflow_run_id, plan.status, end_time=plan.end_time_ms)
        # Set last: an export killed before this line is completed by the next one.
        send(client, mlflow_run_id, {}, {TAG_DIGEST: plan.digest, TAG_COMPLETE: "true"}, [])
        return RunOutcome(plan.run_id, outcome, plan.experiment, mlflow_run_id, len(metrics), len(params))

    def _missing(self, run, plan: RunPlan) -> tuple[dict[str, str], list[MetricPoint]]:
        """What an earlier, interrupted export (or the live tracker) did not log.
        Metric points are matched by key and step; a param already there must agree."""
        have = run.data.params
        for name, text in plan.params.items():
            if name in have and not json_equal(have[name], text):
                raise RunlogError(
                    f"param {name} is {have[name][:60]!r} in MLflow run {run.info.run_id} but "
                    f"{text[:60]!r} in runlog; MLflow cannot change a param: delete that MLflow run and export again"
                )
        params = {k: v for k, v in plan.params.items() if k not in have}
        wanted = {m.key for m in plan.metrics}
        done = {
            (point.key, point.step)
            for key in run.data.metrics
            if key in wanted
            for point in self.client.get_metric_history(run.info.run_id, key)
        }
        return params, [m for m in plan.metrics if (m.key, m.step) not in done]
