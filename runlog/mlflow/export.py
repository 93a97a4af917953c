"""Export runs from the SQLite index to MLflow: batched, in parallel, exactly once per
tracking server, idempotent and resumable.

An exported MLflow run carries ``runlog.run_id``; before creating one, the export looks
that id up in every experiment of the server (one paged search per 100 experiments),
so a run is never exported twice, wherever it went (``copy=True`` makes a second copy in
the target experiment on purpose). The tags ``runlog.export_digest`` and
``runlog.export_complete`` are set last: a run whose digest matches is skipped; one that
an earlier export did not finish, or that changed since, is brought up to date (see
:func:`runlog.mlflow.compare.delta`); ``replace=True`` deletes it and exports it anew.

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
from ..values import counted
from .branches import plan_runs
from .client import (
    TAG_COMPLETE,
    TAG_DIGEST,
    TAG_PARENT,
    TAG_RUN_ID,
    Experiments,
    ExportError,
    ServerRuns,
    check_server,
    configure_http,
    describe,
    is_unreachable,
    require_mlflow,
    send,
)
from .compare import delta
from .plan import RunPlan, connect_index, select_runs


@dataclasses.dataclass
class RunOutcome:
    """What happened to one run: exported (new), resumed (completed or updated an
    earlier export), replaced (deleted in MLflow and exported anew), skipped (already
    in MLflow, as it is in the index), failed."""

    run_id: str
    outcome: str
    experiment: str = ""
    mlflow_run_id: str = ""
    metric_points: int = 0
    params: int = 0
    renamed: int = 0
    truncated: int = 0
    changed: list[str] = dataclasses.field(default_factory=list)
    child_runs: int = 0
    error: str = ""
    note: str = ""

    def row(self) -> dict[str, Any]:
        """The report's row of this run."""
        return {"run_id": self.run_id, "outcome": self.outcome, "experiment": self.experiment,
                "mlflow_run_id": self.mlflow_run_id, "metric_points": self.metric_points, "params": self.params,
                "renamed": self.renamed, "truncated": self.truncated, "changed": self.changed,
                "child_runs": self.child_runs, "note": self.error or self.note}


@dataclasses.dataclass
class ExportReport:
    outcomes: list[RunOutcome] = dataclasses.field(default_factory=list)
    plans: list[RunPlan] = dataclasses.field(default_factory=list)  # dry run

    def count(self, *kinds: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome in kinds)

    @property
    def exported(self) -> int:
        return self.count("exported", "resumed", "replaced")

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
        changed = sum(len(o.changed) for o in self.outcomes)
        more = [f"{n} {kind}" for kind, n in (("resumed", self.resumed), ("replaced", self.count("replaced"))) if n]
        line = (
            f"{counted(self.exported, 'run')} exported{' (' + ', '.join(more) + ')' if more else ''}, "
            f"{self.skipped} skipped as already in MLflow, {self.failed} failed; "
            f"{counted(points, 'metric point')} and {counted(params, 'param')} sent"
        )
        return line + (f" ({counted(changed, 'changed point')} logged again)" if changed else "")


@dataclasses.dataclass
class ExportOptions:
    """How runs are exported: ``experiment`` for all (else each run's tag), ``copy`` (look
    only in the target experiment, so a run exported elsewhere gets a second copy),
    ``replace`` (delete a run found in MLflow and export it anew), ``child_runs`` (a
    branch of a parallel or map step as a child run)."""

    experiment: str | None = None
    copy: bool = False
    replace: bool = False
    child_runs: bool = False


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
    copy: bool = False,
    replace: bool = False,
    branches: str = "none",
) -> ExportReport:
    """Export runs of the index to MLflow: the named runs, or all runs matching
    ``tag``/``status`` when none are named. Exactly once per server, idempotent and
    resumable (see module doc). ``branches="child-runs"``: branches as child runs.
    ``progress(done, total, outcome)`` is called as each run finishes.

    >>> export_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()  # doctest: +SKIP
    '3 runs exported, 0 skipped as already in MLflow, 0 failed; 120 metric points and 9 params sent'
    """
    options = ExportOptions(experiment, copy, replace, branches == "child-runs")
    conn = connect_index(db_path)
    found, missing = select_runs(conn, run_ids, tag, status)
    report = ExportReport([RunOutcome(r, "failed", error=f"run {r} is not in the index {db_path}") for r in missing])
    if dry_run:
        report.plans = [p for r in found for p in plan_runs(conn, r, experiment, options.child_runs).all_plans()]
        return report
    client, tracking_uri = connect(tracking_uri)
    exporter = _Exporter(client, db_path, tracking_uri, options)
    report.outcomes += run_all(exporter.export_one, found, workers, progress, report.outcomes)
    order = {r: i for i, r in enumerate(list(missing) + found)}
    report.outcomes.sort(key=lambda o: order.get(o.run_id, 0))
    return report


def connect(tracking_uri: str | None) -> tuple[Any, str]:
    """An ``MlflowClient`` of a server that answers, and its URI."""
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise ExportError("no MLflow tracking URI: pass --tracking-uri or set $MLFLOW_TRACKING_URI")
    require_mlflow(tracking_uri)
    configure_http()
    check_server(tracking_uri)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri), tracking_uri


def run_all(work: Callable[[str], Any], run_ids: list[str], workers: int, progress, before: list) -> list:
    """``work(run_id)`` for each run on ``workers`` threads; results as they finish."""
    total = len(before) + len(run_ids)
    for done, outcome in enumerate(before, start=1):
        if progress:
            progress(done, total, outcome)
    results: list = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(work, r) for r in run_ids]
        for future in concurrent.futures.as_completed(futures):
            results.append(future.result())
            if progress:
                progress(len(before) + len(results), total, results[-1])
    finally:  # on Ctrl-C, do not start the queued runs; the next export completes them
        pool.shutdown(wait=False, cancel_futures=True)
    return results


