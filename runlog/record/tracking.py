"""The tracking API of the seed: ``track_this``, ``RUNNABLE_TRACK_*`` variables, trackers.

Inside a step, ``track_this(step=0, **kwargs)`` records values into the step's
``user_defined_metrics``. The step being recorded is found through a context variable
(:func:`current_step`), so two threads, or two asyncio tasks, recording two steps at
once each record into their own. A process started by a step (``runlog exec``, or
``step.run_command``) records into the same step in two ways: its ``track_this``
calls go to a side file named by ``$RUNLOG_TRACK_FILE``, and the ``RUNNABLE_TRACK_*``
variables it exports are read from its environment when it ends. Both reach the child
only through the environment its runner builds for it (``StepRecorder.child_env``).

Recording changes no process-wide state: nothing is written to ``os.environ``, and the
process's own environment is never compared before and after a step. So
``os.environ["RUNNABLE_TRACK_x"] = "1"`` inside a Python step records nothing: one
environment is shared by every thread of the process, and a value set there cannot be
told apart between two steps recorded at once. Python code calls ``track_this``; a
shell command exports the variable.

>>> from runlog import track_this
>>> track_this(loss=0.5)           # doctest: +SKIP
>>> track_this(step=1, loss=0.3)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol

from pydantic import BaseModel

from ..errors import RunlogError

TRACK_FILE_ENV = "RUNLOG_TRACK_FILE"
TRACKER_ENV = "RUNLOG_EXPERIMENT_TRACKER"

_ENV_KEY = re.compile(r"^(?:RUNNABLE|MAGNUS)_TRACK_(.+?)(?:_STEP_(\d+))?$", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


class MetricSink(Protocol):
    """Where tracked values go: the step being recorded in this thread or task."""

    internal_name: str

    def record(self, key: str, step: int, value: Any) -> None: ...


@dataclass(frozen=True)
class _Recording:
    tracker: ExperimentTracker
    step: MetricSink | None  # None: inside a run, between its steps


_active: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar("runlog_recording", default=None)


def track_this(step: int = 0, **kwargs: Any) -> None:
    """Track values for the current step, at increment ``step`` (default 0).

    A pydantic model is stored as its dict, dumped by alias. Values tracked only at
    step 0 are stored bare; otherwise as ``{"<step>": value}``.

    >>> track_this(step=2, loss=0.1)   # doctest: +SKIP
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise RunlogError(f"track_this: step must be a non-negative int, not {step!r}")
    values = {key: normalise_value(value) for key, value in kwargs.items()}
    sink = current_step()
    if sink is not None:
        for key, value in values.items():
            sink.record(key, step, value)
        return
    track_file = os.environ.get(TRACK_FILE_ENV)  # set for this process by the step that started it
    if track_file:
        append_tracked(track_file, step, values)
        return
    warnings.warn("track_this called outside a runlog step: values not recorded", stacklevel=2)


def normalise_value(value: Any) -> Any:
    """A pydantic model becomes its JSON dict by alias; other values pass through."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json")
    return value


@contextlib.contextmanager
def recording(tracker: ExperimentTracker, step: MetricSink | None = None) -> Iterator[None]:
    """While the block runs, this thread/task records with ``tracker`` and sends its
    ``track_this`` calls to ``step`` (a run enters this without a step, each step with itself).

    >>> with recording(ExperimentTracker()):
    ...     current_step() is None, current_tracker().name
    (True, 'do-nothing')
    """
    token = _active.set(_Recording(tracker, step))
    try:
        yield
    finally:
        _active.reset(token)


def current_step() -> MetricSink | None:
    """The step being recorded in this thread or task (None outside a step).

    >>> current_step() is None
    True
    """
    active = _active.get()
    return active.step if active is not None else None


def current_tracker() -> ExperimentTracker:
    """The tracker of the run being recorded in this thread or task; outside a run,
    the do-nothing tracker."""
    active = _active.get()
    return active.tracker if active is not None else ExperimentTracker()


# -- side file for child processes ----------------------------------------------


def append_tracked(path: str, step: int, values: Mapping[str, Any]) -> None:
    """Append one JSON line per value to the step's side file (locked, so children may share it)."""
    lines = "".join(
        json.dumps({"key": key, "step": step, "value": value}, allow_nan=True) + "\n" for key, value in values.items()
    )
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            handle.write(lines)
            handle.flush()
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_tracked(path: str) -> Iterator[tuple[str, int, Any]]:
    """``(key, step, value)`` from a side file; a torn last line (a killed child) is skipped."""
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                item = json.loads(line)
                yield str(item["key"]), int(item["step"]), item["value"]
            except (ValueError, KeyError, TypeError):
                continue


