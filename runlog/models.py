"""Run-log models: one canonical form for every released generation.

The models follow the seed's JSON (runnable 0.1-0.5) field for field. Fields
that only some generations carry (G3's ``job``, attempt-level metrics and code
identities, ``retry_indicator``, G2's ``input_parameters``...) are written back
only when they were read, and unknown keys are kept (``extra="allow"``), so
read -> write -> read loses nothing.

>>> run = RunLog.model_validate({"run_id": "r1", "steps": {}})
>>> run.to_json_dict()["use_cached"]
False
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

Status = str  # CREATED, PROCESSING, SUCCESS, FAIL (kept open: real logs are not policed)
Generation = Literal["g1", "g2", "g3"]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

PARAMETER_KINDS = ("json", "metric", "object")


class _Model(BaseModel):
    """Base: unknown keys kept; generation-specific fields written only when set."""

    # NaN and infinities are written as JSON's usual NaN/Infinity literals, as runnable did.
    model_config = ConfigDict(extra="allow", populate_by_name=True, ser_json_inf_nan="constants")

    # Fields written back only when present in what was read (or set by code).
    optional_fields: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler):
        data = handler(self)
        for name in self.optional_fields:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


class CodeIdentity(_Model):
    code_identifier: str | None = ""
    code_identifier_type: str | None = "git"
    code_identifier_dependable: bool | None = False
    code_identifier_url: str | None = ""
    code_identifier_message: str | None = ""


class DataCatalog(_Model):
    name: str
    data_hash: str = ""
    catalog_relative_path: str = ""
    catalog_handler_location: str = ""
    stage: str = ""


class Parameter(_Model):
    """A typed parameter (G3): ``{"kind": "json"|"metric"|"object", "value": ...}``.

    Older generations store raw values; :func:`as_parameter` wraps them with kind ``raw``.
    """

    kind: str = "json"
    value: Any = None
    description: Any = None
    optional_fields: ClassVar[frozenset[str]] = frozenset({"description"})


def as_parameter(value: Any) -> Parameter:
    """Read one stored parameter value of any generation as a :class:`Parameter`.

    >>> as_parameter({"kind": "metric", "value": 0.5}).kind
    'metric'
    >>> as_parameter(3).kind
    'raw'
    """
    if isinstance(value, dict) and value.get("kind") in PARAMETER_KINDS and "value" in value:
        return Parameter.model_validate(value)
    return Parameter(kind="raw", value=value)


class StepAttempt(_Model):
    attempt_number: int = 1
    start_time: str | None = ""
    end_time: str | None = ""
    duration: str | None = ""
    status: Status = "FAIL"
    message: str | None = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    # G2 (runnable <= 0.5) and G3 name parameters by direction.
    input_parameters: dict[str, Any] | None = None
    output_parameters: dict[str, Any] | None = None
    # G3 keeps metrics and code identities per attempt.
    user_defined_metrics: dict[str, Any] | None = None
    retry_indicator: str | None = None
    code_identities: list[CodeIdentity] | None = None

    optional_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "duration",
            "parameters",
            "input_parameters",
            "output_parameters",
            "user_defined_metrics",
            "retry_indicator",
            "code_identities",
        }
    )

    @property
    def start(self) -> datetime | None:
        return parse_time(self.start_time)

    @property
    def end(self) -> datetime | None:
        return parse_time(self.end_time)

    def duration_seconds(self) -> float | None:
        """Seconds from start to end, or from the stored ``duration`` when times are missing."""
        if self.start and self.end:
            return (self.end - self.start).total_seconds()
        return parse_duration(self.duration)

    def parameters_by_direction(self) -> Iterator[tuple[str, str, Parameter]]:
        """Yield ``(direction, key, Parameter)`` for every parameter of the attempt."""
        for direction, params in (
            ("input", self.parameters),
            ("input", self.input_parameters),
            ("output", self.output_parameters),
        ):
            for key, value in (params or {}).items():
                yield direction, key, as_parameter(value)


class BranchLog(_Model):
    internal_name: str
    status: Status = "CREATED"
    steps: dict[str, StepLog] = Field(default_factory=dict)
    parameters: dict[str, Any] | None = None  # G3
    optional_fields: ClassVar[frozenset[str]] = frozenset({"parameters"})


class StepLog(_Model):
    name: str
    internal_name: str
    status: Status = "CREATED"
    step_type: str = "task"
    message: str | None = ""
    mock: bool = False
    code_identities: list[CodeIdentity] = Field(default_factory=list)
    attempts: list[StepAttempt] = Field(default_factory=list)
    user_defined_metrics: dict[str, Any] = Field(default_factory=dict)
    branches: dict[str, BranchLog] = Field(default_factory=dict)
    data_catalog: list[DataCatalog] = Field(default_factory=list)

    # G3 step logs carry neither of these at step level.
    optional_fields: ClassVar[frozenset[str]] = frozenset({"code_identities", "user_defined_metrics"})

    def all_code_identities(self) -> list[CodeIdentity]:
        """Code identities of the step, wherever the generation put them."""
        found = list(self.code_identities)
        for attempt in self.attempts:
            found.extend(attempt.code_identities or [])
        return found

    def latest_attempt(self) -> StepAttempt | None:
        return max(self.attempts, key=lambda a: a.attempt_number, default=None)


class RunLog(_Model):
    run_id: str
    dag_hash: str | None = ""
    use_cached: bool = False
    tag: str | None = ""
    original_run_id: str | None = ""
    status: Status = "CREATED"
    steps: dict[str, StepLog] = Field(default_factory=dict)
    job: Any = None  # G3 only
    parameters: dict[str, Any] = Field(default_factory=dict)
    run_config: Any = Field(default_factory=dict)

    optional_fields: ClassVar[frozenset[str]] = frozenset({"job"})

    # -- canonical views -------------------------------------------------
    def generation(self) -> Generation:
        """Which shape the log is in: g1 (magnus 0.5, attempt ``parameters``), g2 (the
        seed's shape: runnable 0.1-0.5, raw ``input_parameters``, and every run runlog
        records), g3 (runnable 0.6+, typed parameters and per-attempt metrics)."""
        if "job" in self.model_fields_set:
            return "g3"
        if seed_shaped_config(self.run_config):  # attempt `parameters` alone would read as magnus
            return "g2"
        saw_g2 = False
        for step in self.iter_steps():
            for attempt in step.attempts:
                fields = attempt.model_fields_set
                if fields & {"retry_indicator", "user_defined_metrics", "code_identities"}:
                    return "g3"
                if fields & {"input_parameters", "output_parameters"}:
                    saw_g2 = True
        if any(as_parameter(v).kind != "raw" for v in self.parameters.values()):
            return "g3"
        return "g2" if saw_g2 else "g1"

    def iter_steps(self) -> Iterator[StepLog]:
        """Every step at every depth, parents before the steps of their branches."""
        yield from _walk(self.steps)

    def iter_branches(self) -> Iterator[tuple[str, BranchLog]]:
        """``(parent step internal name, branch)`` for every branch at every depth."""
        for step in self.iter_steps():
            for branch in step.branches.values():
                yield step.internal_name, branch

    def find_step(self, internal_name: str) -> StepLog | None:
        return next((s for s in self.iter_steps() if s.internal_name == internal_name), None)

    def times(self) -> tuple[datetime | None, datetime | None]:
        """Start of the earliest attempt and end of the latest one."""
        starts, ends = [], []
        for step in self.iter_steps():
            for attempt in step.attempts:
                if attempt.start:
                    starts.append(attempt.start)
                if attempt.end:
                    ends.append(attempt.end)
        return (min(starts, default=None), max(ends, default=None))

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int | None = 4) -> str:
        return json.dumps(self.to_json_dict(), indent=indent, allow_nan=True)


def seed_shaped_config(run_config: Any) -> bool:
    """Whether a run_config is in the seed's shape (runnable 0.1-0.5, and every run runlog
    records): its executor has ``placeholders``, where magnus 0.5's has ``overrides``.

    >>> seed_shaped_config({"executor": {"placeholders": {}}}), seed_shaped_config({"executor": {"overrides": {}}})
    (True, False)
    """
    executor = run_config.get("executor") if isinstance(run_config, dict) else None
    return isinstance(executor, dict) and "placeholders" in executor


def _walk(steps: dict[str, StepLog]) -> Iterator[StepLog]:
    for step in steps.values():
        yield step
        for branch in step.branches.values():
            yield from _walk(branch.steps)


def parse_time(text: str | None) -> datetime | None:
    """Parse a run-log time (``YYYY-MM-DD HH:MM:SS.ffffff``, or ISO); ``None`` when empty."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:  # compare with the naive times of other steps as UTC
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def format_time(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


_DURATION = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def parse_duration(text: str | None) -> float | None:
    """``"0:00:00.008643"`` (str of a timedelta) -> seconds."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


BranchLog.model_rebuild()
StepLog.model_rebuild()


def run_log_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a run log (``schema/runlog.schema.json``)."""
    schema = RunLog.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "A runnable/magnus run log as runlog reads and writes it. Unknown keys are allowed "
        "everywhere and kept; fields marked optional appear only in some generations."
    )
    return schema


def run_log_json_schema_text() -> str:
    return json.dumps(run_log_json_schema(), indent=2, sort_keys=True) + "\n"

