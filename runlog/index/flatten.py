"""Turn one RunLog into the rows of the index tables. Pure functions, no SQLite.

The column order of every row is given by the ``*_COLUMNS`` tuples below, which
match the DDL in :mod:`runlog.index`. Metric semantics follow the index contract:

* G1/G2 ``steps.<s>.user_defined_metrics``: a dict whose keys are all decimal
  strings is a step series (one row per step); any other value is step 0.
* G3 attempt ``user_defined_metrics`` (latest attempt): values are
  ``{"kind": "metric", "value": v}``; a list of numbers is steps 0..n-1 and a
  list of ``[field, value]`` pairs (a pydantic model) is read as a dict.
* nested dicts flatten to dotted keys (``eggs.ham``); bool -> kind ``bool``,
  int/float -> ``numeric``, str -> ``text``, anything else -> ``json``.

>>> [p[:5] for p in metric_points({"loss": {"0": 0.9, "2": 0.3}, "eggs": {"ham": "hi"}})]
[('loss', 0, 0.9, None, 'numeric'), ('loss', 2, 0.3, None, 'numeric'), ('eggs.ham', 0, None, 'hi', 'text')]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import datetime, timedelta, timezone
from typing import Any

from ..models import RunLog, StepAttempt, StepLog, as_parameter, parse_duration, parse_time
from ..values import json_safe
from .summaries import group_series, run_metric_rows, run_param_rows
from .tiles import tile_rows

RUN_COLUMNS = (
    "run_id", "tag", "status", "dag_hash", "use_cached", "original_run_id", "start_time", "end_time",
    "duration_s", "format", "layout", "source_path", "ingested_at", "parameters", "run_config",
)
STEP_COLUMNS = ("run_id", "step_name", "name", "branch", "step_type", "status", "message", "mock", "position")
ATTEMPT_COLUMNS = (
    "run_id", "step_name", "attempt_number", "status", "start_time", "end_time", "duration_s", "message",
    "retry_indicator",
)
METRIC_COLUMNS = ("run_id", "step_name", "key", "step", "value", "value_text", "kind", "timestamp_ms")
PARAM_COLUMNS = ("run_id", "step_name", "attempt_number", "direction", "key", "kind", "value", "value_text")
CATALOG_COLUMNS = (
    "run_id", "step_name", "name", "data_hash", "catalog_relative_path", "catalog_handler_location", "stage",
)
CODE_IDENTITY_COLUMNS = (
    "run_id", "step_name", "attempt_number", "code_identifier", "code_identifier_type",
    "code_identifier_dependable", "code_identifier_url", "code_identifier_message",
)

# Step keys of a series: decimal digits that fit a SQLite INTEGER.
_STEP_KEY = re.compile(r"^[0-9]{1,18}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class FlatRun:
    """The rows of one run, per table, as tuples in ``*_COLUMNS`` order."""

    run: tuple
    steps: list[tuple] = field(default_factory=list)
    attempts: list[tuple] = field(default_factory=list)
    metrics: list[tuple] = field(default_factory=list)
    params: list[tuple] = field(default_factory=list)
    catalog: list[tuple] = field(default_factory=list)
    code_identities: list[tuple] = field(default_factory=list)
    run_metrics: list[tuple] = field(default_factory=list)  # run-level names and summaries
    run_params: list[tuple] = field(default_factory=list)
    metric_tiles: list[tuple] = field(default_factory=list)  # of long series, for charts

    @property
    def run_id(self) -> str:
        return self.run[0]


def flatten_run(run: RunLog, *, layout: str = "file-system", source_path: str = "", ingested_at: str = "") -> FlatRun:
    """All index rows of ``run``.

    >>> flat = flatten_run(RunLog.model_validate({"run_id": "r1", "steps": {}}))
    >>> dict(zip(RUN_COLUMNS, flat.run))["format"]
    'g1'
    """
    flat = FlatRun(run=run_row(run, layout=layout, source_path=source_path, ingested_at=ingested_at))
    flat.steps = step_rows(run)
    flat.attempts = _unique(attempt_rows(run), 3)
    flat.metrics = _unique(metric_rows(run), 4)
    flat.params = _unique(param_rows(run), 5)
    flat.catalog = list(catalog_rows(run))
    flat.code_identities = list(code_identity_rows(run))
    positions = {row[1]: row[8] for row in flat.steps}
    series = group_series(flat.metrics)
    flat.run_metrics = run_metric_rows(run.run_id, series, positions)
    flat.metric_tiles = tile_rows(run.run_id, series)
    flat.run_params = run_param_rows(run.run_id, flat.params, positions)
    return flat


# -- runs ---------------------------------------------------------------------


def run_row(run: RunLog, *, layout: str, source_path: str, ingested_at: str) -> tuple:
    start, end = run_times(run)
    duration = (_utc(parse_time(end)) - _utc(parse_time(start))).total_seconds() if start and end else None
    return (
        run.run_id, run.tag or "", run.status, run.dag_hash or "", int(bool(run.use_cached)),
        run.original_run_id or "", start, end, duration, run.generation(), layout, source_path, ingested_at,
        json_text(run.parameters), json_text(run.run_config),
    )


def run_times(run: RunLog) -> tuple[str | None, str | None]:
    """The earliest attempt start and the latest attempt end, as written in the log."""
    starts, ends = [], []
    for step in run.iter_steps():
        for attempt in step.attempts:
            if (moment := parse_time(attempt.start_time)) is not None:
                starts.append((_utc(moment), attempt.start_time))
            if (moment := parse_time(attempt.end_time)) is not None:
                ends.append((_utc(moment), attempt.end_time))
    return (min(starts)[1] if starts else None, max(ends)[1] if ends else None)


# -- steps, attempts, catalog, code identities ----------------------------------


def iter_steps_with_branch(steps: dict[str, StepLog], branch: str = "") -> Iterator[tuple[StepLog, str]]:
    """``(step, internal name of its branch)`` in RunLog.iter_steps() order."""
    for step in steps.values():
        yield step, branch
        for name, child in step.branches.items():
            yield from iter_steps_with_branch(child.steps, child.internal_name or name)


def step_rows(run: RunLog) -> list[tuple]:
    rows: dict[str, tuple] = {}
    for position, (step, branch) in enumerate(iter_steps_with_branch(run.steps)):
        rows[step.internal_name] = (
            run.run_id, step.internal_name, step.name, branch, step.step_type, step.status,
            step.message, int(bool(step.mock)), position,
        )
    return list(rows.values())


def attempt_rows(run: RunLog) -> Iterator[tuple]:
    for step in run.iter_steps():
        for a in step.attempts:
            yield (
                run.run_id, step.internal_name, a.attempt_number, a.status, a.start_time or None,
                a.end_time or None, attempt_seconds(a), a.message, a.retry_indicator,
            )


def attempt_seconds(attempt: StepAttempt) -> float | None:
    """Seconds from start to end (mixed naive/aware times read as UTC), else the stored duration."""
    start, end = parse_time(attempt.start_time), parse_time(attempt.end_time)
    if start and end:
        return (_utc(end) - _utc(start)).total_seconds()
    return parse_duration(attempt.duration)


def catalog_rows(run: RunLog) -> Iterator[tuple]:
    for step in run.iter_steps():
        for c in step.data_catalog:
            yield (
                run.run_id, step.internal_name, c.name, c.data_hash, c.catalog_relative_path,
                c.catalog_handler_location, c.stage,
            )


def code_identity_rows(run: RunLog) -> Iterator[tuple]:
    for step in run.iter_steps():
        placed = [(0, c) for c in step.code_identities]
        placed += [(a.attempt_number, c) for a in step.attempts for c in (a.code_identities or [])]
        for attempt_number, c in placed:
            dependable = None if c.code_identifier_dependable is None else int(c.code_identifier_dependable)
            yield (
                run.run_id, step.internal_name, attempt_number, c.code_identifier, c.code_identifier_type,
                dependable, c.code_identifier_url, c.code_identifier_message,
            )


# -- parameters -------------------------------------------------------------------


def param_rows(run: RunLog) -> Iterator[tuple]:
    """Run-level parameters (step_name '', attempt 0, direction 'run'), then every attempt's."""
    for key, raw in run.parameters.items():
        p = as_parameter(raw)
        yield (run.run_id, "", 0, "run", key, p.kind, _number(p.value), json_text(p.value))
    for step in run.iter_steps():
        for attempt in step.attempts:
            for direction, key, p in attempt.parameters_by_direction():
                yield (
                    run.run_id, step.internal_name, attempt.attempt_number, direction, key, p.kind,
                    _number(p.value), json_text(p.value),
                )


