"""Metric points: what one recorded value becomes, and a run's points gathered series
by series, with their run-level summaries and tiles.

One value at one step is one ``metrics`` row, ``(key, step, value, value_text, kind)``:
nested dicts flatten to dotted keys (``eggs.ham``); bool -> kind ``bool``, int/float ->
``numeric``, str -> ``text``, anything else -> ``json``. A series of plain values
(floats without NaN, strings or bools, steps increasing: the bulk of any real log) is
kept whole, as its steps and values (:class:`PlainSeries`), so neither ingest nor the
lake builds a Python object per point for it; any other value becomes rows.

>>> [p[:5] for p in metric_points({"loss": {"0": 0.9, "2": 0.3}, "eggs": {"ham": "hi"}})]
[('loss', 0, 0.9, None, 'numeric'), ('loss', 2, 0.3, None, 'numeric'), ('eggs.ham', 0, None, 'hi', 'text')]
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from itertools import chain, repeat
from typing import Any

from ..models import PARAMETER_KINDS, parse_time
from ..values import json_safe
from .summaries import NO_POSITION, NameClaims, group_series, mean_of, summary_row
from .tiles import TILED_FROM, series_tiles

# Step keys of a series: decimal digits that fit a SQLite INTEGER.
_STEP_KEY = re.compile(r"^[0-9]{1,18}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# -- one value ----------------------------------------------------------------------


def metric_points(metrics: dict[str, Any]) -> Iterator[tuple]:
    """G1/G2 metrics -> ``(key, step, value, value_text, kind)``; decimal-keyed dicts are series.

    >>> list(metric_points({"answer": 42, "flag": True}))
    [('answer', 0, 42.0, None, 'numeric'), ('flag', 0, None, 'true', 'bool')]
    """
    for key, raw in metrics.items():
        if is_series(raw):
            for step_key, value in raw.items():
                yield from value_points(key, int(step_key), value)
        else:
            yield from value_points(key, 0, raw)


def g3_metric_points(metrics: dict[str, Any]) -> Iterator[tuple]:
    """G3 metrics (``{"kind": "metric", "value": v}``): number lists are curves, pair lists are dicts.

    >>> list(g3_metric_points({"curve": {"kind": "metric", "value": [0.5, 0.25]}}))
    [('curve', 0, 0.5, None, 'numeric'), ('curve', 1, 0.25, None, 'numeric')]
    """
    for key, raw in metrics.items():
        value = parameter(raw)[1]
        if _is_number_list(value):
            for step_no, number in enumerate(value):
                yield from value_points(key, step_no, number)
        elif _is_pair_list(value):
            yield from value_points(key, 0, dict(value))
        else:
            yield from value_points(key, 0, value)


def value_points(key: str, step: int, value: Any) -> Iterator[tuple]:
    """One value at one step; a non-empty dict flattens to dotted keys."""
    if isinstance(value, dict) and value:
        for sub, inner in value.items():
            yield from value_points(f"{key}.{sub}", step, inner)
        return
    yield (key, step, *classify(value))


def classify(value: Any) -> tuple[float | None, str | None, str]:
    """``(value, value_text, kind)`` of one metric value.

    >>> classify(float("nan")), classify(False), classify("hi"), classify([1, 2])
    ((None, 'NaN', 'numeric'), (None, 'false', 'bool'), (None, 'hi', 'text'), (None, '[1,2]', 'json'))
    """
    kind = type(value)
    if kind is float and value == value:  # the common case first: a finite or infinite float
        return value, None, "numeric"
    if isinstance(value, bool):
        return None, "true" if value else "false", "bool"
    if isinstance(value, float) and math.isnan(value):
        return None, "NaN", "numeric"
    if isinstance(value, (int, float)):
        as_real = number(value)
        if as_real is None:  # an int too large for a REAL: keep its digits
            return None, str(value), "json"
        return as_real, None, "numeric"
    if isinstance(value, str):
        return None, value, "text"
    return None, json_text(value), "json"


def is_series(value: Any) -> bool:
    """A G1/G2 step series: a non-empty dict whose keys are all decimal strings."""
    return step_keys(value) is not None


def step_keys(value: Any) -> list[str] | None:
    """The keys of a G1/G2 step series (1 to 18 ASCII digits each), else None."""
    if not isinstance(value, dict) or not value:
        return None
    keys = list(value)
    try:
        joined = "".join(keys)
    except TypeError:  # a key that is not a string
        return None
    if joined.isdigit() and joined.isascii() and min(map(len, keys)) >= 1 and max(map(len, keys)) <= 18:
        return keys  # one C-speed test for the usual series; isdigit() alone takes other scripts' digits
    return keys if all(isinstance(k, str) and _STEP_KEY.match(k) for k in keys) else None


def parameter(raw: Any) -> tuple[str, Any]:
    """``(kind, value)`` of a stored parameter of any generation, as
    :func:`runlog.models.as_parameter` reads it (kind ``raw`` before G3).

    >>> parameter({"kind": "metric", "value": 0.5}), parameter(3)
    (('metric', 0.5), ('raw', 3))
    """
    if isinstance(raw, dict) and raw.get("kind") in PARAMETER_KINDS and "value" in raw:
        return raw["kind"], raw["value"]
    return "raw", raw


def _is_number_list(value: Any) -> bool:
    return (
        isinstance(value, list) and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _is_pair_list(value: Any) -> bool:
    return (
        isinstance(value, list) and bool(value)
        and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value)
    )


def json_text(value: Any) -> str:
    """Compact strict JSON (NaN/Infinity become strings, so SQLite's json functions read it)."""
    return json.dumps(json_safe(value), separators=(",", ":"), ensure_ascii=False)


def timestamp_ms(text: str | None) -> int | None:
    """A run-log time as epoch milliseconds; naive times are read as UTC.

    >>> timestamp_ms("1970-01-01 00:00:01.500000")
    1500
    """
    moment = parse_time(text)
    if moment is None:
        return None
    return (utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def number(value: Any) -> float | None:
    """A REAL for int/float (not bool); None otherwise, for NaN, or when it does not fit.

    >>> number(3), number(True), number(10**400), number("3")
    (3.0, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return None if math.isnan(as_float) else as_float


def unique(rows: Iterable[tuple], key_len: int) -> list[tuple]:
    """Rows made unique on their primary key (the first ``key_len`` columns): the last
    one wins, in the place of the first.

    >>> unique([("a", 1), ("b", 2), ("a", 3)], 1)
    [('a', 3), ('b', 2)]
    """
    rows = list(rows)
    found = dict(zip(map(operator.itemgetter(slice(0, key_len)), rows), rows))
    return rows if len(found) == len(rows) else list(found.values())


# -- a run's points ---------------------------------------------------------------------


class PlainSeries:
    """One series of plain values, kept whole: floats without NaN (``values``), or
    strings or bools (``texts``); steps increasing; one time for every point.

    >>> list(PlainSeries.of("train", "ok", [0, 5], [True, False], None).rows("r"))
    [('r', 'train', 'ok', 0, None, 'true', 'bool', None), ('r', 'train', 'ok', 5, None, 'false', 'bool', None)]
    >>> PlainSeries.of("train", "loss", [0, 1], [0.5, float("nan")], None) is None
    True
    """

    __slots__ = ("step_name", "key", "steps", "values", "texts", "kind", "stamp", "mean")

    def __init__(self, step_name: str, key: str, steps: list[int], values: list | None, texts: list | None,
                 kind: str, stamp: int | None, mean: float | None):
        self.step_name, self.key, self.steps, self.values, self.texts = step_name, key, steps, values, texts
        self.kind, self.stamp, self.mean = kind, stamp, mean

    @classmethod
    def of(cls, step_name: str, key: str, steps: list[int], values: list, stamp: int | None) -> PlainSeries | None:
        """The series, or None when its values are not of one plain kind or its steps do not increase."""
        kinds = set(map(type, values))
        if len(kinds) != 1 or not all(map(operator.lt, steps, steps[1:])):
            return None
        kind = kinds.pop()
        if kind is float:
            nan, mean = _mean_without_nan(values)
            return None if nan else cls(step_name, key, steps, values, None, "numeric", stamp, mean)
        if kind is str:
            return cls(step_name, key, steps, None, values, "text", stamp, None)
        if kind is bool:
            return cls(step_name, key, steps, None, ["true" if v else "false" for v in values], "bool", stamp, None)
        return None

    def rows(self, run_id: str) -> Iterator[tuple]:
        """Its ``metrics`` rows (METRIC_COLUMNS order)."""
        n = len(self.steps)
        return zip(repeat(run_id, n), repeat(self.step_name, n), repeat(self.key, n), self.steps,
                   self.values or repeat(None, n), self.texts or repeat(None, n), repeat(self.kind, n),
                   repeat(self.stamp, n))

    def summary(self, run_id: str, name: str, position: int) -> tuple:
        """Its ``run_metrics`` row: what ``summaries.summary_row`` gives of its rows."""
        steps, values, texts = self.steps, self.values, self.texts
        head = (run_id, name, self.step_name, self.key, position, self.kind, len(steps))
        if values is None:  # strings or bools: no number to sum up
            return (*head, None, steps[0], None, steps[-1], texts[-1], None, None, None, None, None, self.stamp, 1)
        low, high = min(values), max(values)
        return (*head, values[0], steps[0], values[-1], steps[-1], None, low, steps[values.index(low)], high,
                steps[values.index(high)], self.mean, self.stamp, 1)


def _mean_without_nan(values: list[float]) -> tuple[bool, float | None]:
    """``(has NaN, mean as summaries.mean_of computes it)`` of floats."""
    try:
        total = math.fsum(values)
    except (ValueError, OverflowError):  # +inf with -inf, or a sum too large
        return any(v != v for v in values), mean_of(values)
    if total != total:
        return True, None
    return False, total / len(values)


class MetricPoints:
    """A run's metric points: ``parts`` in the order of the log (a :class:`PlainSeries`, or
    a list of rows in METRIC_COLUMNS order), and ``groups``, the same points by
    ``(step_name, key)``, for the run-level summaries and the tiles.

    A key written twice at one step (``a.b`` and ``{"a": {"b": ...}}`` in one step, or a
    G1/G2 key that a G3 metric repeats) keeps its last value in the place of its first,
    as the index's primary key wants: :meth:`settle` gathers such a run again as rows.

    >>> points = MetricPoints("r")
    >>> points.add_series("train", "loss", [0, 1], [0.5, 0.25], None)
    >>> points.settle(); [row[3:5] for row in points.rows()]
    [(0, 0.5), (1, 0.25)]
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.parts: list[PlainSeries | list[tuple]] = []
        self.groups: dict[tuple[str, str], PlainSeries | list[tuple]] = {}
        self.clash = False

    def add_series(self, step_name: str, key: str, steps: list[int], values: list, stamp: int | None) -> None:
        """A G1/G2 step series: whole when plain; a series of dicts with the same fields as
        one series per field (``key.field``), its rows step by step as value_points orders them."""
        series = PlainSeries.of(step_name, key, steps, values, stamp)
        if series is not None:
            self._claim(series)
            self.parts.append(series)
            return
        fields = self._fields(step_name, key, steps, values, stamp)
        if fields:
            for field in fields:
                self._claim(field)
            rows = (field.rows(self.run_id) if type(field) is PlainSeries else field for field in fields)
            self._extend([row for at_step in zip(*rows) for row in at_step])
            return
        self.add_points(step_name, (p for step, value in zip(steps, values) for p in value_points(key, step, value)),
                        stamp)

    def add_g3(self, step_name: str, key: str, raw: Any, stamp: int | None) -> None:
        """A G3 metric: a list of floats is a curve over steps 0..n-1 (g3_metric_points)."""
        value = parameter(raw)[1]
        if type(value) is list and value and type(value[0]) is float:
            series = PlainSeries.of(step_name, key, list(range(len(value))), value, stamp)
            if series is not None:
                self._claim(series)
                self.parts.append(series)
                return
        self.add_points(step_name, g3_metric_points({key: raw}), stamp)

    def add_points(self, step_name: str, points: Iterable[tuple], stamp: int | None) -> None:
        """Points ``(key, step, value, value_text, kind)`` of one step, as rows."""
        run_id, groups = self.run_id, self.groups
        rows = [(run_id, step_name, key, step, value, text, kind, stamp) for key, step, value, text, kind in points]
        for row in rows:
            group = groups.setdefault((step_name, row[2]), [])
            if type(group) is list:
                group.append(row)
            else:
                self.clash = True
        self._extend(rows)

    def _fields(self, step_name: str, key: str, steps: list[int], values: list, stamp: int | None) -> list | None:
        """A series of dicts with the same fields as one series per field (at any depth):
        a PlainSeries, or its rows, one a step; None when the values are not such dicts."""
        first = values[0]
        if type(first) is not dict or not first:
            return None
        names = list(first)
        if not all(type(v) is dict and list(v) == names for v in values):
            return None
        found: list[PlainSeries | list[tuple]] = []
        for name in names:
            inner, field_key = [v[name] for v in values], f"{key}.{name}"
            series = PlainSeries.of(step_name, field_key, steps, inner, stamp)
            if series is not None:
                found.append(series)
            elif not any(type(v) is dict and v for v in inner):  # one row a step
                found.append([(self.run_id, step_name, field_key, step, *classify(v), stamp)
                              for step, v in zip(steps, inner)])
            elif (fields := self._fields(step_name, field_key, steps, inner, stamp)) is not None:
                found += fields
            else:
                return None
        return found

    def _claim(self, series: PlainSeries | list[tuple]) -> None:
        """Take ``series`` (a PlainSeries, or the rows of one key) as its key's group."""
        group = (series.step_name, series.key) if type(series) is PlainSeries else series[0][1:3]
        if group in self.groups:
            self.clash = True
        else:
            self.groups[group] = series if type(series) is PlainSeries else list(series)

    def _extend(self, rows: list[tuple]) -> None:
        if self.parts and type(self.parts[-1]) is list:
            self.parts[-1].extend(rows)
        else:
            self.parts.append(rows)

    def settle(self) -> None:
        """After the last point: a run where a key is written twice at one step becomes its
        rows, made unique on the primary key (the last value in the place of the first)."""
        if not self.clash:
            self.clash = any(type(g) is list and len({row[3] for row in g}) != len(g) for g in self.groups.values())
        if self.clash:
            rows = unique(self.rows(), 4)
            self.parts = [rows]
            self.groups = group_series(rows)

    def rows(self) -> Iterator[tuple]:
        """Every ``metrics`` row, in the order of the log."""
        run_id = self.run_id
        return chain.from_iterable(p.rows(run_id) if type(p) is PlainSeries else p for p in self.parts)

    def count(self) -> int:
        return sum(len(p.steps) if type(p) is PlainSeries else len(p) for p in self.parts)

    def summaries(self, positions: dict[str, int]) -> list[tuple]:
        """``run_metrics`` rows: what ``summaries.run_metric_rows`` gives of the rows."""
        claims = NameClaims()
        out = []
        for group in sorted(self.groups, key=lambda g: (positions.get(g[0], NO_POSITION), g[0], g[1])):
            position = positions.get(group[0], NO_POSITION)
            name = claims.claim(*group)
            found = self.groups[group]
            out.append(found.summary(self.run_id, name, position) if type(found) is PlainSeries
                       else summary_row(self.run_id, name, *group, position, found))
        return out

    def tiles(self) -> list[tuple]:
        """``metric_tiles`` rows: what ``tiles.tile_rows`` gives of the rows."""
        out: list[tuple] = []
        for (step_name, key), found in self.groups.items():
            if type(found) is PlainSeries:
                if found.values is not None and len(found.steps) >= TILED_FROM:
                    out += series_tiles(self.run_id, step_name, key, zip(found.steps, found.values))
            elif len(found) >= TILED_FROM:
                found.sort(key=operator.itemgetter(3))
                out += series_tiles(self.run_id, step_name, key, [(row[3], row[4]) for row in found])
        return out
