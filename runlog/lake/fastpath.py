"""A run log's rows straight from its parsed JSON, without the pydantic models: the
same rows as :func:`runlog.index.flatten.flatten_run` of the validated
:class:`~runlog.models.RunLog`, with the metric series as whole columns.

It takes only the usual shapes: every field the models know is absent or of its
exact JSON type (a string, a bool, an int, a list, an object). Anything else (a
number where a string belongs, a step series whose steps are not increasing, a key
that two series share...) raises :class:`Unusual`, and the caller takes the model
path, which validates, reports a bad log, or gives the rows.

>>> flat = flatten_json({"run_id": "r1", "steps": {"s": {"name": "s", "internal_name": "s",
...     "user_defined_metrics": {"loss": {"0": 0.5, "1": 0.25}}}}}, layout="file-system",
...     source_path="r1.json", ingested_at="")
>>> flat.metrics[3], flat.run_metrics[0][1], flat.run_metrics[0][12]
([0, 1], 'loss', 0.25)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..index import flatten
from ..index.flatten import _number, _unique, _utc, json_text, timestamp_ms, value_points
from ..index.summaries import NO_POSITION, NameClaims, mean_of, run_param_rows, summary_row
from ..models import PARAMETER_KINDS, parse_duration, parse_time, seed_shaped_config
from .tables import new_column


class Unusual(Exception):
    """The log has a shape the fast path does not take: read it through the models."""


@dataclass
class FastRun:
    """The rows of one run; ``metrics`` as columns (METRIC_COLUMNS order; lists, or
    :class:`~.tables.Runs` where values repeat), the rest as tuples."""

    run: tuple
    steps: list[tuple]
    attempts: list[tuple]
    params: list[tuple]
    catalog: list[tuple]
    code_identities: list[tuple]
    metrics: list
    run_metrics: list[tuple]
    run_params: list[tuple]
    points: int = 0

    @property
    def run_id(self) -> str:
        return self.run[0]


# -- checking types ---------------------------------------------------------------


def _get(obj: dict, key: str, kind: type, default: Any, nullable: bool = False) -> Any:
    """``obj[key]`` when it is exactly of ``kind`` (or None where allowed), ``default`` when absent."""
    value = obj.get(key, default)
    if type(value) is kind or (value is None and nullable) or (value is default and key not in obj):
        return value
    raise Unusual(key)


def _dicts(value: Any) -> list[dict]:
    if type(value) is not list or any(type(v) is not dict for v in value):
        raise Unusual("list")
    return value


def _steps_dict(value: Any) -> dict:
    if type(value) is not dict or any(type(v) is not dict for v in value.values()):
        raise Unusual("steps")
    return value


def _parameter(raw: Any) -> tuple[str, Any]:
    """``(kind, value)`` as :func:`runlog.models.as_parameter` reads a stored parameter."""
    if isinstance(raw, dict) and raw.get("kind") in PARAMETER_KINDS and "value" in raw:
        return raw["kind"], raw["value"]
    return "raw", raw


@dataclass
class _Step:
    """One step log, checked: what the rows need."""

    data: dict
    branch: str
    internal_name: str
    attempts: list[dict] = field(default_factory=list)


_ATTEMPT_FIELDS = (("start_time", str, "", True), ("end_time", str, "", True), ("duration", str, "", True),
                   ("status", str, "FAIL", False), ("message", str, "", True), ("retry_indicator", str, None, True))
_CODE_FIELDS = (("code_identifier", str, "", True), ("code_identifier_type", str, "git", True),
                ("code_identifier_dependable", bool, False, True), ("code_identifier_url", str, "", True),
                ("code_identifier_message", str, "", True))
_CATALOG_FIELDS = ("data_hash", "catalog_relative_path", "catalog_handler_location", "stage")


def _check_attempt(attempt: dict) -> None:
    _get(attempt, "attempt_number", int, 1)
    for name, kind, default, nullable in _ATTEMPT_FIELDS:
        _get(attempt, name, kind, default, nullable)
    _get(attempt, "parameters", dict, None)
    for name in ("input_parameters", "output_parameters", "user_defined_metrics"):
        _get(attempt, name, dict, None, True)
    for identity in _dicts(attempt["code_identities"]) if attempt.get("code_identities") is not None else ():
        _check_code(identity)


def _check_code(identity: dict) -> None:
    for name, kind, default, nullable in _CODE_FIELDS:
        _get(identity, name, kind, default, nullable)


def _walk(steps: dict, branch: str = "") -> Iterator[_Step]:
    """Every step, checked, in RunLog.iter_steps() order, with the internal name of its branch."""
    for data in _steps_dict(steps).values():
        name = _get(data, "internal_name", str, None)
        if name is None or type(data.get("name")) is not str:
            raise Unusual("name")
        for key, kind, default, nullable in (("status", str, "CREATED", False), ("step_type", str, "task", False),
                                             ("message", str, "", True), ("mock", bool, False, False)):
            _get(data, key, kind, default, nullable)
        attempts = _dicts(data.get("attempts", []))
        for attempt in attempts:
            _check_attempt(attempt)
        for identity in _dicts(data.get("code_identities", [])):
            _check_code(identity)
        for entry in _dicts(data.get("data_catalog", [])):
            if type(entry.get("name")) is not str or any(type(entry.get(k, "")) is not str for k in _CATALOG_FIELDS):
                raise Unusual("data_catalog")
        _get(data, "user_defined_metrics", dict, None)
        yield _Step(data, branch, name, attempts)
        for key, child in _steps_dict(data.get("branches", {})).items():
            child_name = _get(child, "internal_name", str, None)
            if child_name is None or type(child.get("status", "")) is not str:
                raise Unusual("branch")
            _get(child, "parameters", dict, None, True)
            yield from _walk(child.get("steps", {}), child_name or key)


# -- the run ----------------------------------------------------------------------


def flatten_json(data: dict, *, layout: str, source_path: str, ingested_at: str) -> FastRun:
    """All lake rows of the run log ``data`` (parsed JSON), or :class:`Unusual`."""
    if type(data) is not dict or type(data.get("run_id")) is not str:
        raise Unusual("run_id")
    run_id = data["run_id"]
    for key in ("dag_hash", "tag", "original_run_id"):
        _get(data, key, str, "", True)
    _get(data, "status", str, "CREATED")
    _get(data, "use_cached", bool, False)
    _get(data, "parameters", dict, None)
    steps = list(_walk(data.get("steps", {})))
    step_rows: dict[str, tuple] = {}
    for position, step in enumerate(steps):
        d = step.data
        step_rows[step.internal_name] = (
            run_id, step.internal_name, d["name"], step.branch, d.get("step_type", "task"), d.get("status", "CREATED"),
            d.get("message", ""), int(d.get("mock", False)), position)
    positions = {row[1]: row[8] for row in step_rows.values()}
    params = _unique(_param_rows(run_id, data.get("parameters", {}), steps), 5)
    columns, run_metrics, points = _metrics(run_id, steps, positions)
    return FastRun(
        run=_run_row(data, steps, layout, source_path, ingested_at),
        steps=list(step_rows.values()),
        attempts=_unique(_attempt_rows(run_id, steps), 3),
        params=params,
        catalog=[(run_id, s.internal_name, c["name"], *(c.get(k, "") for k in _CATALOG_FIELDS))
                 for s in steps for c in s.data.get("data_catalog", [])],
        code_identities=list(_code_rows(run_id, steps)),
        metrics=columns,
        run_metrics=run_metrics,
        run_params=run_param_rows(run_id, params, positions),
        points=points,
    )


def _generation(data: dict, steps: list[_Step]) -> str:
    """RunLog.generation() of the log."""
    if "job" in data:
        return "g3"
    if seed_shaped_config(data.get("run_config", {})):
        return "g2"
    saw_g2 = False
    for step in steps:
        for attempt in step.attempts:
            if attempt.keys() & {"retry_indicator", "user_defined_metrics", "code_identities"}:
                return "g3"
            if attempt.keys() & {"input_parameters", "output_parameters"}:
                saw_g2 = True
    if any(_parameter(v)[0] != "raw" for v in data.get("parameters", {}).values()):
        return "g3"
    return "g2" if saw_g2 else "g1"


def _run_row(data: dict, steps: list[_Step], layout: str, source_path: str, ingested_at: str) -> tuple:
    starts, ends = [], []
    for step in steps:
        for attempt in step.attempts:
            text = attempt.get("start_time", "")
            if (moment := parse_time(text)) is not None:
                starts.append((_utc(moment), text))
            text = attempt.get("end_time", "")
            if (moment := parse_time(text)) is not None:
                ends.append((_utc(moment), text))
    start = min(starts)[1] if starts else None
    end = max(ends)[1] if ends else None
    duration = (_utc(parse_time(end)) - _utc(parse_time(start))).total_seconds() if start and end else None
    return (
        data["run_id"], data.get("tag", "") or "", data.get("status", "CREATED"), data.get("dag_hash", "") or "",
        int(data.get("use_cached", False)), data.get("original_run_id", "") or "", start, end, duration,
        _generation(data, steps), layout, source_path, ingested_at, json_text(data.get("parameters", {})),
        json_text(data.get("run_config", {})),
    )


def _attempt_rows(run_id: str, steps: list[_Step]) -> Iterator[tuple]:
    for step in steps:
        for a in step.attempts:
            start, end = parse_time(a.get("start_time", "")), parse_time(a.get("end_time", ""))
            seconds = (_utc(end) - _utc(start)).total_seconds() if start and end else parse_duration(a.get("duration", ""))
            yield (run_id, step.internal_name, a.get("attempt_number", 1), a.get("status", "FAIL"),
                   a.get("start_time", "") or None, a.get("end_time", "") or None, seconds, a.get("message", ""),
                   a.get("retry_indicator"))


def _code_rows(run_id: str, steps: list[_Step]) -> Iterator[tuple]:
    for step in steps:
        placed = [(0, c) for c in step.data.get("code_identities", [])]
        placed += [(a.get("attempt_number", 1), c) for a in step.attempts for c in (a.get("code_identities") or [])]
        for attempt_number, c in placed:
            dependable = c.get("code_identifier_dependable", False)
            yield (run_id, step.internal_name, attempt_number, c.get("code_identifier", ""),
                   c.get("code_identifier_type", "git"), None if dependable is None else int(dependable),
                   c.get("code_identifier_url", ""), c.get("code_identifier_message", ""))


def _param_rows(run_id: str, parameters: dict, steps: list[_Step]) -> Iterator[tuple]:
    for key, raw in parameters.items():
        kind, value = _parameter(raw)
        yield (run_id, "", 0, "run", key, kind, _number(value), json_text(value))
    for step in steps:
        for attempt in step.attempts:
            number = attempt.get("attempt_number", 1)
            for direction, name in (("input", "parameters"), ("input", "input_parameters"),
                                    ("output", "output_parameters")):
                for key, raw in (attempt.get(name) or {}).items():
                    kind, value = _parameter(raw)
                    yield (run_id, step.internal_name, number, direction, key, kind, _number(value), json_text(value))


# -- metrics ------------------------------------------------------------------------


class _Series:
    """The metric points of a run: series of one plain kind (floats, strings or bools,
    steps increasing) kept as columns, anything else as rows."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        # (step_name, key) -> (steps, values or None, texts or None, kind, stamp, mean)
        self.columns: dict[tuple[str, str], tuple] = {}
        self.rows: dict[tuple[str, str], list[tuple]] = {}

    def add_plain(self, name: str, key: str, steps: list[int], values: list, stamp: int | None) -> bool:
        """Keep a series of one plain kind as columns; False if it is not one."""
        kinds = set(map(type, values))
        if len(kinds) != 1 or not all(map(operator.lt, steps, steps[1:])):
            return False
        kind = kinds.pop()
        if kind is float:
            nan, mean = _mean_without_nan(values)
            if nan:
                return False
            column = (steps, values, None, "numeric", stamp, mean)
        elif kind is str:
            column = (steps, None, values, "text", stamp, None)
        elif kind is bool:
            column = (steps, None, ["true" if v else "false" for v in values], "bool", stamp, None)
        else:
            return False
        if (name, key) in self.columns or (name, key) in self.rows:
            raise Unusual("a key recorded twice in one step")
        self.columns[(name, key)] = column
        return True

    def add_points(self, name: str, points: Iterator[tuple], stamp: int | None) -> None:
        for key, step, value, text, kind in points:
            if (name, key) in self.columns:
                raise Unusual("a key recorded twice in one step")
            self.rows.setdefault((name, key), []).append((self.run_id, name, key, step, value, text, kind, stamp))


