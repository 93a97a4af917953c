"""What the friendly commands show: the runs, one run's document and step tree, a
run's metric history, and runs side by side (``runlog runs``, ``show``, ``metrics``,
``compare``). Plain rows (dicts) from a read-only index, usable without click.

>>> db = open_db("runlog.db", readonly=True)             # doctest: +SKIP
>>> list_runs(db, metrics=("loss",))[1][0]["loss"]        # doctest: +SKIP
0.2
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import RunNotFound
from ..output import table
from .queries import LATEST_ORDER, Rows, run_sql


# -- runs, metrics ---------------------------------------------------------------


def list_runs(db, tag: str | None = None, status: str | None = None, metrics: tuple[str, ...] = ()) -> tuple[list[str], Rows]:
    """One row per run (id, tag, status, start, duration, steps) plus the latest value of each metric.

    >>> list_runs(db, tag="exp-a", metrics=("accuracy",))[1]  # doctest: +SKIP
    [{'run_id': 'case2-metrics', 'tag': 'exp-a', ..., 'accuracy': 0.875}]
    """
    metrics = tuple(dict.fromkeys(metrics))
    params: dict[str, Any] = {"tag": tag, "status": status}
    extra = []
    for i, key in enumerate(metrics):
        params[f"m{i}"] = key
        extra.append(
            f"(SELECT coalesce(m.value, m.value_text) FROM metrics m WHERE m.run_id = s.run_id AND m.key = :m{i}"
            f" ORDER BY {LATEST_ORDER} LIMIT 1) AS m{i}"
        )
    sql = (
        "SELECT s.run_id, s.tag, s.status, s.start_time, s.duration_s, s.steps"
        + "".join(f", {e}" for e in extra)
        + " FROM run_summary s WHERE (:tag IS NULL OR s.tag = :tag)"
        " AND (:status IS NULL OR s.status = :status COLLATE NOCASE)"
        " ORDER BY s.start_time IS NULL, s.start_time, s.run_id"
    )
    columns, rows = run_sql(db, sql, params)
    names = {f"m{i}": _free_name(key, columns) for i, key in enumerate(metrics)}
    columns = [names.get(c, c) for c in columns]
    return columns, [{names.get(k, k): v for k, v in row.items()} for row in rows]


def _free_name(key: str, taken: list[str]) -> str:
    return key if key not in taken else f"metric:{key}"


def metric_history(db, run_id: str, key: str | None = None, step_name: str | None = None) -> tuple[list[str], Rows]:
    """Every metric point of a run, optionally of one key and/or one step, in run order."""
    require_run(db, run_id)
    # Only the filters given go into the SQL (values always bound): `(:key IS NULL OR ...)`
    # would keep SQLite from using the (run_id, key, step) index.
    where = ["m.run_id = :run_id"]
    where += ["m.key = :key"] if key is not None else []
    where += ["m.step_name = :step_name"] if step_name is not None else []
    return run_sql(
        db,
        f"""SELECT m.step_name, m.key, m.step, coalesce(m.value, m.value_text) AS value, m.kind, m.timestamp_ms
FROM metrics m JOIN steps s ON s.run_id = m.run_id AND s.step_name = m.step_name
WHERE {' AND '.join(where)}
ORDER BY s.position, m.key, m.step""",
        {"run_id": run_id, "key": key, "step_name": step_name},
    )


def require_run(db, run_id: str) -> dict[str, Any]:
    _, rows = run_sql(db, "SELECT * FROM runs WHERE run_id = :run_id", {"run_id": run_id})
    if not rows:
        raise RunNotFound(f"no run {run_id!r} in the index (see `runlog runs`)")
    return rows[0]


# -- show -----------------------------------------------------------------------


def show_run(db, run_id: str) -> dict[str, Any]:
    """A run as a document: the run row, its steps (each with attempts and params) and a metrics summary."""
    run = require_run(db, run_id)
    bind = {"run_id": run_id}
    _, steps = run_sql(db, "SELECT * FROM steps WHERE run_id = :run_id ORDER BY position", bind)
    _, attempts = run_sql(db, "SELECT * FROM attempts WHERE run_id = :run_id ORDER BY step_name, attempt_number", bind)
    _, params = run_sql(
        db, "SELECT * FROM params WHERE run_id = :run_id ORDER BY step_name, attempt_number, direction, key", bind)
    _, summary = run_sql(
        db,
        """SELECT m.step_name, m.key,
    CASE WHEN min(m.kind) = max(m.kind) THEN min(m.kind) ELSE 'mixed' END AS kind,
    count(*) AS points, min(m.step) AS first_step, max(m.step) AS last_step,
    (SELECT coalesce(l.value, l.value_text) FROM metrics l
     WHERE l.run_id = m.run_id AND l.step_name = m.step_name AND l.key = m.key ORDER BY l.step DESC LIMIT 1) AS last,
    min(m.value) AS min, max(m.value) AS max