class _Exporter:
    """Exports one run at a time, from any thread; stops early once the server is gone."""

    def __init__(self, client, db_path, tracking_uri: str, options: ExportOptions):
        self.client = client
        self.db_path = db_path
        self.tracking_uri = tracking_uri
        self.options = options
        self.experiments = Experiments(client)
        self._lookups: dict[tuple | None, ServerRuns] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.server_gone = ""

    def conn(self) -> sqlite3.Connection:
        if not hasattr(self._local, "conn"):
            self._local.conn = connect_index(self.db_path)
        return self._local.conn

    def lookup(self, experiment_id: str | None) -> ServerRuns:
        """The runs already in MLflow: the whole server's, or with ``copy`` the target
        experiment's (none while that experiment does not exist)."""
        scope = (experiment_id,) if self.options.copy else None  # None: every experiment
        with self._lock:
            if scope not in self._lookups:
                self._lookups[scope] = (ServerRuns(self.client) if scope is None
                                        else ServerRuns(self.client, [experiment_id] if experiment_id else []))
            return self._lookups[scope]

    def export_one(self, run_id: str) -> RunOutcome:
        if self.server_gone:
            return RunOutcome(run_id, "failed", error=f"run {run_id}: not attempted: {self.server_gone}")
        try:
            plan = plan_runs(self.conn(), run_id, self.options.experiment, self.options.child_runs)
            return self._export(plan)
        except Exception as exc:  # one run's failure must not stop the others
            message = exc.args[0] if isinstance(exc, RunlogError) else describe(exc, self.tracking_uri)
            if is_unreachable(exc):
                self.server_gone = message
            return RunOutcome(run_id, "failed", error=f"run {run_id}: {message}")

    def _export(self, plan: RunPlan) -> RunOutcome:
        experiment_id = self.experiments.id_for(plan.experiment, create=False)  # created with the first run
        lookup = self.lookup(experiment_id)
        run, children = lookup.find(plan.run_id, experiment_id)
        if children and not plan.children and not self.options.replace:  # it went with child runs: keep it so
            plan = plan_runs(self.conn(), plan.run_id, self.options.experiment, True)
        outcome = RunOutcome(plan.run_id, "skipped", plan.experiment, renamed=plan.renamed,
                             truncated=plan.truncated, child_runs=len(plan.children))
        if run is not None and run.info.experiment_id != experiment_id and not (
                self.options.replace and self.options.experiment):
            experiment_id = run.info.experiment_id  # its one place on this server
            outcome.experiment = lookup.experiment_name(experiment_id)
            outcome.note = f"already in experiment {outcome.experiment}"
        replaced = run is not None and self.options.replace
        if replaced:  # anew, where it was unless --experiment says
            for old in [run, *children.values()]:
                self.client.delete_run(old.info.run_id)
            outcome.note = f"replaced MLflow run {run.info.run_id}"
            run, children = None, {}
        elif run is None:
            experiment_id = self.experiments.id_for(plan.experiment)
        # Everything is worked out before anything is sent: a refused run is left untouched.
        work = [(p, *_todo(self.client, p, run if not p.branch else children.get(p.branch))) for p in plan.all_plans()]
        parent_id = None
        for item_plan, existing, params, metrics, changed in work:
            sent = self._sync(experiment_id, item_plan, existing, params, metrics, parent_id)
            parent_id = parent_id or sent or run.info.run_id
            if sent and outcome.outcome == "skipped":
                outcome.outcome = "resumed" if run is not None else "replaced" if replaced else "exported"
            outcome.metric_points += len(metrics)
            outcome.params += len(params or {})
            outcome.changed += [f"{item_plan.branch}: {c}" if item_plan.branch else c for c in changed]
        outcome.mlflow_run_id = parent_id
        return outcome

    def _sync(self, experiment_id: str, plan: RunPlan, run: Any, params: dict[str, str], metrics: list,
              parent_id: str | None) -> str | None:
        """Send what ``plan`` needs to ``run`` (created when None); None when nothing was needed."""
        if params is None:
            return None
        tags = dict(plan.tags)
        if plan.branch:
            tags[TAG_PARENT] = parent_id or ""
        if run is None:
            run = self.client.create_run(experiment_id, start_time=plan.start_time_ms,
                                         tags={TAG_RUN_ID: plan.run_id}, run_name=plan.name)
        mlflow_run_id = run.info.run_id
        send(self.client, mlflow_run_id, params, tags, metrics)
        self.client.set_terminated(mlflow_run_id, plan.status, end_time=plan.end_time_ms)
        # Set last: an export killed before this line is completed by the next one.
        send(self.client, mlflow_run_id, {}, {TAG_DIGEST: plan.digest, TAG_COMPLETE: "true"}, [])
        return mlflow_run_id


def _todo(client, plan: RunPlan, run: Any) -> tuple[Any, dict[str, str] | None, list, list[str]]:
    """``(run, params, points, changed)`` to send for ``plan``; params None when ``run``
    already holds it (its digest matches)."""
    if run is None:
        return None, plan.params, plan.metrics, []
    tags = run.data.tags
    if tags.get(TAG_COMPLETE) == "true" and tags.get(TAG_DIGEST) == plan.digest:
        return run, None, [], []
    return (run, *delta(client, plan, run))