def _mean_without_nan(values: list[float]) -> tuple[bool, float | None]:
    """``(has NaN, mean as summaries.mean_of computes it)`` of floats."""
    try:
        total = math.fsum(values)
    except (ValueError, OverflowError):  # +inf with -inf, or a sum too large
        return any(v != v for v in values), mean_of(values)
    if total != total:
        return True, None
    return False, total / len(values)


def _step_key_list(raw: Any) -> list[str] | None:
    """The keys of a G1/G2 step series (decimal digits, 1 to 18 of them), else None."""
    if type(raw) is not dict or not raw:
        return None
    keys = list(raw)
    joined = "".join(keys)
    if joined.isdigit() and joined.isascii() and min(map(len, keys)) >= 1 and max(map(len, keys)) <= 18:
        return keys
    return None if not flatten.is_series(raw) else keys


def _add_series(series: _Series, name: str, key: str, steps: list[int], values: list, stamp: int | None) -> None:
    """One G1/G2 step series: as columns when its values are of one plain kind; a series of
    objects with the same fields is split into a series per field (``key.field``), as
    value_points names them; anything else point by point."""
    if series.add_plain(name, key, steps, values, stamp):
        return
    first = values[0]
    if type(first) is dict and first and all(type(v) is dict and v.keys() == first.keys() for v in values) \
            and all(list(v) == list(first) for v in values):
        for field_name in first:
            _add_series(series, name, f"{key}.{field_name}", steps, [v[field_name] for v in values], stamp)
        return
    for step_no, value in zip(steps, values):
        series.add_points(name, value_points(key, step_no, value), stamp)


