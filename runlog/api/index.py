"""The :class:`Index`: what :func:`runlog.open` gives, an index file or a lake read from
Python, each answer a :class:`~runlog.api.result.Result` (pandas, polars, Arrow or dicts).

The examples below run in the docs' folder (the six real runs and the sweep of
``examples/sweep.py``, indexed into ``runlog.db``); ``tests/test_api.py`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .connections import Connections, default_path
from .result import Result


def open(path: str | os.PathLike | None = None, *, endpoint_url: str | None = None) -> Index:  # noqa: A001
    """Open an index file, or a lake, for reading from Python: an :class:`Index`.

    ``path``: an index file (default, as the CLI's: ``$RUNLOG_DB``, else ``./runlog.db``),
    or a lake (a folder that ``runlog lake build`` wrote, or an ``s3://`` or ``gs://``
    URL; ``endpoint_url`` for an S3-compatible server). Nothing is ever written, not even
    to upgrade an index of an older runlog (``runlog upgrade`` does that).

    >>> import runlog
    >>> with runlog.open("runlog.db") as index:
    ...     len(index.runs(tag="sweep"))
    7
    """
    return Index(default_path() if path is None else path, endpoint_url=endpoint_url)


class Index:
    """Runs, metric histories and SQL over an index or a lake, read-only; a context manager
    (``with runlog.open() as index:``), safe to share between threads. Names are run-level
    names (``loss``, ``eval/loss``) and column specs (``min:loss``, ``param:lr``) as in the
    CLI; a name that no run has raises :class:`~runlog.errors.UnknownName`, a
    ``ValueError`` that names the closest ones. Open one with :func:`runlog.open`."""

    def __init__(self, path: str | os.PathLike, *, endpoint_url: str | None = None):
        self.path = str(path)
        self.endpoint_url = endpoint_url
        self._connections = Connections(path, endpoint_url)

    def runs(self, metrics: str | Sequence[str] = (), params: str | Sequence[str] = (), *, where: str | None = None,
             sort: str | Sequence[str] = (), limit: int | None = None, tag: str | None = None,
             status: str | None = None) -> Result:
        """One row per run, as ``runlog runs``: run_id, tag, status, start_time, duration_s,
        steps, then a column per param (``lr``) and per metric spec (``loss``, ``min:loss``);
        ``where`` filters (the filter language), ``sort`` orders (``-SPEC``: descending).

        >>> best = index.runs(metrics=["min:loss"], params=["lr"], where="param:lr in (0.1, 0.01)",
        ...                   sort=["min:loss"], limit=3)
        >>> [(row["run_id"], row["param:lr"], row["min:loss"]) for row in best]
        [('sweep-03', 0.01, 0.1685), ('sweep-04', 0.01, 0.2027), ('sweep-ensemble', 0.1, 0.2139)]
        """
        from . import answers

        with self._connections.use() as db:
            return answers.runs(db, metrics, params, where, sort, limit, tag, status)

    def history(self, metrics: str | Sequence[str], runs: str | Sequence[str] | None = None, *,
                where: str | None = None, steps: tuple[int, int] | None = None,
                max_points: int | None = None) -> Result:
        """Every point of these metrics in these runs (default: every run that has one),
        long form: ``run_id, metric, step, value, time`` (``time``: when the point was
        recorded, UTC, where the log says; ``value`` is null for NaN and for text, bool
        or JSON points). ``where`` keeps the runs it matches; ``steps=(first, last)`` keeps
        those steps; ``max_points`` caps each series as the charts draw it (the lowest
        and highest point of each bucket).

        >>> curves = index.history(["loss", "accuracy"], runs=["sweep-01", "sweep-02"])
        >>> len(curves), sorted({row["metric"] for row in curves})
        (40, ['accuracy', 'loss'])
        """
        from .history import history

        with self._connections.use() as db:
            return history(db, metrics, runs, where, steps, max_points)

    def summaries(self, metrics: str | Sequence[str] | None = None,
                  runs: str | Sequence[str] | None = None, *, where: str | None = None) -> Result:
        """One row per run and metric: ``count, first, last, min, max, mean`` and the steps
        of the min and max (``argmin, argmax``), as ingest keeps them.

        >>> [(row["run_id"], row["min"], row["argmin"]) for row in index.summaries("loss", runs="sweep-03")]
        [('sweep-03', 0.1685, 9)]
        """
        from . import answers

        with self._connections.use() as db:
            return answers.summaries(db, metrics, runs, where)

    def keys(self, like: str | None = None) -> Result:
        """Every run-level metric and param name, as ``runlog keys``: how many runs have it,
        its kinds, the range of its last value; ``like`` narrows (SQL LIKE).

        >>> [(row["what"], row["name"], row["runs"]) for row in index.keys(like="acc%")]
        [('metric', 'accuracy', 7), ('param', 'accuracy', 1)]
        """
        from . import answers

        with self._connections.use() as db:
            return answers.keys(db, like)

    def compare(self, run_ids: Sequence[str], metrics: str | Sequence[str] = (), params: str | Sequence[str] = (), *,
                summary: str = "last", only_diff: bool = False) -> Result:
        """Runs side by side, as ``runlog compare``: one row per param and metric, one
        column per run, ``differs`` marked ``*`` (a run's column holding numbers and text is text).

        >>> rows = index.compare(["sweep-01", "sweep-02"], metrics=["min:loss"], params=["lr", "batch"])
        >>> [(row["spec"], row["sweep-01"], row["sweep-02"], row["differs"]) for row in rows]
        [('param:lr', 0.1, 0.1, ''), ('param:batch', 32.0, 64.0, '*'), ('min:loss', 0.2188, 0.2537, '*')]
        """
        from . import answers

        with self._connections.use() as db:
            return answers.compare(db, run_ids, metrics, params, summary, only_diff)

    def sql(self, query: str, params: dict[str, Any] | None = None) -> Result:
        """Read-only SQL, as ``runlog query`` runs it (``:name`` parameters, bound): SQLite's
        over an index, DuckDB's over a lake.

        >>> list(index.sql("select count(*) as n from runs where tag = :tag", {"tag": "sweep"}))
        [{'n': 7}]
        """
        from . import answers

        with self._connections.use() as db:
            return answers.sql(db, query, params)

    def run(self, run_id: str):
        """The run's log (a :class:`runlog.RunLog`), read again from where ingest found it.

        >>> log = index.run("sweep-03")
        >>> log.status, log.steps["train"].attempts[0].parameters["lr"]
        ('SUCCESS', 0.01)
        """
        from . import answers

        with self._connections.use() as db:
            return answers.read_run(db, run_id, self.endpoint_url)

    def close(self) -> None:
        """Close every connection (also when a ``with`` block ends)."""
        self._connections.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"runlog.open({self.path!r})"
