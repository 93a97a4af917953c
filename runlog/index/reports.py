"""One run: its document (``runlog show``; the CLI renders its step tree) and its metric
history (``runlog metrics``). Plain rows (dicts) from a read-only index, usable without click.
Many runs at once are in :mod:`.runs`.

>>> db = open_db("runlog.db", readonly=True)                    # doctest: +SKIP
>>> metric_history(db, "demo-steps", key="loss")[1][0]["value"]   # doctest: +SKIP
0.6
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UnknownName
from .lookup import did_you_mean, require_key, require_run
from .queries import Rows, run_sql


# -- metric history ------------------------------------------------------------


def metric_history(db, run_id: str, key: str | None = None, step_name: str | None = None) -> tuple[list[str], Rows]:
    """Every metric point of a run, optionally of one key and/or one step, in run order;
    ``name`` is each point's run-level name (``loss``, ``eval/loss``)."""
    require_run(db, run_id)
    if key is not None:
        require_key(db, key, run_id)
    if step_name is not None and not db.conn.execute(
            "SELECT 1 FROM steps WHERE run_id = ? AND step_name = ?", (run_id, step_name)).fetchone():
        names = [n for (n,) in db.conn.execute("SELECT step_name FROM steps WHERE run_id = ?", (run_id,))]
        raise UnknownName(f"no step {step_name!r} in run {run_id!r}{did_you_mean(step_name, names)}")
    # Only the filters given go into the SQL (values always bound): `(:key IS NULL OR ...)`
    # would keep SQLite from using an index. The run's series (run_metrics) lead, each
    # then one seek into the metrics' primary key (CROSS JOIN fixes that order: led by
    # metrics, SQLite would scan the run's series once per point).
    where = ["n.run_id = :run_id"]
    where += ["n.key = :key"] if key is not None else []
    where += ["n.step_name = :step_name"] if step_name is not None else []
    return run_sql(
        db,
        f"""SELECT n.name, m.step_name, m.key, m.step, coalesce(m.value, m.value_text) AS value, m.kind, m.timestamp_ms
FROM run_metrics n CROSS JOIN metrics m ON m.run_id = n.run_id AND m.step_name = n.step_name AND m.key = n.key
WHERE {' AND '.join(where)}
ORDER BY n.position, m.key, m.step""",
        {"run_id": run_id, "key": key, "step_name": step_name},
    )


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
        """SELECT name, step_name, key, kind, count AS points, last_step,
    CASE WHEN last IS NOT NULL THEN last ELSE last_text END AS last, min, argmin, max, argmax, mean
FROM run_metrics WHERE run_id = :run_id ORDER BY position, key""",
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


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