# -- environment variables ------------------------------------------------------


def parse_env_value(text: str) -> Any:
    """Numeric strings become int/float, JSON objects/arrays are parsed, all else stays text.

    >>> parse_env_value("42"), parse_env_value("0.5"), parse_env_value("true")
    (42, 0.5, 'true')
    >>> parse_env_value('{"ham": "world"}')
    {'ham': 'world'}
    """
    stripped = text.strip()
    if _NUMBER.match(stripped):
        try:
            return int(stripped)
        except ValueError:
            return float(stripped)
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


def env_metrics(env: Mapping[str, str], before: Mapping[str, str] | None = None) -> list[tuple[str, int, Any]]:
    """``(key, step, value)`` for each ``RUNNABLE_TRACK_*``/``MAGNUS_TRACK_*`` variable in
    ``env`` that is new or changed compared with ``before``. The prefix is matched in any
    case (the seed writes ``runnable_TRACK_``); keys are lower-cased as runnable did.

    >>> env_metrics({"runnable_TRACK_loss_STEP_2": "0.1", "HOME": "/"})
    [('loss', 2, 0.1)]
    """
    before = before or {}
    found = []
    for name, text in sorted(env.items()):
        match = _ENV_KEY.match(name)
        if not match or before.get(name) == text:
            continue
        key, step = match.group(1).lower(), int(match.group(2) or 0)
        found.append((key, step, parse_env_value(text)))
    return found


# -- experiment trackers --------------------------------------------------------


class ExperimentTracker:
    """The do-nothing tracker, and the interface others implement.

    A runlog run calls ``start_run`` once per process that records into it
    (the owner and every attaching process), ``log`` for every tracked value
    (with the internal name of the step), and ``end_run`` at the end (the owner only). ``client_context()`` is what
    :func:`get_experiment_tracker_context` hands to users.
    """

    name = "do-nothing"

    def start_run(self, run_id: str, tag: str, start_time_ms: int | None = None) -> None:
        pass

    def log(
        self, key: str, value: Any, step: int, timestamp_ms: int | None = None, step_name: str | None = None
    ) -> None:
        pass

    def end_run(self, status: str, end_time_ms: int | None = None) -> None:
        pass

    def client_context(self) -> ContextManager[Any]:
        return contextlib.nullcontext()


# The trackers that can be selected by name (a registry; which one a run uses is the run's).
_TRACKERS: dict[str, Callable[[], ExperimentTracker]] = {"do-nothing": ExperimentTracker}


def register_tracker(name: str, factory: Callable[[], ExperimentTracker]) -> None:
    """Make a tracker selectable by name (``$RUNLOG_EXPERIMENT_TRACKER``)."""
    _TRACKERS[name] = factory


TRACKER_ENTRY_POINTS = "runlog.experiment_trackers"


def _load_plugin(name: str) -> None:
    """Register the tracker ``name`` from an installed package's entry point (group
    ``runlog.experiment_trackers``), as runlog registers its own MLflow tracker."""
    if name in _TRACKERS:
        return
    from importlib.metadata import entry_points

    for entry in entry_points(group=TRACKER_ENTRY_POINTS):
        if entry.name == name:
            register_tracker(name, entry.load())
            return


def select_tracker(name: str | None = None) -> ExperimentTracker:
    """A new tracker named ``name`` (default: ``$RUNLOG_EXPERIMENT_TRACKER`` or do-nothing),
    for one run (:class:`~runlog.record.run.Run` keeps it as ``run.tracker``).

    >>> select_tracker("do-nothing").name
    'do-nothing'
    """
    name = (name or os.environ.get(TRACKER_ENV) or "do-nothing").strip().lower()
    _load_plugin(name)
    if name not in _TRACKERS:
        raise RunlogError(
            f"unknown experiment tracker {name!r} (from ${TRACKER_ENV}): use one of {', '.join(sorted(_TRACKERS))}"
        )
    return _TRACKERS[name]()


def get_experiment_tracker_context() -> ContextManager[Any]:
    """The client context of the tracker of the run being recorded in this thread or
    task: with the MLflow tracker, the run's active MLflow run; a null context manager
    with the do-nothing tracker, and outside any run.

    >>> with get_experiment_tracker_context() as client:   # doctest: +SKIP
    ...     pass
    """
    return current_tracker().client_context()
