"""runlog: keep, query and move the run logs of data and ML pipelines.

>>> from runlog import Run, track_this
>>> index = runlog.open("runlog.db")            # doctest: +SKIP
>>> index.runs(metrics=["min:loss"], sort=["min:loss"], limit=5).to_pandas()   # doctest: +SKIP
"""

__version__ = "0.1.0"

from .api import Index, Result, open  # noqa: E402, A004
from .models import BranchLog, CodeIdentity, DataCatalog, Parameter, RunLog, StepAttempt, StepLog  # noqa: E402
from .record import Run, branch_scope, get_experiment_tracker_context, track_this  # noqa: E402
from .store import RunLogStore  # noqa: E402

__all__ = [
    "BranchLog",
    "CodeIdentity",
    "DataCatalog",
    "Index",
    "Parameter",
    "Result",
    "Run",
    "RunLog",
    "RunLogStore",
    "StepAttempt",
    "StepLog",
    "branch_scope",
    "get_experiment_tracker_context",
    "open",
    "track_this",
]
