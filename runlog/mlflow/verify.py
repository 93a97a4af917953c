"""``runlog export mlflow --verify``: read the selected runs back from MLflow and compare
them with the index, run by run: each metric's points (step and value, NaN and ±inf as
MLflow stores them), params, the ``runlog.*`` and git tags, start and end time, status.
Works on any export that set ``runlog.run_id``, by this or an older runlog.

>>> verify_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()  # doctest: +SKIP
'3 runs verified: 3 ok, 0 differ, 0 missing'
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import RunlogError
from ..values import counted
from .branches import plan_runs
from .client import ServerRuns, describe
from .compare import differences
from .export import connect, run_all
from .plan import RunPlan, connect_index, select_runs


@dataclasses.dataclass
class RunCheck:
    """One MLflow run (a run, or a branch's child run) against the index: ``ok``,
    ``differs`` (with what), ``missing`` or ``failed`` (could not be read)."""

    run_id: str
    verdict: str
    experiment: str = ""
    mlflow_run_id: str = ""
    differences: list[str] = dataclasses.field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "verdict": self.verdict, "experiment": self.experiment,
                "mlflow_run_id": self.mlflow_run_id, "differences": self.differences}

    @property
    def line(self) -> str:
        """``differs: 2 points of loss, param lr``."""
        return f"{self.verdict}: {', '.join(self.differences)}" if self.differences else self.verdict


@dataclasses.dataclass
class VerifyReport:
    checks: list[RunCheck] = dataclasses.field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.checks if c.verdict == verdict)

    @property
    def ok(self) -> bool:
        return all(c.verdict == "ok" for c in self.checks)

    def summary(self) -> str:
        failed = f", {self.count('failed')} failed" if self.count("failed") else ""
        return (f"{counted(len(self.checks), 'run')} verified: {self.count('ok')} ok, "
                f"{self.count('differs')} differ, {self.count('missing')} missing{failed}")


def verify_runs(
    db_path: str | os.PathLike,
    run_ids: Sequence[str] = (),
    *,
    tracking_uri: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    experiment: str | None = None,
    workers: int = 4,
    branches: str = "none",
    progress: Callable[[int, int, Any], None] | None = None,
) -> VerifyReport:
    """Compare the selected runs (as :func:`~runlog.mlflow.export.export_runs` selects
    them) with what MLflow holds; one :class:`RunCheck` per MLflow run."""
    conn = connect_index(db_path)
    found, missing = select_runs(conn, run_ids, tag, status)
    if missing:
        raise RunlogError(f"run {missing[0]} is not in the index {db_path}")
    client, tracking_uri = connect(tracking_uri)
    lookup = ServerRuns(client)
    local = threading.local()

    def check(run_id: str) -> tuple[str, list[RunCheck]]:
        if not hasattr(local, "conn"):
            local.conn = connect_index(db_path)
        plan = plan_runs(local.conn, run_id, experiment, branches == "child-runs")
        try:
            return run_id, _check(client, local.conn, lookup, plan, experiment)
        except Exception as exc:  # a run that cannot be read is reported, the others go on
            message = exc.args[0] if isinstance(exc, RunlogError) else describe(exc, tracking_uri)
            return run_id, [RunCheck(plan.name, "failed", plan.experiment, differences=[message])]

    order = {r: i for i, r in enumerate(found)}
    results = sorted(run_all(check, found, workers, progress, []), key=lambda result: order[result[0]])
    return VerifyReport([c for _, checks in results for c in checks])


def _check(client, conn, lookup: ServerRuns, plan: RunPlan, experiment: str | None = None) -> list[RunCheck]:
    """Every copy of the run on the server (one, unless ``--copy`` made more), or only
    the one in ``experiment`` when given, against the index."""
    copies = [(run, children) for run, children in lookup.copies(plan.run_id)
              if experiment is None or lookup.experiment_name(run.info.experiment_id) == experiment]
    if not copies:
        return [RunCheck(p.name, "missing", p.experiment) for p in plan.all_plans()]
    checks = []
    for run, children in copies:
        this = plan_runs(conn, plan.run_id, experiment, True) if children and not plan.children else plan
        name = lookup.experiment_name(run.info.experiment_id)
        checks.append(_verdict(this.name, name, run, differences(client, this, run)))
        for child in this.children:
            found = children.get(child.branch)
            if found is None:
                checks.append(RunCheck(child.name, "missing", name))
            else:
                checks.append(_verdict(child.name, name, found, differences(client, child, found, run.info.run_id)))
    return checks


def _verdict(name: str, experiment: str, run: Any, found: list[str]) -> RunCheck:
    return RunCheck(name, "differs" if found else "ok", experiment, run.info.run_id, found)