FROM metrics m JOIN steps s ON s.run_id = m.run_id AND s.step_name = m.step_name
WHERE m.run_id = :run_id GROUP BY m.step_name, m.key ORDER BY min(s.position), m.key""",
        bind,
    )
    for row in params:
        row["value"] = _decode(row["value_text"])
    for step in steps:
        step["attempts"] = [a for a in attempts if a["step_name"] == step["step_name"]]
        step["params"] = [p for p in params if p["step_name"] == step["step_name"]]
    run = {k: (_decode(v) if k in ("parameters", "run_config") else v) for k, v in run.items()}
    run["parameters"] = [p for p in params if p["step_name"] == ""]
    return {"run": run, "steps": steps, "metrics": summary}


def render_run(detail: dict[str, Any]) -> str:
    """``show_run``'s document as text: the step tree with branches indented."""
    run = detail["run"]
    lines = [
        f"run {run['run_id']}  status {run['status']}  tag {run['tag'] or '-'}  format {run['format']} {run['layout']}",
        f"start {run['start_time'] or '-'}  end {run['end_time'] or '-'}  duration {_seconds(run['duration_s'])}",
    ]
    if run.get("original_run_id"):
        lines.append(f"retry of {run['original_run_id']} (use_cached={bool(run['use_cached'])})")
    lines.append(f"source {run['source_path']}")
    if run["parameters"]:
        lines.append("parameters")
        lines += [f"  {p['key']} = {_short(p['value'])}  ({p['kind']})" for p in run["parameters"]]
    lines.append("steps")
    level: dict[str, int] = {}
    last_branch = ""
    for step in detail["steps"]:
        branch = step["branch"]
        parent = _owner(branch, level)
        depth = level[parent] + 1 if parent is not None else 0
        level[step["step_name"]] = depth
        if branch and branch != last_branch:
            lines.append("  " + "    " * (depth - 1) + f"  branch {branch}")
        last_branch = branch
        pad = "  " + "    " * depth
        mock = "  (mock)" if step["mock"] else ""
        lines.append(f"{pad}{step['name']}  [{step['step_type']}]  {step['status']}{mock}")
        if step["message"]:
            lines.append(f"{pad}  message: {step['message']}")
        for a in step["attempts"]:
            retry = f"  retry {a['retry_indicator']}" if a["retry_indicator"] else ""
            lines.append(f"{pad}  attempt {a['attempt_number']}  {a['status']}  {a['start_time'] or '-'}  "
                         f"{_seconds(a['duration_s'])}{retry}")
            for p in step["params"]:
                if p["attempt_number"] == a["attempt_number"]:
                    lines.append(f"{pad}    {p['direction']} {p['key']} = {_short(p['value'])}")
    lines.append("metrics")
    if detail["metrics"]:
        columns = ["step_name", "key", "kind", "points", "first_step", "last_step", "last", "min", "max"]
        lines += ["  " + line for line in table(detail["metrics"], columns).splitlines()]
    else:
        lines.append("  (none)")
    return "\n".join(lines)


def _owner(branch: str, level: dict[str, int]) -> str | None:
    """The step a branch belongs to: the longest step name that prefixes it."""
    if not branch:
        return None
    best = None
    for name in level:
        if branch.startswith(name + ".") and (best is None or len(name) > len(best)):
            best = name
    return best


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- compare ----------------------------------------------------------------------


def compare_runs(db, run_ids: list[str]) -> tuple[list[str], Rows]:
    """Params (run-level and each step's latest attempt) and latest metrics of runs side by side.

    Each row has ``what`` (param/metric), ``step_name``, ``name``, one column per run and
    ``differs`` (``*`` when the values are not all the same).
    """
    run_ids = list(dict.fromkeys(run_ids))
    for run_id in run_ids:
        require_run(db, run_id)
    base = ["what", "step_name", "name"]
    labels = {r: (r if r not in base + ["differs"] else f"run:{r}") for r in run_ids}
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run_id in run_ids:
        bind = {"run_id": run_id}
        _, params = run_sql(db, """SELECT x.step_name, x.direction, x.key, x.value_text FROM params x
WHERE x.run_id = :run_id AND x.attempt_number = (
    SELECT max(y.attempt_number) FROM params y WHERE y.run_id = x.run_id AND y.step_name = x.step_name)""", bind)
        for p in params:
            name = p["key"] if p["direction"] == "run" else f"{p['direction']}.{p['key']}"
            cells.setdefault(("param", p["step_name"], name), {})[run_id] = p["value_text"]
        # The latest_metrics rows of the run, kept by ingest in step_latest.
        _, metrics = run_sql(db, """SELECT step_name, key, coalesce(value, value_text) AS value, step
FROM step_latest WHERE run_id = :run_id""", bind)
        for m in metrics:
            cells.setdefault(("metric", m["step_name"], m["key"]), {})[run_id] = m["value"]
    rows = []
    for (what, step_name, name) in sorted(cells, key=lambda k: (k[0] != "param", k[1], k[2])):
        values = cells[(what, step_name, name)]
        row: dict[str, Any] = {"what": what, "step_name": step_name, "name": name}
        for run_id in run_ids:
            value = values.get(run_id)
            row[labels[run_id]] = _param_cell(value) if what == "param" else value
        present = [values.get(r, _MISSING) for r in run_ids]
        row["differs"] = "*" if any(v != present[0] or v is _MISSING for v in present) else ""
        rows.append(row)
    return base + [labels[r] for r in run_ids] + ["differs"], rows


_MISSING = object()


def _param_cell(value_text: str | None) -> Any:
    """A parameter's value for display; booleans spelt as metrics spell them."""
    value = _decode(value_text)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
