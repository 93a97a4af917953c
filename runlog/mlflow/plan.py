"""What one run of the index becomes in MLflow (a :class:`RunPlan`), computed offline
from the index alone: what ``runlog query`` shows is what MLflow gets.

>>> plan = plan_run("runlog.db", "blazing-colden-0544")    # doctest: +SKIP
>>> plan.params                                            # doctest: +SKIP
{'spam_0': 'hello', 'eggs.ham_0': 'world'}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..errors import RunlogError
from ..index import open_db
from .client import TAG_RUN_ID
from .naming import MAX_TAG_VALUE, Mapper, MetricPoint, experiment_name, mlflow_status, shorten, time_ms


@dataclasses.dataclass
class RunPlan:
    """Everything one runlog run becomes in MLflow (computed from the index, offline)."""

    run_id: str
    experiment: str
    status: str  # MLflow status
    start_time_ms: int | None
    end_time_ms: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[MetricPoint]
    renamed: int = 0
    truncated: int = 0
    branch: str = ""  # a child run's branch (``--branches child-runs``)
    children: list[RunPlan] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        """The MLflow run name: the run_id, ``<run_id>/<branch>`` for a branch's child run."""
        return f"{self.run_id}/{self.branch}" if self.branch else self.run_id

    def all_plans(self) -> list[RunPlan]:
        """This plan, then its children's."""
        return [self, *self.children]

    @property
    def digest(self) -> str:
        """A hash of what the run holds (not where it goes): an exported run whose digest
        matches is skipped, wherever it is."""
        body = json.dumps(
            [self.status, self.start_time_ms, self.end_time_ms, sorted(self.tags.items()),
             sorted(self.params.items()), [list(m) for m in self.metrics]],
            allow_nan=True, default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.name, "experiment": self.experiment, "status": self.status,
            "metric_points": len(self.metrics), "metrics": len({m.key for m in self.metrics}),
            "params": len(self.params), "tags": len(self.tags), "renamed": self.renamed, "truncated": self.truncated,
        }


def connect_index(db_path: str | os.PathLike) -> sqlite3.Connection:
    """A read-only connection to the index; a missing file is :class:`~runlog.errors.NoIndex`."""
    conn = open_db(db_path, readonly=True).conn  # a missing index is NoIndex (a usage error)
    conn.row_factory = sqlite3.Row
    return conn