# -- metrics ------------------------------------------------------------------------


def metric_rows(run: RunLog) -> Iterator[tuple]:
    """Metric rows of every step: the step-level (G1/G2) and latest-attempt (G3) metrics.

    The rows are those of :func:`step_metric_points`; series of plain floats (the bulk
    of any real log) take a fast path that builds the rows directly.
    """
    run_id = run.run_id
    for step in run.iter_steps():
        latest = step.latest_attempt()
        stamp = timestamp_ms(latest.end_time) if latest else None
        yield from _fast_metric_rows(run_id, step, latest, stamp)


def _fast_metric_rows(run_id: str, step: StepLog, latest: StepAttempt | None, stamp: int | None) -> list[tuple]:
    """The rows of ``step_metric_points(step, latest)``, built without a generator per value."""
    name = step.internal_name
    rows: list[tuple] = []
    add = rows.append

    def general(points: Iterator[tuple]) -> None:
        for key, step_no, value, text, kind in points:
            add((run_id, name, key, step_no, value, text, kind, stamp))

    for key, raw in step.user_defined_metrics.items():
        if is_series(raw):
            for step_key, value in raw.items():
                if type(value) is float and value == value:
                    add((run_id, name, key, int(step_key), value, None, "numeric", stamp))
                else:
                    general(value_points(key, int(step_key), value))
        else:
            general(value_points(key, 0, raw))
    if latest is None:
        return rows
    tracked = latest.user_defined_metrics or {}
    outputs = {
        k: v for k, v in (latest.output_parameters or {}).items()
        if k not in tracked and as_parameter(v).kind == "metric"
    }
    for metrics in (tracked, outputs):
        for key, raw in metrics.items():
            value = as_parameter(raw).value
            curve = _number_list_rows(run_id, name, key, value, stamp) if type(value) is list else None
            if curve is not None:
                rows += curve
            else:
                general(g3_metric_points({key: raw}))
    return rows


