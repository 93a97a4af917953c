"""What every method of :class:`~runlog.api.Index` returns: rows kept as typed columns,
which become a pandas, polars or Arrow frame, each library building it its own fastest
way, and read as dicts without any of them.

A column has one type: integers (int64), other numbers (float64), text, booleans,
times (aware UTC datetimes: the index's text times, a lake's timestamps and epoch
milliseconds alike), or nothing but nulls. A column that holds numbers and text (a
param that is a number in one run and text in another; compare's run columns) is text,
numbers written as Python writes them (``0.1``, ``32``).

>>> result = Result.from_rows(["run_id", "loss"], [{"run_id": "a", "loss": 0.5}])
>>> len(result), result.columns, list(result)
(1, ['run_id', 'loss'], [{'run_id': 'a', 'loss': 0.5}])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .columns import Column, typed


class Result:
    """Rows of one answer, as columns. ``len(result)`` rows; ``result.columns`` their names
    (as the CLI names them); iterate for one dict a row; ``to_pandas()``, ``to_polars()``
    or ``to_arrow()`` for a frame (each needs its library, installed by the extra of
    the same name: ``pandas``, ``polars``, ``arrow``).

    >>> index.runs(metrics=["min:loss"], limit=5).to_pandas()          # doctest: +SKIP
    """

    def __init__(self, columns: dict[str, Column], length: int):
        self._columns = columns
        self._length = length

    @classmethod
    def from_rows(cls, columns: Sequence[str], rows: list[dict[str, Any]],
                  hints: dict[str, str] | None = None) -> Result:
        """Rows (dicts, as :func:`runlog.index.queries.run_sql` gives them) as typed columns;
        ``hints``: the type of a column when no value says (see :func:`.columns.typed`)."""
        hints = hints or {}
        return cls({name: typed(name, [row.get(name) for row in rows], hints.get(name)) for name in columns},
                   len(rows))

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.columns
        for row in zip(*(column.python() for column in self._columns.values())):
            yield dict(zip(names, row))

    def __repr__(self) -> str:
        return f"<Result: {self._length} rows; columns {', '.join(self.columns)}>"

    def to_pandas(self):
        """A ``pandas.DataFrame``: int64 and float64 numbers (int64 with nulls as float64,
        as pandas does), object text, datetime64 UTC times."""
        from . import frames

        return frames.to_pandas(self._columns, self._length)

    def to_polars(self):
        """A ``polars.DataFrame``: Int64, Float64, String, Boolean, Datetime (UTC)."""
        from . import frames

        return frames.to_polars(self._columns)

    def to_arrow(self):
        """A ``pyarrow.Table``: int64, float64, string, bool, timestamp (UTC)."""
        from . import frames

        return frames.to_arrow(self._columns)