def _collect(series: _Series, step: _Step) -> None:
    """The metric points of one step: step-level (G1/G2) and its latest attempt's (G3)."""
    name = step.internal_name
    latest = max(step.attempts, key=lambda a: a.get("attempt_number", 1), default=None)
    stamp = timestamp_ms(latest.get("end_time", "")) if latest is not None else None
    for key, raw in step.data.get("user_defined_metrics", {}).items():
        keys = _step_key_list(raw)
        if keys is None:
            series.add_points(name, value_points(key, 0, raw), stamp)
        else:
            _add_series(series, name, key, list(map(int, keys)), list(raw.values()), stamp)
    if latest is None:
        return
    tracked = latest.get("user_defined_metrics") or {}
    outputs = {k: v for k, v in (latest.get("output_parameters") or {}).items()
               if k not in tracked and _parameter(v)[0] == "metric"}
    for metrics in (tracked, outputs):
        for key, raw in metrics.items():
            value = _parameter(raw)[1]
            if type(value) is list and value and type(value[0]) is float and \
                    series.add_plain(name, key, list(range(len(value))), value, stamp):
                continue
            rows = flatten._number_list_rows(series.run_id, name, key, value, stamp) if type(value) is list else None
            points = [row[2:7] for row in rows] if rows is not None else flatten.g3_metric_points({key: raw})
            series.add_points(name, iter(points), stamp)


