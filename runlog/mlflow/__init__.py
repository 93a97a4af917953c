"""MLflow: exporting historic runs from the index, and a live tracker for pipelines.

Public API: :func:`export_runs` (and :class:`ExportReport`), :func:`plan_run` (what a
run becomes, offline), the naming rules in :mod:`runlog.mlflow.naming`, and the
live tracker :class:`runlog.mlflow.tracker.MlflowTracker` (``RUNLOG_EXPERIMENT_TRACKER=mlflow``). mlflow itself, an
optional extra, is imported only where it is used.

>>> export_runs("runlog.db", tag="nightly", tracking_uri="http://127.0.0.1:5000").summary()   # doctest: +SKIP
"""

from __future__ import annotations

from .export import ExportReport, RunOutcome, export_runs
from .plan import RunPlan, plan_run

__all__ = ["ExportReport", "RunOutcome", "RunPlan", "export_runs", "plan_run"]
