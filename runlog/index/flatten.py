"""Turn one run log into the rows of the index's tables: the one flattener, for ingest
(SQLite) and for the lake (Parquet) alike. Pure functions, no SQLite, no Arrow.

It reads a run log of any generation as parsed JSON (:func:`flatten_json`), taking
only the usual shapes: every field the models know absent or of its exact JSON type
(a string, a bool, an int, a list, an object). Anything else (a number where a string
belongs, ``"1"`` for an attempt number...) raises :class:`Unusual`; the caller then
reads the log through the models, which validate it (a bad log is reported) and give
its canonical form, flattened the same way (:func:`flatten_run`). :func:`flatten_parsed`
does both.

The column order of every row is given by the ``*_COLUMNS`` tuples below, which
match the DDL in :mod:`runlog.index.schema`. Metric semantics follow the index contract:

* G1/G2 ``steps.<s>.user_defined_metrics``: a dict whose keys are all decimal
  strings is a step series (one row per step); any other value is step 0.
* G3 attempt ``user_defined_metrics`` (latest attempt): values are
  ``{"kind": "metric", "value": v}``; a list of numbers is steps 0..n-1 and a
  list of ``[field, value]`` pairs (a pydantic model) is read as a dict.
* what one value becomes: :mod:`runlog.index.points`.

>>> flat = flatten_json({"run_id": "r1", "steps": {"s": {"name": "s", "internal_name": "s",
...     "user_defined_metrics": {"loss": {"0": 0.5, "1": 0.25}}}}})
>>> [row[2:5] for row in flat.metric_rows()], flat.run_metrics[0][1], flat.run_metrics[0][9]
([('loss', 0, 0.5), ('loss', 1, 0.25)], 'loss', 0.25)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..models import RunLog, parse_duration, parse_time, seed_shaped_config
from ..store.jsonio import run_from_json
from .points import MetricPoints, json_text, number, parameter, step_keys, timestamp_ms, unique, utc, value_points
from .summaries import run_param_rows

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


class Unusual(Exception):
    """The log has a shape :func:`flatten_json` does not take: read it through the models."""


@dataclass
class FlatRun:
    """The rows of one run, per table, as tuples in ``*_COLUMNS`` order; the metric
    points in ``points`` (whole series where they are plain: :meth:`metric_rows` gives
    them as rows, the lake takes the series as columns)."""

    run: tuple
    steps: list[tuple]
    attempts: list[tuple]
    params: list[tuple]
    catalog: list[tuple]
    code_identities: list[tuple]
    points: MetricPoints
    run_metrics: list[tuple] = field(default_factory=list)  # run-level names and summaries
    run_params: list[tuple] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run[0]

    def metric_rows(self) -> Iterator[tuple]:
        """The ``metrics`` rows, in the order of the log, made as they are read."""
        return self.points.rows()

    @cached_property
    def metrics(self) -> list[tuple]:
        """The ``metrics`` rows as a list."""
        return list(self.points.rows())

    @cached_property
    def metric_count(self) -> int:
        return self.points.count()

    @cached_property
    def metric_tiles(self) -> list[tuple]:
        """``metric_tiles`` rows of the long series, for charts (only the index keeps them)."""
        return self.points.tiles()


def flatten_parsed(data: Any, path: Path | str, *, layout: str = "file-system", source_path: str = "",
                   ingested_at: str = "") -> FlatRun:
    """The rows of parsed run-log JSON: straight from it when its shape is the usual one,
    else through the models (a log they refuse raises BadRunLog naming ``path``).

    >>> flatten_parsed({"run_id": "r1", "steps": {}}, "r1.json").run_id
    'r1'
    """
    try:
        return flatten_json(data, layout=layout, source_path=source_path, ingested_at=ingested_at)
    except Unusual:
        return flatten_run(run_from_json(data, path), layout=layout, source_path=source_path, ingested_at=ingested_at)


def flatten_run(run: RunLog, *, layout: str = "file-system", source_path: str = "", ingested_at: str = "") -> FlatRun:
    """All index rows of a validated ``run``: its canonical JSON form, flattened.

    >>> flat = flatten_run(RunLog.model_validate({"run_id": "r1", "steps": {}}))
    >>> dict(zip(RUN_COLUMNS, flat.run))["format"]
    'g1'
    """
    # Fields the log did not hold stay out of the dump (models.optional_fields): the generation shows.
    return flatten_json(run.model_dump(), layout=layout, source_path=source_path, ingested_at=ingested_at)


def flatten_json(data: Any, *, layout: str = "file-system", source_path: str = "", ingested_at: str = "") -> FlatRun:
    """All index rows of the run log ``data`` (parsed JSON), or :class:`Unusual`."""
    if type(data) is not dict or type(data.get("run_id")) is not str:
        raise Unusual("run_id")
    for key in ("dag_hash", "tag", "original_run_id"):
        _get(data, key, str, "", True)
    _get(data, "status", str, "CREATED")
    _get(data, "use_cached", bool, False)
    _get(data, "parameters", dict, None)
    run_id = data["run_id"]
    steps = list(_walk(data.get("steps", {})))  # every field checked before any row is made
    step_rows: dict[str, tuple] = {}
    for position, step in enumerate(steps):
        d = step.data
        step_rows[step.internal_name] = (
            run_id, step.internal_name, d["name"], step.branch, d.get("step_type", "task"), d.get("status", "CREATED"),
            d.get("message", ""), int(d.get("mock", False)), position)
    positions = {row[1]: row[8] for row in step_rows.values()}
    params = unique(_param_rows(run_id, data.get("parameters", {}), steps), 5)
    points = _metric_points(run_id, steps)
    return FlatRun(
        run=_run_row(data, steps, layout, source_path, ingested_at),
        steps=list(step_rows.values()),
        attempts=unique(_attempt_rows(run_id, steps), 3),
        params=params,
        catalog=[(run_id, s.internal_name, c["name"], *(c.get(k, "") for k in _CATALOG_FIELDS))
                 for s in steps for c in s.data.get("data_catalog", [])],
        code_identities=list(_code_rows(run_id, steps)),
        points=points,
        run_metrics=points.summaries(positions),
        run_params=run_param_rows(run_id, params, positions),
    )


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


@dataclass
class _Step:
    """One step log, checked: what the rows need."""

    data: dict
    branch: str
    internal_name: str
    attempts: list[dict] = field(default_factory=list)


_ATTEMPT_FIELDS = (("start_time", str, "", True), ("end_time", str, "", True), ("duration", str, "", True),
                   ("status", str, "FAIL", False), ("message", str, "", True), ("retry_indicator", str, None, True))
_STEP_FIELDS = (("status", str, "CREATED", False), ("step_type", str, "task", False), ("message", str, "", True),
                ("mock", bool, False, False))
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
        for key, kind, default, nullable in _STEP_FIELDS:
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


# -- runs, attempts, code identities, parameters --------------------------------------


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
    if any(parameter(v)[0] != "raw" for v in data.get("parameters", {}).values()):
        return "g3"
    return "g2" if saw_g2 else "g1"


def _run_row(data: dict, steps: list[_Step], layout: str, source_path: str, ingested_at: str) -> tuple:
    """The runs row; its times are the earliest attempt start and the latest attempt end, as written."""
    starts, ends = [], []
    for step in steps:
        for attempt in step.attempts:
            text = attempt.get("start_time", "")
            if (moment := parse_time(text)) is not None:
                starts.append((utc(moment), text))
            text = attempt.get("end_time", "")
            if (moment := parse_time(text)) is not None:
                ends.append((utc(moment), text))
    start = min(starts)[1] if starts else None
    end = max(ends)[1] if ends else None
    duration = (utc(parse_time(end)) - utc(parse_time(start))).total_seconds() if start and end else None
    return (
        data["run_id"], data.get("tag", "") or "", data.get("status", "CREATED"), data.get("dag_hash", "") or "",
        int(data.get("use_cached", False)), data.get("original_run_id", "") or "", start, end, duration,
        _generation(data, steps), layout, source_path, ingested_at, json_text(data.get("parameters", {})),
        json_text(data.get("run_config", {})),
    )


def _attempt_rows(run_id: str, steps: list[_Step]) -> Iterator[tuple]:
    """Seconds from start to end (mixed naive/aware times read as UTC), else the stored duration."""
    for step in steps:
        for a in step.attempts:
            start, end = parse_time(a.get("start_time", "")), parse_time(a.get("end_time", ""))
            seconds = (utc(end) - utc(start)).total_seconds() if start and end else parse_duration(a.get("duration", ""))
            yield (run_id, step.internal_name, a.get("attempt_number", 1), a.get("status", "FAIL"),
                   a.get("start_time", "") or None, a.get("end_time", "") or None, seconds, a.get("message", ""),
                   a.get("retry_indicator"))


def _code_rows(run_id: str, steps: list[_Step]) -> Iterator[tuple]:
    """Code identities of the step (attempt 0), then of each attempt."""
    for step in steps:
        placed = [(0, c) for c in step.data.get("code_identities", [])]
        placed += [(a.get("attempt_number", 1), c) for a in step.attempts for c in (a.get("code_identities") or [])]
        for attempt_number, c in placed:
            dependable = c.get("code_identifier_dependable", False)
            yield (run_id, step.internal_name, attempt_number, c.get("code_identifier", ""),
                   c.get("code_identifier_type", "git"), None if dependable is None else int(dependable),
                   c.get("code_identifier_url", ""), c.get("code_identifier_message", ""))


def _param_rows(run_id: str, parameters: dict, steps: list[_Step]) -> Iterator[tuple]:
    """Run-level parameters (step_name '', attempt 0, direction 'run'), then every attempt's."""
    for key, raw in parameters.items():
        kind, value = parameter(raw)
        yield (run_id, "", 0, "run", key, kind, number(value), json_text(value))
    for step in steps:
        for attempt in step.attempts:
            attempt_number = attempt.get("attempt_number", 1)
            for direction, name in (("input", "parameters"), ("input", "input_parameters"),
                                    ("output", "output_parameters")):
                for key, raw in (attempt.get(name) or {}).items():
                    kind, value = parameter(raw)
                    yield (run_id, step.internal_name, attempt_number, direction, key, kind, number(value),
                           json_text(value))


# -- metrics ------------------------------------------------------------------------


def _metric_points(run_id: str, steps: list[_Step]) -> MetricPoints:
    """The metric points of every step: its G1/G2 metrics, then its latest attempt's (G3),
    stamped with that attempt's end."""
    points = MetricPoints(run_id)
    for step in steps:
        name = step.internal_name
        latest = max(step.attempts, key=lambda a: a.get("attempt_number", 1), default=None)
        stamp = timestamp_ms(latest.get("end_time", "")) if latest is not None else None
        for key, raw in step.data.get("user_defined_metrics", {}).items():
            keys = step_keys(raw)
            if keys is None:
                points.add_points(name, value_points(key, 0, raw), stamp)
            else:
                points.add_series(name, key, list(map(int, keys)), list(raw.values()), stamp)
        if latest is None:
            continue
        tracked = latest.get("user_defined_metrics") or {}
        # A G3 ``metric`` output parameter is a metric even if user_defined_metrics missed it.
        outputs = {k: v for k, v in (latest.get("output_parameters") or {}).items()
                   if k not in tracked and parameter(v)[0] == "metric"}
        for metrics in (tracked, outputs):
            for key, raw in metrics.items():
                points.add_g3(name, key, raw, stamp)
    points.settle()
    return points