def _metrics(run_id: str, steps: list[_Step], positions: dict[str, int]) -> tuple[list, list[tuple], int]:
    """The metric columns (METRIC_COLUMNS order), the run_metrics rows, and the number of points."""
    series = _Series(run_id)
    for step in steps:
        _collect(series, step)
    columns = [new_column("metrics", c) for c in flatten.METRIC_COLUMNS]
    run_ids, names, keys, step_col, value_col, texts_col, kinds, stamps = columns
    for (name, key), (step_nos, values, texts, kind, stamp, _) in series.columns.items():
        n = len(step_nos)
        run_ids.add(run_id, n)
        names.add(name, n)
        keys.add(key, n)
        step_col.extend(step_nos)
        value_col.extend(values or [None] * n)
        texts_col.extend(texts or [None] * n)
        kinds.add(kind, n)
        stamps.add(stamp, n)
    for rows in series.rows.values():
        if len({row[3] for row in rows}) != len(rows):
            raise Unusual("a step recorded twice for one key")
        for column, values in zip(columns, zip(*rows)):
            column.extend(values)
    claims = NameClaims()
    summaries = []
    for group in sorted(series.columns.keys() | series.rows.keys(),
                        key=lambda g: (positions.get(g[0], NO_POSITION), g[0], g[1])):
        position = positions.get(group[0], NO_POSITION)
        name = claims.claim(*group)
        if group in series.rows:
            summaries.append(summary_row(run_id, name, *group, position, series.rows[group]))
        else:
            summaries.append(_plain_summary(run_id, name, group, position, series.columns[group]))
    return columns, summaries, len(step_col)


def _plain_summary(run_id: str, name: str, group: tuple[str, str], position: int, column: tuple) -> tuple:
    """summaries.summary_row of a plain series: floats without NaN, strings or bools, steps increasing,
    every point stamped with its attempt's end (one time)."""
    steps, values, texts, kind, stamp, mean = column
    if values is None:  # strings or bools: no number to sum up
        return (run_id, name, *group, position, kind, len(steps), None, steps[0], None, steps[-1], texts[-1],
                None, None, None, None, None, stamp, 1)
    low, high = min(values), max(values)
    return (run_id, name, *group, position, kind, len(values), values[0], steps[0], values[-1], steps[-1],
            None, low, steps[values.index(low)], high, steps[values.index(high)], mean, stamp, 1)
