"""The live MLflow tracker: ``track_this`` also logs to MLflow as it happens.

Selected with ``RUNLOG_EXPERIMENT_TRACKER=mlflow``; the server is ``$MLFLOW_TRACKING_URI``.
One MLflow run per runlog run (run name = run_id, experiment = tag), named by the
same rules as ``runlog export mlflow`` (:class:`runlog.mlflow.naming.Mapper`), so an
export after a live run only fills in what is missing.

>>> import os; os.environ["RUNLOG_EXPERIMENT_TRACKER"] = "mlflow"   # doctest: +SKIP
>>> from runlog import Run, track_this
>>> from runlog.tracking import get_experiment_tracker_context
>>> with Run.start(tag="demo") as run:                             # doctest: +SKIP
...     with run.step("train"):
...         track_this(step=0, loss=0.5)
...         with get_experiment_tracker_context() as active:   # the MLflow run
...             import mlflow; mlflow.log_metric("lr", 0.01)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any, ContextManager

from ..record import tracking
from .client import TAG_RUN_ID, Experiments, configure_http, describe, find_run, require_mlflow, send
from .naming import Mapper, MetricPoint, experiment_name, mlflow_status
from ..index.points import value_points


def _current_step_name() -> str:
    """The internal name of the step being recorded in this thread, if any."""
    step = tracking.current_step()
    return str(getattr(step, "internal_name", "") or "")


class MlflowTracker(tracking.ExperimentTracker):
    """Logs each tracked value to one MLflow run per runlog run.

    A failing MLflow call never fails the pipeline: it warns once per run, the values
    stay in the run log, and ``runlog export mlflow`` later completes the MLflow run.
    """

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None):
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        require_mlflow(self.tracking_uri)
        configure_http()
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.mlflow_run_id: str | None = None
        self.run_id: str | None = None
        self.mapper = Mapper()
        self._notes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._warned = False

    def start_run(self, run_id: str, tag: str, start_time_ms: int | None = None) -> None:
        """Find the MLflow run of ``run_id`` (a process attaching to a run started
        elsewhere) or create it."""
        self.run_id, self.mapper, self._notes, self._warned = run_id, Mapper(), {}, False
        self.mlflow_run_id = None
        try:
            experiment_id = Experiments(self.client).id_for(experiment_name(tag))
            run = find_run(self.client, experiment_id, run_id)
            if run is None:
                run = self.client.create_run(
                    experiment_id,
                    start_time=start_time_ms,
                    tags={TAG_RUN_ID: run_id, "runlog.tag": tag or "", "runlog.status": "PROCESSING"},
                    run_name=run_id,
                )
            elif run.info.status != "RUNNING":  # a retry of a finished run, or another process's
                self.client.update_run(run.info.run_id, status="RUNNING")
            self.mlflow_run_id = run.info.run_id
        except Exception as exc:
            self._warn(exc)

    def log(self, key: str, value: Any, step: int, timestamp_ms: int | None = None, step_name: str | None = None) -> None:
        """Numbers -> metric ``key`` at ``step``; other values -> param ``<key>_<step>``."""
        if self.mlflow_run_id is None:
            return
        step_name = _current_step_name() if step_name is None else step_name
        timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        with self._lock:
            metrics: list[MetricPoint] = []
            params: dict[str, str] = {}
            # Classified exactly as the index classifies the same value.
            for flat_key, _, number, text, kind in value_points(key, step, tracking.normalise_value(value)):
                if kind == "numeric":
                    number = float("nan") if number is None else number
                    metrics.append(MetricPoint(self.mapper.metric_name(step_name, flat_key), number, timestamp, step))
                else:
                    name, text = self.mapper.param(step_name, flat_key, step, text or "")
                    params[name] = text
            notes = {k: v for k, v in self.mapper.note_tags().items() if self._notes.get(k) != v}
            self._notes.update(notes)
        self._send(params, notes, metrics)

    def end_run(self, status: str, end_time_ms: int | None = None) -> None:
        if self.mlflow_run_id is None:
            return
        try:
            send(self.client, self.mlflow_run_id, {}, {"runlog.status": status}, [])
            self.client.set_terminated(self.mlflow_run_id, mlflow_status(status), end_time=end_time_ms)
        except Exception as exc:
            self._warn(exc)

    def client_context(self) -> ContextManager[Any]:
        """The active MLflow run (``mlflow.ActiveRun``) while the block runs, so
        ``mlflow.log_*`` calls go to this run; the run stays open afterwards."""
        return self._active()

    @contextlib.contextmanager
    def _active(self) -> Iterator[Any]:
        import mlflow

        if self.mlflow_run_id is None:
            yield None
            return
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.mlflow_run_id:
            yield active
            return
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        run = mlflow.start_run(run_id=self.mlflow_run_id)
        try:
            yield run
        finally:
            # Leave the fluent API's stack without finishing the run: runlog ends it.
            mlflow.end_run(status="RUNNING")

    def _send(self, params: dict[str, str], tags: dict[str, str], metrics: list[MetricPoint]) -> None:
        try:
            send(self.client, self.mlflow_run_id, params, tags, metrics)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"MLflow tracker, run {self.run_id}: {describe(exc, self.tracking_uri)}; the values stay in the "
                "run log and `runlog export mlflow` completes the MLflow run",
                stacklevel=3,
            )

