"""SQL over the index: the named queries shared by the CLI, the Datasette plugin and
the docs, and running any read-only statement with bound parameters.

``NAMED_QUERIES`` holds parameterised SQL (``:name`` parameters, always bound).
Every function takes a database from :func:`runlog.index.open_db` and returns plain
rows (dicts), so it is usable without click.

>>> db = open_db("runlog.db", readonly=True)                      # doctest: +SKIP
>>> run_named(db, "leaderboard", {"key": "loss", "direction": "asc"})[1][0]["run_id"]  # doctest: +SKIP
'case2-metrics'
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunlogError, UnknownName, UsageProblem
from . import lookup
from .functions import normalise_direction

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class NamedQuery:
    """Parameterised SQL. ``checks`` says what each parameter names (``run_id``, ``metric``
    (a run-level metric name), ``tag``, ``direction``), so a value that names nothing is
    refused with a hint before the query runs."""

    sql: str
    params: tuple[str, ...]
    title: str
    description: str
    defaults: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)


NAMED_QUERIES: dict[str, NamedQuery] = {
    "metric_history": NamedQuery(
        sql="""SELECT n.name, m.step_name, m.key, m.step, m.value, m.value_text, m.kind, m.timestamp_ms
FROM run_metrics n JOIN metrics m ON m.run_id = n.run_id AND m.step_name = n.step_name AND m.key = n.key
WHERE n.run_id = :run_id AND n.name = :key
ORDER BY m.step""",
        params=("run_id", "key"),
        title="Metric history",
        description="Every recorded point of one run-level metric (e.g. loss, or search.lr1.train/loss) in one run, by step.",
        checks={"run_id": "run_id", "key": "metric"},
    ),
    "leaderboard": NamedQuery(
        # run_metrics holds each run's summaries per run-level name, kept by ingest: the
        # leaderboard is one index range (name, last), whatever the number of points.
        sql="""SELECT r.run_id, r.tag, r.status, r.start_time, m.step_name, m.last_step AS step, m.last AS value
FROM run_metrics m JOIN runs r ON r.run_id = m.run_id
WHERE m.name = :key AND (m.kind = 'numeric' OR m.last IS NOT NULL)
ORDER BY m.last IS NULL,
    CASE WHEN runlog_direction(:direction) = 'asc' THEN m.last END ASC,
    CASE WHEN runlog_direction(:direction) = 'asc' THEN NULL ELSE m.last END DESC,
    r.run_id""",
        params=("key", "direction"),
        title="Leaderboard",
        description="Runs ranked by the last value of a numeric metric: direction desc (highest first) or asc "
                    "(lowest first); max and min mean the same.",
        defaults={"direction": "desc"},
        checks={"key": "metric", "direction": "direction"},
    ),
    "runs_by_tag": NamedQuery(
        sql="""SELECT run_id, tag, status, start_time, duration_s, steps, failed_steps
FROM run_summary WHERE tag = :tag
ORDER BY start_time IS NULL, start_time, run_id""",
        params=("tag",),
        title="Runs with a tag",
        description="Every run with the given tag, oldest first.",
        checks={"tag": "tag"},
    ),
    "failed_steps": NamedQuery(
        sql="""SELECT s.run_id, r.tag, s.step_name, s.step_type, s.message,
    (SELECT count(*) FROM attempts a WHERE a.run_id = s.run_id AND a.step_name = s.step_name) AS attempts
FROM steps s JOIN runs r ON r.run_id = s.run_id
WHERE s.status = 'FAIL'
ORDER BY r.start_time IS NULL, r.start_time, s.run_id, s.position""",
        params=(),
        title="Failed steps",
        description="Every step that ended in FAIL, with its run.",
    ),
    "param_diff": NamedQuery(
        sql="""SELECT n.name, a.text AS value_a, b.text AS value_b
FROM (SELECT name, min(position) AS position FROM run_params WHERE run_id IN (:run_a, :run_b) GROUP BY name) n
LEFT JOIN run_params a ON a.run_id = :run_a AND a.name = n.name
LEFT JOIN run_params b ON b.run_id = :run_b AND b.name = n.name
WHERE (a.text IS NULL) <> (b.text IS NULL) OR a.text <> b.text
ORDER BY n.position, n.name""",
        params=("run_a", "run_b"),
        title="Parameter differences",
        description="Parameters (run-level, then each step's latest attempt, by run-level name) that differ "
                    "between two runs.",
        checks={"run_a": "run_id", "run_b": "run_id"},
    ),
}


# -- running SQL ---------------------------------------------------------------


def run_sql(db, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], Rows]:
    """Run one statement with bound parameters; ``(columns, rows)``.

    On a database opened read-only, a statement that would write fails with a
    :class:`~runlog.errors.RunlogError` that says so.

    >>> run_sql(db, "select run_id from runs where tag = :tag", {"tag": "exp-a"})  # doctest: +SKIP
    (['run_id'], [{'run_id': 'case2-metrics'}])
    """
    refusals = getattr(db, "refusals", None)
    if refusals is not None:
        refusals.clear()
    try:
        cursor = db.conn.execute(sql, params or {})
        columns = _unique_names([d[0] for d in cursor.description or []])
        rows = [dict(zip(columns, row)) for row in cursor]
    except (sqlite3.Error, sqlite3.Warning) as exc:
        if refusals:
            what = refusals[0]
            raise RunlogError(
                f"refused: queries are read-only, and this statement would {what} "
                "(the index changes only through `runlog ingest`)"
            ) from None
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise RunlogError(f"refused: queries are read-only ({exc})") from None
        raise RunlogError(f"SQL error: {exc}") from None
    return columns, rows


def run_named(db, name: str, params: dict[str, Any] | None = None) -> tuple[list[str], Rows]:
    """Run a query of :data:`NAMED_QUERIES` (missing parameters take their defaults)."""
    query = NAMED_QUERIES.get(name)
    if query is None:
        raise UnknownName(f"no named query {name!r}{lookup.did_you_mean(name, list(NAMED_QUERIES))} "
                           f"(one of {', '.join(sorted(NAMED_QUERIES))})")
    bound = {**query.defaults, **(params or {})}
    missing = [p for p in query.params if p not in bound]
    if missing:
        flags = " ".join(f"-p {p} VALUE" for p in missing)
        raise UsageProblem(f"named query {name!r} needs {flags}")
    unknown = sorted(set(bound) - set(query.params))
    if unknown:
        raise UsageProblem(f"named query {name!r} has no parameter {unknown[0]!r}: it takes "
                           f"{', '.join(query.params) or 'none'}")
    check_params(db, query, bound)
    return run_sql(db, query.sql, bound)


def check_params(db, query: NamedQuery, bound: dict[str, Any]) -> None:
    """Refuse a parameter that names nothing, with the closest names (see ``NamedQuery.checks``)."""
    for param, kind in query.checks.items():
        value = bound.get(param)
        if kind == "direction":
            normalise_direction(value)
        elif kind == "run_id":
            lookup.require_run(db, value)
        elif kind == "metric":
            lookup.require_metric(db, value)
        elif kind == "tag":
            lookup.require_value(db, "tag", value, "tag")


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count + 1}")
    return result
