"""Branches of parallel and map steps as MLflow child runs (``--branches child-runs``).

Each branch (the index's ``steps.branch``, e.g. ``search.lr1`` or ``map_step.2``) becomes a
child run named ``<run_id>/<branch>`` under the run's MLflow run: the metrics and params
of the branch's steps under plain names (first step first, as in a run), the input
parameters of its steps, and for a map branch the iterate value as a param named by the
map's ``iterate_as``. The parent keeps the steps outside branches. Nested branches are
children of the run too, one per innermost branch.

>>> plan = plan_runs("runlog.db", "case4-branches-chunked", child_runs=True)   # doctest: +SKIP
>>> [child.name for child in plan.children]                                     # doctest: +SKIP
['case4-branches-chunked/parallel_step.branch1', ...]
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from .client import TAG_BRANCH, TAG_RUN_ID
from .naming import Mapper, MetricPoint, mlflow_status, time_ms
from .plan import RunPlan, clean_tags, connect_index, param_text, plan_run

BRANCH_MODES = ("none", "child-runs")


def plan_runs(conn: sqlite3.Connection | str | os.PathLike, run_id: str, experiment: str | None = None,
              child_runs: bool = False) -> RunPlan:
    """:func:`~runlog.mlflow.plan.plan_run`, with one child plan per branch when ``child_runs``."""
    if not isinstance(conn, sqlite3.Connection):
        conn = connect_index(conn)
    if not child_runs:
        return plan_run(conn, run_id, experiment)
    parent = plan_run(conn, run_id, experiment, without_branches=True)
    steps = conn.execute(
        "SELECT step_name, name, branch, step_type, status FROM steps WHERE run_id = ? ORDER BY position", (run_id,)
    ).fetchall()
    by_name = {row["step_name"]: row for row in steps}
    branches: dict[str, list[sqlite3.Row]] = {}
    for row in steps:
        if row["branch"]:
            branches.setdefault(row["branch"], []).append(row)
    dag = _dag(conn, run_id)
    parent.children = [_child(conn, parent, branch, rows, by_name, dag) for branch, rows in branches.items()]
    return parent


def _child(conn: sqlite3.Connection, parent: RunPlan, branch: str, rows: list[sqlite3.Row],
           by_name: dict[str, sqlite3.Row], dag: Any) -> RunPlan:
    mapper = Mapper()
    params: dict[str, str] = {}
    owner = by_name.get(branch.rsplit(".", 1)[0])
    if owner is not None and owner["step_type"] == "map":
        iterate_as = _iterate_as(dag, owner["name"]) or "iterate_value"
        name, text = mapper.param("", iterate_as, None, branch[len(owner["step_name"]) + 1:])
        params[name] = text
    names = [row["step_name"] for row in rows]
    marks = ",".join("?" * len(names))
    start, end = conn.execute(
        f"SELECT min(start_time), max(end_time) FROM attempts WHERE run_id = ? AND step_name IN ({marks})",
        (parent.run_id, *names),
    ).fetchone()
    start_ms, end_ms = time_ms(start), time_ms(end)
    for row in conn.execute(
        f"""SELECT p.step_name, p.key, p.value_text FROM params p JOIN steps s USING (run_id, step_name)
            WHERE p.run_id = ? AND p.direction = 'input' AND p.step_name IN ({marks})
              AND p.attempt_number = (SELECT max(attempt_number) FROM params q WHERE q.run_id = p.run_id
                                      AND q.step_name = p.step_name)
            ORDER BY s.position, p.key""",
        (parent.run_id, *names),
    ):
        if row["key"] not in params:  # the map's own param comes first
            name, text = mapper.param(_relative(row["step_name"], branch), row["key"], None,
                                      param_text(row["value_text"]))
            params.setdefault(name, text)
    metrics = _points(conn, parent.run_id, branch, names, mapper, params, end_ms or start_ms or 0)
    tags = {TAG_RUN_ID: parent.run_id, TAG_BRANCH: branch, "runlog.status": _status(rows),
            "runlog.tag": parent.tags.get("runlog.tag", ""), "mlflow.runName": f"{parent.run_id}/{branch}",
            **{k: v for k, v in parent.tags.items() if k.startswith("mlflow.source.") or k == "mlflow.user"},
            **mapper.note_tags()}
    return RunPlan(
        run_id=parent.run_id, experiment=parent.experiment, status=mlflow_status(_status(rows)),
        start_time_ms=start_ms if start_ms is not None else parent.start_time_ms,
        end_time_ms=end_ms if end_ms is not None else parent.end_time_ms,
        tags=clean_tags(tags), params=params, metrics=metrics, renamed=len(mapper.renamed),
        truncated=len(mapper.truncated), branch=branch,
    )


def _points(conn: sqlite3.Connection, run_id: str, branch: str, names: list[str], mapper: Mapper,
            params: dict[str, str], fallback_ts: int) -> list[MetricPoint]:
    """The branch's points under plain names: the first step of the branch that tracks a
    key keeps it, the others get ``<step>/<key>`` (the step's name inside the branch)."""
    metrics: list[MetricPoint] = []
    for row in conn.execute(
        f"""SELECT m.step_name, m.key, m.step, m.value, m.value_text, m.kind, m.timestamp_ms
            FROM metrics m JOIN steps s USING (run_id, step_name)
            WHERE m.run_id = ? AND m.step_name IN ({",".join("?" * len(names))})
            ORDER BY s.position, m.key, m.step""",
        (run_id, *names),
    ):
        step_name, step = _relative(row["step_name"], branch), int(row["step"] or 0)
        if row["kind"] == "numeric":
            value = row["value"] if row["value"] is not None else float("nan")
            timestamp = row["timestamp_ms"] if row["timestamp_ms"] is not None else fallback_ts
            metrics.append(MetricPoint(mapper.metric_name(step_name, row["key"]), float(value), int(timestamp), step))
        else:
            name, text = mapper.param(step_name, row["key"], step, row["value_text"] or "")
            params[name] = text
    return metrics


def _relative(step_name: str, branch: str) -> str:
    """A step's name inside its branch: ``inner`` for ``map_step.2.inner``."""
    return step_name[len(branch) + 1:] if step_name.startswith(branch + ".") else step_name


def _status(rows: list[sqlite3.Row]) -> str:
    """A branch's runlog status: FAIL if a step failed, SUCCESS if all succeeded, else PROCESSING."""
    statuses = {(row["status"] or "").upper() for row in rows}
    if "FAIL" in statuses:
        return "FAIL"
    return "SUCCESS" if statuses == {"SUCCESS"} else "PROCESSING"


def _dag(conn: sqlite3.Connection, run_id: str) -> Any:
    text = conn.execute("SELECT run_config FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
    try:
        return (json.loads(text or "{}") or {}).get("dag")
    except (ValueError, AttributeError):
        return None


def _iterate_as(node: Any, step_name: str) -> str | None:
    """The ``iterate_as`` of the map step named ``step_name``, anywhere in the DAG."""
    if isinstance(node, dict):
        if node.get("name") == step_name and isinstance(node.get("iterate_as"), str):
            return node["iterate_as"]
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    return next((found for child in children if (found := _iterate_as(child, step_name))), None)