def _number_list_rows(run_id: str, name: str, key: str, value: list, stamp: int | None) -> list[tuple] | None:
    """The rows of a G3 curve (a non-empty list of numbers, steps 0..n-1); None if ``value`` is not one."""
    rows: list[tuple] = []
    add = rows.append
    for step_no, number in enumerate(value):
        kind = type(number)
        if kind is float and number == number:
            add((run_id, name, key, step_no, number, None, "numeric", stamp))
        elif isinstance(number, (int, float)) and not isinstance(number, bool):
            for point in value_points(key, step_no, number):
                add((run_id, name, *point, stamp))
        else:
            return None
    return rows or None


def step_metric_points(step: StepLog, latest: StepAttempt | None) -> Iterator[tuple]:
    yield from metric_points(step.user_defined_metrics)
    if latest is None:
        return
    tracked = latest.user_defined_metrics or {}
    yield from g3_metric_points(tracked)
    # A G3 ``metric`` output parameter is a metric even if user_defined_metrics missed it.
    outputs = {
        k: v for k, v in (latest.output_parameters or {}).items()
        if k not in tracked and as_parameter(v).kind == "metric"
    }
    yield from g3_metric_points(outputs)


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
        value = as_parameter(raw).value
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
        number = _number(value)
        if number is None:  # an int too large for a REAL: keep its digits
            return None, str(value), "json"
        return number, None, "numeric"
    if isinstance(value, str):
        return None, value, "text"
    return None, json_text(value), "json"


def is_series(value: Any) -> bool:
    """A G1/G2 step series: a non-empty dict whose keys are all decimal strings."""
    if not isinstance(value, dict) or not value:
        return False
    for k in value:
        # ASCII digits (isdigit() alone also takes other scripts' digits); the regex decides the rest.
        if not (type(k) is str and len(k) <= 18 and k.isdigit() and k.isascii()):
            if not (isinstance(k, str) and _STEP_KEY.match(k)):
                return False
    return True


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


# -- helpers --------------------------------------------------------------------------


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
    return (_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _number(value: Any) -> float | None:
    """A REAL for int/float (not bool); None otherwise, for NaN, or when it does not fit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return None if math.isnan(number) else number


def _unique(rows, key_len: int) -> list[tuple]:
    """Rows made unique on their primary key (the first ``key_len`` columns); the last one wins."""
    rows = list(rows)
    found = dict(zip(map(itemgetter(slice(0, key_len)), rows), rows))
    return rows if len(found) == len(rows) else list(found.values())
