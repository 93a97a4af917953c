"""What MLflow holds against what a plan says it should: the points, params, tags, times
and status of one MLflow run. Used by the export (what to send again) and by
``--verify`` (what differs).

Values compare as MLflow stores them: NaN equals NaN, and ±inf equals ±1.7976931348623157e308
(MLflow's SQL stores keep infinities as the largest finite doubles). At one step, the
point with the latest timestamp is MLflow's value.

>>> same_value(float("inf"), 1.7976931348623157e308), same_value(float("nan"), float("nan"))
(True, True)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

from ..errors import RunlogError
from ..values import counted
from .client import TAG_PARENT, histories
from .naming import MetricPoint
from .plan import RunPlan, json_equal

# MLflow's own presentation tags, sent since runlog 0.x: --verify does not ask for
# them, so that runs exported by an older runlog verify by their data.
PRESENTATION_TAGS = frozenset({"mlflow.source.name", "mlflow.source.type", "mlflow.user"})


def stored(value: float) -> float:
    """``value`` as MLflow's SQL stores keep it."""
    if math.isinf(value):
        return math.copysign(sys.float_info.max, value)
    return value


def same_value(a: float, b: float) -> bool:
    """Equal as MLflow stores them (NaN equals NaN)."""
    a, b = stored(a), stored(b)
    return a == b or (math.isnan(a) and math.isnan(b))


def latest_by_step(history: Iterable[Any]) -> dict[int, Any]:
    """MLflow's value at each step: the point with the latest timestamp."""
    latest: dict[int, Any] = {}
    for point in history:
        known = latest.get(point.step)
        if known is None or point.timestamp >= known.timestamp:
            latest[point.step] = point
    return latest


def check_params(plan: RunPlan, run: Any) -> None:
    """Raise when a param already in MLflow has another value: MLflow cannot change one."""
    have = run.data.params
    for name, text in plan.params.items():
        if name in have and not json_equal(have[name], text):
            raise RunlogError(
                f"param {name} is {have[name][:60]!r} in MLflow run {run.info.run_id} but {text[:60]!r} in "
                f"runlog; MLflow cannot change a param: export it again with `runlog export mlflow {plan.run_id} "
                "--replace` (deletes that MLflow run and exports the run anew)"
            )


def delta(client, plan: RunPlan, run: Any) -> tuple[dict[str, str], list[MetricPoint], list[str]]:
    """``(params, points, changed)`` to send to ``run`` so that it holds ``plan``: the
    missing params and points, and each point whose value changed at its key and step,
    again with a later timestamp (then MLflow's value at that step is the new one).
    ``changed`` names those points (``loss@3: 0.5 -> 0.25``). A changed param raises."""
    check_params(plan, run)
    params = {k: v for k, v in plan.params.items() if k not in run.data.params}
    keys = {m.key for m in plan.metrics} & set(run.data.metrics)
    latest = {key: latest_by_step(history) for key, history in histories(client, run.info.run_id, keys).items()}
    points: list[MetricPoint] = []
    changed: list[str] = []
    for point in plan.metrics:
        old = latest.get(point.key, {}).get(point.step)
        if old is None:
            points.append(point)
        elif not same_value(old.value, point.value):
            points.append(point._replace(timestamp=max(point.timestamp, old.timestamp + 1)))
            changed.append(f"{point.key}@{point.step}: {old.value!r} -> {point.value!r}")
    return params, points, changed


def differences(client, plan: RunPlan, run: Any, parent_id: str | None = None) -> list[str]:
    """What ``run`` holds differently from ``plan``: ``["2 points of loss", "param lr",
    "tag runlog.status", "end time", "status"]``; empty when they agree."""
    found: list[str] = []
    wanted: dict[str, list[MetricPoint]] = {}
    for point in plan.metrics:
        wanted.setdefault(point.key, []).append(point)
    keys = [key for key in wanted if key in run.data.metrics]
    got = {key: latest_by_step(history) for key, history in histories(client, run.info.run_id, keys).items()}
    for key, points in wanted.items():
        latest = got.get(key, {})
        wrong = sum(1 for p in points if p.step not in latest or not same_value(latest[p.step].value, p.value))
        wrong += len(set(latest) - {p.step for p in points})
        if wrong:
            found.append(f"{counted(wrong, 'point')} of {key}")
    found += [f"metric {key} (not in runlog)" for key in sorted(set(run.data.metrics) - set(wanted))]
    have = run.data.params
    found += [f"param {k}" for k, v in plan.params.items() if k not in have or not json_equal(have[k], v)]
    found += [f"param {key} (not in runlog)" for key in sorted(set(have) - set(plan.params))]
    tags = run.data.tags
    found += [f"tag {k}" for k, v in plan.tags.items() if k not in PRESENTATION_TAGS and tags.get(k) != v]
    if parent_id is not None and tags.get(TAG_PARENT) != parent_id:
        found.append("parent run")
    for label, want, have_value in (("start time", plan.start_time_ms, run.info.start_time),
                                    ("end time", plan.end_time_ms, run.info.end_time),
                                    ("status", plan.status, run.info.status)):
        if want is not None and want != have_value:
            found.append(label)
    return found
