"""MLflow: exporting historic runs from the index, and a live tracker for pipelines.

Public API: :func:`export_runs` (and :class:`ExportReport`), :func:`verify_runs` (and
:class:`VerifyReport`), :func:`plan_run` / :func:`plan_runs` (what a run becomes, offline;
with branches as child runs), the naming rules in :mod:`runlog.mlflow.naming`, and the
live tracker :class:`runlog.mlflow.tracker.MlflowTracker` (``RUNLOG_EXPERIMENT_TRACKER=mlflow``). mlflow itself, an
optional extra, is imported only where it is used.

>>> export_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()   # doctest: +SKIP
"""

from __future__ import annotations

from .branches import plan_runs
from .export import ExportReport, RunOutcome, export_runs
from .plan import RunPlan, plan_run
from .verify import RunCheck, VerifyReport, verify_runs

__all__ = ["ExportReport", "RunCheck", "RunOutcome", "RunPlan", "VerifyReport", "export_runs", "plan_run",
           "plan_runs", "verify_runs"]
