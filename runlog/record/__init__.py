"""Recording runs: the Run API, ``track_this`` and ``RUNNABLE_TRACK_*`` variables,
experiment trackers, and ``runlog exec`` (a command as a step).

Public API: :class:`Run`, :func:`branch_scope`, :func:`track_this`,
:func:`get_experiment_tracker_context`, :class:`ExperimentTracker` and
:func:`register_tracker` (trackers are also found through the entry-point group
``runlog.experiment_trackers``), :func:`exec_step`.

>>> with Run.start(tag="demo") as run:       # doctest: +SKIP
...     with run.step("train"):
...         track_this(step=0, loss=0.5)
"""

from __future__ import annotations

from .execute import exec_step
from .run import Run, branch_scope
from .tracking import ExperimentTracker, get_experiment_tracker_context, register_tracker, track_this

__all__ = ["ExperimentTracker", "Run", "branch_scope", "exec_step", "get_experiment_tracker_context",
           "register_tracker", "track_this"]
