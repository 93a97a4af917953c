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

from ..errors import RunlogError

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class NamedQuery:
    sql: str
    params: tuple[str, ...]
    title: str
    description: str
    defaults: dict[str, str] = field(default_factory=dict)


# Latest row of one key per run: highest step, then newest attempt end, then step name.
LATEST_ORDER = "m.step DESC, m.timestamp_ms DESC, m.step_name DESC"

NAMED_QUERIES: dict[str, NamedQuery] = {
    "metric_history": NamedQuery(
        sql="""SELECT m.step_name, m.key, m.step, m.value, m.value_text, m.kind, m.timestamp_ms
FROM metrics m JOIN steps s ON s.run_id = m.run_id AND s.step_name = m.step_name
WHERE m.run_id = :run_id AND m.key = :key
ORDER BY s.position, m.step""",
        params=("run_id", "key"),
        title="Metric history",
        description="Every recorded point of one metric in one run, by step.",
    ),
    "leaderboard": NamedQuery(
        # run_latest holds each run's latest numeric point per key (ordered as LATEST_ORDER),
        # kept by ingest: the leaderboard is one index range, whatever the number of points.
        sql="""SELECT r.run_id, r.tag, r.status, r.start_time, l.step_name, l.step, l.value
FROM run_latest l JOIN runs r ON r.run_id = l.run_id
WHERE l.key = :key
ORDER BY l.value IS NULL,
    CASE WHEN :direction = 'asc' THEN l.value END ASC,
    CASE WHEN :direction = 'asc' THEN NULL ELSE l.value END DESC,
    r.run_id""",
        params=("key", "direction"),
        title="Leaderboard",
        description="Runs ranked by the latest value of a numeric metric (direction desc or asc).",
        defaults={"direction": "desc"},
    ),
    "runs_by_tag": NamedQuery(
        sql="""SELECT run_id, tag, status, start_time, duration_s, steps, failed_steps
FROM run_summary WHERE tag = :tag
ORDER BY start_time IS NULL, start_time, run_id""",
        params=("tag",),
        title="Runs with a tag",
        description="Every run with the given tag, oldest first.",
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
        sql="""WITH p AS (
    SELECT x.run_id, x.step_name, x.direction, x.key, x.value_text FROM params x
    WHERE x.run_id IN (:run_a, :run_b) AND x.attempt_number = (
        SELECT max(y.attempt_number) FROM params y WHERE y.run_id = x.run_id AND y.step_name = x.step_name)
),
names AS (SELECT DISTINCT step_name, direction, key FROM p)
SELECT n.step_name, n.direction, n.key, a.value_text AS value_a, b.value_text AS value_b
FROM names n
LEFT JOIN p a ON a.run_id = :run_a AND a.step_name = n.step_name AND a.direction = n.direction AND a.key = n.key
LEFT JOIN p b ON b.run_id = :run_b AND b.step_name = n.step_name AND b.direction = n.direction AND b.key = n.key
WHERE a.value_text IS NOT b.value_text
ORDER BY n.step_name, n.direction, n.key""",
        params=("run_a", "run_b"),
        title="Parameter differences",
        description="Parameters (run-level and each step's latest attempt) that differ between two runs.",
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
        raise RunlogError(f"no named query {name!r}: use one of {', '.join(sorted(NAMED_QUERIES))}")
    bound = {**query.defaults, **(params or {})}
    missing = [p for p in query.params if p not in bound]
    if missing:
        flags = " ".join(f"-p {p} VALUE" for p in missing)
        raise RunlogError(f"named query {name!r} needs {flags}")
    unknown = sorted(set(bound) - set(query.params))
    if unknown:
        raise RunlogError(f"named query {name!r} has no parameter {unknown[0]!r}: it takes {', '.join(query.params) or 'none'}")
    return run_sql(db, query.sql, bound)


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count + 1}")
    return result
