"""runlog from Python, for notebooks: :func:`open` gives an :class:`Index` over an index
file or a lake; its methods answer as the CLI's commands do (one implementation), each
as a :class:`Result` that becomes a pandas, polars or Arrow frame.

Public API: :func:`open`, :class:`Index`, :class:`Result`; :func:`default_path` (the
index read when none is named: ``$RUNLOG_DB``, else ``runlog.db``). Importing this
package imports no frame library, nor DuckDB: each is imported when first used.

>>> import runlog
>>> index = runlog.open("runlog.db")                                            # doctest: +SKIP
>>> index.runs(metrics=["min:loss"], params=["lr"], sort=["min:loss"], limit=5).to_pandas()  # doctest: +SKIP
"""

from .connections import default_path
from .index import Index, open
from .result import Result

__all__ = ["Index", "Result", "default_path", "open"]