def select_runs(
    conn: sqlite3.Connection, run_ids: Sequence[str] = (), tag: str | None = None, status: str | None = None
) -> tuple[list[str], list[str]]:
    """``(found, missing)``: the named runs (or all runs when none are named) that match
    ``tag``/``status``, in start-time order, and the named runs not in the index."""
    where, args = [], []
    if tag is not None:
        where.append("coalesce(tag, '') = ?")
        args.append(tag)
    if status is not None:
        where.append("upper(status) = ?")
        args.append(status.upper())
    sql = "SELECT run_id FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY coalesce(start_time, ''), run_id"
    matching = [row[0] for row in conn.execute(sql, args)]
    if not run_ids:
        return matching, []
    wanted = list(dict.fromkeys(run_ids))
    known = {row[0] for row in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({','.join('?' * len(wanted))})", wanted)}
    chosen = set(wanted)
    return [r for r in matching if r in chosen], [r for r in wanted if r not in known]


def plan_run(conn: sqlite3.Connection | str | os.PathLike, run_id: str, experiment: str | None = None,
             without_branches: bool = False) -> RunPlan:
    """What run ``run_id`` of the index becomes in MLflow; ``without_branches`` leaves out
    the steps inside branches (they become child runs, :mod:`runlog.mlflow.branches`).

    >>> plan_run("runlog.db", "blazing-colden-0544").params   # doctest: +SKIP
    {'spam_0': 'hello', 'eggs.ham_0': 'world'}
    """
    if not isinstance(conn, sqlite3.Connection):
        conn = connect_index(conn)
    run = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if run is None:
        raise RunlogError(f"run {run_id} is not in the index: ingest it first (runlog ingest)")
    keys = run.keys()
    start_ms, end_ms = time_ms(run["start_time"]), time_ms(run["end_time"])
    mapper = Mapper()
    params: dict[str, str] = {}
    for row in conn.execute(
        "SELECT key, value_text FROM params WHERE run_id = ? AND direction = 'run' ORDER BY key", (run_id,)
    ):
        name, text = mapper.param("", row["key"], None, param_text(row["value_text"]))
        params[name] = text
    fallback_ts = end_ms if end_ms is not None else (start_ms or 0)
    metrics = _points(conn, run_id, mapper, params, fallback_ts, without_branches)
    tags = {
        TAG_RUN_ID: run_id,
        "runlog.tag": run["tag"] or "",
        "runlog.status": run["status"] or "",
        "runlog.dag_hash": run["dag_hash"] or "",
    }
    for column in ("original_run_id", "format", "layout"):
        if column in keys and run[column]:
            tags[f"runlog.{column}"] = str(run[column])
    tags.update(_code_tags(conn, run_id))
    tags.update(source_tags(run, run_id))
    tags.update(mapper.note_tags())
    return RunPlan(
        run_id=run_id,
        experiment=experiment_name(run["tag"], experiment),
        status=mlflow_status(run["status"]),
        start_time_ms=start_ms if start_ms is not None else (min((m.timestamp for m in metrics), default=None)),
        end_time_ms=end_ms if end_ms is not None else start_ms,
        tags=clean_tags(tags),
        params=params,
        metrics=metrics,
        renamed=len(mapper.renamed),
        truncated=len(mapper.truncated),
    )



def _points(conn: sqlite3.Connection, run_id: str, mapper: Mapper, params: dict[str, str],
            fallback_ts: int, without_branches: bool = False) -> list[MetricPoint]:
    """Every point under its run-level name (the index's run_metrics), in run order:
    numbers as metric points, other values into ``params`` as ``<name>_<step>``."""
    metrics: list[MetricPoint] = []
    outside = (" AND m.step_name NOT IN (SELECT step_name FROM steps WHERE run_id = m.run_id"
               " AND coalesce(branch, '') != '')") if without_branches else ""
    for row in conn.execute(
        f"""SELECT m.step_name, m.key, m.step, m.value, m.value_text, m.kind, m.timestamp_ms, n.name
           FROM metrics m JOIN run_metrics n ON n.run_id = m.run_id AND n.step_name = m.step_name AND n.key = m.key
           WHERE m.run_id = ?{outside} ORDER BY n.position, m.step_name, m.key, m.step""",
        (run_id,),
    ):
        step = int(row["step"] or 0)
        if row["kind"] == "numeric":
            value = row["value"] if row["value"] is not None else float("nan")
            timestamp = row["timestamp_ms"] if row["timestamp_ms"] is not None else fallback_ts
            name = mapper.metric_name(row["step_name"], row["key"], row["name"])
            metrics.append(MetricPoint(name, float(value), int(timestamp), step))
        else:
            name, text = mapper.param(row["step_name"], row["key"], step, row["value_text"] or "", row["name"])
            params[name] = text
    return metrics


def clean_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags as MLflow gets them: none with an empty value, none longer than a tag may be."""
    return {key: shorten(value, MAX_TAG_VALUE) for key, value in tags.items() if value}


def source_tags(run: sqlite3.Row, name: str) -> dict[str, str]:
    """MLflow's own run tags: run name, source (the pipeline file, else the run log's
    path) and user, when the run log's ``run_config`` names one."""
    try:
        config = json.loads(run["run_config"] or "{}")
    except ValueError:
        config = {}
    config = config if isinstance(config, dict) else {}
    pipeline = config.get("pipeline_definition_file") or config.get("pipeline_file")
    source = pipeline if isinstance(pipeline, str) and pipeline else (run["source_path"] or "")
    user = next((config[k] for k in ("user", "username") if isinstance(config.get(k), str)), "")
    return {"mlflow.runName": name, "mlflow.source.name": source, "mlflow.source.type": "LOCAL" if source else "",
            "mlflow.user": user}


def param_text(json_text: str | None) -> str:
    """Run-level parameters are stored as JSON text: a string shows bare, the rest as JSON."""
    if json_text is None:
        return "null"
    try:
        value = json.loads(json_text)
    except ValueError:
        return json_text
    return value if isinstance(value, str) else json_text


def _code_tags(conn: sqlite3.Connection, run_id: str) -> dict[str, str]:
    """``mlflow.source.git.commit`` (and repoURL) from the first step with a git identity."""
    row = conn.execute(
        """SELECT c.code_identifier, c.code_identifier_url FROM code_identities c
           LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_name = c.step_name
           WHERE c.run_id = ? AND lower(coalesce(c.code_identifier_type, '')) = 'git'
             AND coalesce(c.code_identifier, '') != ''
           ORDER BY coalesce(s.position, 1000000000), c.attempt_number DESC LIMIT 1""",
        (run_id,),
    ).fetchone()
    if row is None:
        return {}
    tags = {"mlflow.source.git.commit": row[0]}
    if row[1]:
        tags["mlflow.source.git.repoURL"] = row[1]
    return tags


def json_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False
