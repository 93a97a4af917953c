"""runlog's own pages in Datasette: a run (``/-/runlog/run/<run_id>``) and one metric
across runs (``/-/runlog/compare``), read from the index through Datasette's
connections and permissions.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import unquote

from datasette.utils.asgi import NotFound, Response

from ..index.queries import NAMED_QUERIES
from .charts import PALETTE_SIZE, svg_chart
from .urls import compare_url, index_names, run_url, static_url


async def _database(datasette, request):
    """The runlog index a page asks for, after Datasette's view permissions."""
    names = index_names(datasette)
    name = request.args.get("db") or (names[0] if names else None)
    if name not in names:
        raise NotFound(f"no runlog index named {name!r}" if name else "no runlog index attached")
    for table in ("runs", "steps", "attempts", "params", "metrics"):
        await datasette.ensure_permissions(
            request.actor, [("view-table", (name, table)), ("view-database", name), "view-instance"]
        )
    return name, datasette.get_database(name)


async def _rows(db, sql: str, params=()) -> list[dict]:
    return [dict(row) for row in (await db.execute(sql, params)).rows]


# -- pages ---------------------------------------------------------------------


async def run_page(datasette, request):
    """``/-/runlog/run/<run_id>``: everything about one run, with a chart per numeric metric."""
    name, db = await _database(datasette, request)
    run_id = unquote(request.url_vars["run_id"])
    runs = await _rows(db, "select * from runs where run_id = ?", [run_id])
    if not runs:
        raise NotFound(f"no run {run_id!r} in {name}")
    steps = await _rows(db, "select * from steps where run_id = ? order by position", [run_id])
    attempts = await _rows(
        db,
        "select a.* from attempts a left join steps s on s.run_id = a.run_id and s.step_name = a.step_name "
        "where a.run_id = ? order by s.position, a.attempt_number",
        [run_id],
    )
    params = await _rows(
        db,
        "select step_name, attempt_number, direction, key, kind, value_text from params where run_id = ? "
        "order by step_name != '', step_name, attempt_number, direction, key",
        [run_id],
    )
    metrics = await _rows(
        db,
        "select step_name, key, step, value, value_text, kind from metrics where run_id = ? "
        "order by key, step_name, step",
        [run_id],
    )
    charts, latest = [], {}
    for key, rows in _group(metrics, "key").items():
        numeric = [r for r in rows if r["kind"] == "numeric"]
        if numeric:
            series = [(step_name, _points(points)) for step_name, points in _group(numeric, "step_name").items()]
            chart = svg_chart(key, series)
            chart["compare_url"] = compare_url(datasette, name, key, [run_id])
            charts.append(chart)
        for row in rows:  # ordered by step, so the last one per step_name is the latest
            latest[(key, row["step_name"])] = row
    charts.sort(key=lambda c: c["count"] < 2)  # curves first, single values after
    attempt_counts = defaultdict(int)
    for attempt in attempts:
        attempt_counts[attempt["step_name"]] += 1
    context = {
        "run": runs[0],
        "database": name,
        "tree": step_tree(steps, attempt_counts),
        "attempts": attempts,
        "params": params,
        "charts": charts,
        "latest": list(latest.values()),
        "css_url": static_url(datasette, "runlog.css"),
        "table_url": datasette.urls.table(name, "runs"),
        "original_url": runs[0]["original_run_id"] and run_url(datasette, name, runs[0]["original_run_id"]),
    }
    return Response.html(await datasette.render_template("runlog_run.html", context, request=request))


async def compare_page(datasette, request):
    """``/-/runlog/compare?key=K&run=A&run=B``: one metric across runs, in one chart."""
    name, db = await _database(datasette, request)
    keys = [r["key"] for r in await _rows(
        db, "select distinct name as key from run_metrics where kind = 'numeric' order by name")]
    key = request.args.get("key") or (keys[0] if keys else "")
    direction = "asc" if request.args.get("direction") == "asc" else "desc"
    leaderboard = NAMED_QUERIES["leaderboard"]
    board = await _rows(db, leaderboard.sql, {"key": key, "direction": direction})
    chosen = request.args.getlist("run") or [r["run_id"] for r in board][:PALETTE_SIZE]
    history = NAMED_QUERIES["metric_history"]
    series = []
    for run_id in chosen:
        rows = await _rows(db, history.sql, {"run_id": run_id, "key": key})
        by_step = _group([r for r in rows if r["kind"] == "numeric"], "step_name")
        for step_name, points in by_step.items():
            label = run_id if len(by_step) == 1 else f"{run_id} {step_name}"
            series.append((label, _points(points)))
    context = {
        "database": name,
        "key": key,
        "keys": keys,
        "direction": direction,
        "board": board,
        "chosen": chosen,
        "chart": svg_chart(key, series) if series else None,
        "run_urls": {r["run_id"]: run_url(datasette, name, r["run_id"]) for r in board},
        "db_param": None if (index_names(datasette) or [None])[0] == name else name,
        "css_url": static_url(datasette, "runlog.css"),
    }
    return Response.html(await datasette.render_template("runlog_compare.html", context, request=request))


def _group(rows: list[dict], column: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[column], []).append(row)
    return groups


def _points(rows: list[dict]) -> list[tuple[int, float | None]]:
    return [(r["step"], r["value"]) for r in rows]


# -- the step tree -------------------------------------------------------------


def step_tree(steps: list[dict], attempt_counts: dict[str, int]) -> list[dict]:
    """Nest steps under their composite step, branch by branch, keeping run order.

    >>> tree = step_tree([{"step_name": "par", "branch": ""}, {"step_name": "par.b1.t", "branch": "par.b1"}], {})
    >>> [b["label"] for b in tree[0]["branches"]], tree[0]["branches"][0]["steps"][0]["step_name"]
    (['b1'], 'par.b1.t')
    """
    nodes = {s["step_name"]: {**s, "attempts": attempt_counts.get(s["step_name"], 0), "branches": []} for s in steps}
    branches: dict[str, dict] = {}
    root = []
    for step in steps:
        node, branch = nodes[step["step_name"]], step["branch"] or ""
        if not branch:
            root.append(node)
            continue
        if branch not in branches:
            parent = _parent_step(branch, nodes)
            label = branch[len(parent) + 1:] if parent else branch
            branches[branch] = {"name": branch, "label": label, "steps": []}
            (nodes[parent]["branches"] if parent else _orphan_holder(root)).append(branches[branch])
        branches[branch]["steps"].append(node)
    return root


def _parent_step(branch: str, nodes: dict) -> str | None:
    """The composite step holding a branch: the longest step name that prefixes it."""
    candidates = [name for name in nodes if branch.startswith(name + ".")]
    return max(candidates, key=len) if candidates else None


def _orphan_holder(root: list[dict]) -> list[dict]:
    """A branch whose composite step is missing hangs off a placeholder at the root."""
    for node in root:
        if node.get("orphans"):
            return node["branches"]
    holder = {"step_name": "(branches without their step)", "name": "", "orphans": True, "branches": [],
              "status": "", "step_type": "", "attempts": 0, "message": ""}
    root.append(holder)
    return holder["branches"]
