"""runlog: keep, query and move the run logs of data and ML pipelines.

>>> from runlog import Run, track_this
"""

__version__ = "0.1.0"

from .models import BranchLog, CodeIdentity, DataCatalog, Parameter, RunLog, StepAttempt, StepLog  # noqa: E402
from .record import Run, branch_scope, get_experiment_tracker_context, track_this  # noqa: E402
from .store import RunLogStore  # noqa: E402

__all__ = [
    "BranchLog",
    "CodeIdentity",
    "DataCatalog",
    "Parameter",
    "Run",
    "RunLog",
    "RunLogStore",
    "StepAttempt",
    "StepLog",
    "branch_scope",
    "get_experiment_tracker_context",
    "track_this",
]
