"""Columns of a :class:`~runlog.api.result.Result`: each of one type, kept as the reading
made it (a list, a run-length encoded :class:`Repeated`, an Arrow array), typed once
from the values SQLite or DuckDB gave (:func:`typed`).

>>> typed("start_time", ["2026-11-30 09:10:00.000000"]).python()
[datetime.datetime(2026, 11, 30, 9, 10, tzinfo=datetime.timezone.utc)]
>>> typed("param:lr", [0.1, "auto"]).data
['0.1', 'auto']
"""

from __future__ import annotations

import importlib
import itertools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ..errors import MissingExtra
from ..models import parse_time
from ..values import EPOCH_MS_COLUMNS, TIME_COLUMNS

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UNITS = {"ms": timedelta(milliseconds=1), "us": timedelta(microseconds=1)}
# numpy's and pandas' NaT, as the int64 it is stored as
NAT = -(2**63)


@dataclass
class Repeated:
    """A run-length encoded column: ``values[i]`` repeated ``counts[i]`` times (a series'
    run id and metric name, once per series instead of once per point)."""

    values: list
    counts: list[int]

    def __len__(self) -> int:
        return sum(self.counts)

    def expand(self) -> list:
        return list(itertools.chain.from_iterable(itertools.repeat(v, c) for v, c in zip(self.values, self.counts)))


@dataclass
class Column:
    """One column: ``kind`` (int, float, str, bool, time, binary or null) and its
    ``data``: a list, a :class:`Repeated`, or an Arrow array (from a lake). Times are
    integers since the epoch in ``unit`` (``ms`` or ``us``)."""

    kind: str
    data: Any
    unit: str = "us"

    @property
    def is_arrow(self) -> bool:
        return not isinstance(self.data, (list, Repeated))

    def python(self) -> list:
        """The values as Python objects (times as aware UTC datetimes)."""
        if self.is_arrow:
            return self.data.to_pylist()
        values = self.data.expand() if isinstance(self.data, Repeated) else self.data
        if self.kind == "time":
            step = UNITS[self.unit]
            return [None if v is None else EPOCH + v * step for v in values]
        return values


def typed(name: str, values: list, hint: str | None = None) -> Column:
    """A column of Python values (as SQLite or DuckDB gave them) with the type they share;
    ``hint``: its type when no value says (no rows, or nulls only)."""
    kinds = {type(v) for v in values} - {type(None)}
    if name in TIME_COLUMNS and kinds <= {str, datetime}:
        return Column("time", [_micros(_utc(v)) for v in values])
    if name in EPOCH_MS_COLUMNS and kinds <= {int}:
        return Column("time", values, "ms")
    if not kinds:
        return Column(hint or "null", values)
    if kinds == {int}:
        return Column("int", values)
    if kinds <= {int, float, Decimal}:
        return Column("float", [v if v is None else float(v) for v in values])
    if kinds == {str}:
        return Column("str", values)
    if kinds == {bool}:
        return Column("bool", values)
    if kinds <= {datetime, date}:
        return Column("time", [_micros(_utc(v)) for v in values])
    if kinds == {bytes}:
        return Column("binary", values)
    return Column("str", [v if v is None or isinstance(v, str) else as_text(v) for v in values])


def as_text(value: Any) -> str:
    """A value in a column of text: numbers as Python writes them, the rest as JSON.

    >>> as_text(0.1), as_text(32), as_text(True), as_text([1, 2])
    ('0.1', '32', 'true', '[1, 2]')
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        moment = parse_time(value)
        return None if moment is None else moment.replace(tzinfo=timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return None


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // UNITS["us"]


def require(module: str, extra: str):
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra, module) from None
