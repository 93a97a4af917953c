"""runlog's Datasette plugin: run pages, metric charts, stored queries, run links.

Registered through the ``datasette`` entry point, so ``datasette runlog.db``
gets it as soon as runlog is installed with its ``datasette`` extra. It acts
on every attached database that looks like a runlog index (``runs``,
``steps`` and ``metrics`` tables) and leaves other databases alone.

Pages (``?db=NAME`` picks the index when several are attached):

- ``/-/runlog/run/<run_id>``: status, times, step tree, attempts, params and
  an SVG chart per numeric metric.
- ``/-/runlog/compare?key=K&run=A&run=B``: one key across runs.

Charts are server-rendered SVG; the one script and style sheet are served
from the package (``/-/runlog/static/``), so nothing needs the internet.
Everything that depends on Datasette 0.65's plugin hooks is in this module.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote, unquote, urlencode

import markupsafe
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response, asgi_static

from .serve import INDEX_TABLES, table_metadata

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
PALETTE_SIZE = 8  # series colours rl-s0..rl-s7 in runlog.css

# Datasette instance -> names of its databases that are runlog indexes, in order.
_indexes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# -- hooks ---------------------------------------------------------------------


@hookimpl
async def startup(datasette):
    found = []
    for name, db in datasette.databases.items():
        if name != "_internal" and INDEX_TABLES <= set(await db.table_names()):
            found.append(name)
    _indexes[datasette] = found


@hookimpl
def prepare_jinja2_environment(env, datasette):
    # Python 3.11 cannot find static/templates beside a plugin that is a module,
    # so runlog adds its own template folder (names are prefixed runlog_).
    from jinja2 import ChoiceLoader, FileSystemLoader

    env.loader = ChoiceLoader([env.loader, FileSystemLoader(str(TEMPLATES))])


def _read_only(datasette, database: str) -> bool:
    """Set by ``runlog serve`` (``databases.<name>.plugins.runlog.read_only``)."""
    config = datasette.plugin_config("runlog", database=database, fallback=False) or {}
    return bool(config.get("read_only"))


@hookimpl
def prepare_connection(conn, database, datasette):
    if _read_only(datasette, database):
        conn.execute("PRAGMA query_only = 1")


@hookimpl
def asgi_wrapper(datasette):
    # A read-only server answers reads only: Datasette 0.65 has no write API, but
    # a POST to a stored query fails with a 500 there instead of a clean refusal.
    def wrap(app):
        async def refuse_writes(scope, receive, send):
            if (scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS")
                    and any(_read_only(datasette, name) for name in datasette.databases)):
                await Response.text("runlog serve is read-only", status=405).asgi_send(send)
                return
            await app(scope, receive, send)

        return refuse_writes

    return wrap


@hookimpl
def get_metadata(datasette, key, database, table):
    names = _indexes.get(datasette) or []
    return {"databases": {name: {"tables": table_metadata()} for name in names}}


@hookimpl
def canned_queries(datasette, database):
    if database not in (_indexes.get(datasette) or []):
        return None
    from ..index.queries import NAMED_QUERIES

    return {
        name: {"sql": q.sql, "title": q.title, "description": q.description, "params": list(q.params)}
        for name, q in NAMED_QUERIES.items()
    }


@hookimpl
def render_cell(value, column, table, database, datasette):
    if isinstance(value, dict):  # a foreign key Datasette expanded to {"value", "label"}
        value = value.get("value")
    if column not in ("run_id", "original_run_id") or not value or not isinstance(value, str):
        return None
    if database not in (_indexes.get(datasette) or []):
        return None
    href = run_url(datasette, database, value)
    return markupsafe.Markup('<a href="{}">{}</a>').format(href, value)


@hookimpl
def extra_js_urls(database, view_name, datasette):
    # runlog.js links the run_id cells Datasette draws itself (the primary key
    # column of runs) and offers desc/asc for the leaderboard's direction.
    if view_name in ("table", "query", "row") and database in (_indexes.get(datasette) or []):
        return [static_url(datasette, "runlog.js") + "?" + urlencode({"db": database})]
    return []


@hookimpl
def register_routes():
    return [
        (r"^/-/runlog/static/(?P<path>.*)$", asgi_static(STATIC)),
        (r"^/-/runlog/run/(?P<run_id>[^/]+)$", run_page),
        (r"^/-/runlog/compare$", compare_page),
    ]


# -- urls ----------------------------------------------------------------------


def static_url(datasette, name: str) -> str:
    return datasette.urls.path(f"-/runlog/static/{name}")


def run_url(datasette, database: str, run_id: str) -> str:
    """Link to a run's page; ``?db=`` only when it is not the first runlog index."""
    url = datasette.urls.path("-/runlog/run/" + quote(run_id, safe=""))
    names = _indexes.get(datasette) or []
    return url if names and names[0] == database else f"{url}?{urlencode({'db': database})}"


def compare_url(datasette, database: str, key: str, run_ids=()) -> str:
    query = [("key", key)] + [("run", r) for r in run_ids]
    names = _indexes.get(datasette) or []
    if not names or names[0] != database:
        query.append(("db", database))
    return datasette.urls.path("-/runlog/compare") + "?" + urlencode(query)


async def _database(datasette, request):
    """The runlog index a page asks for, after Datasette's view permissions."""
    names = _indexes.get(datasette) or []
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
        db, "select distinct key from metrics where kind = 'numeric' order by key")]
    key = request.args.get("key") or (keys[0] if keys else "")
    direction = "asc" if request.args.get("direction") == "asc" else "desc"
    from ..index.queries import NAMED_QUERIES

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
        "db_param": None if (_indexes.get(datasette) or [None])[0] == name else name,
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


# -- SVG charts ----------------------------------------------------------------


def svg_chart(key: str, series: list[tuple[str, list[tuple[int, float | None]]]],
              width: int = 560, height: int = 240) -> dict:
    """Screen geometry for a line chart of value against step; the template draws it.

    Points that are NaN or infinite are counted in ``skipped`` and not drawn.

    >>> chart = svg_chart("loss", [("train", [(0, 1.0), (1, 0.5), (2, float("nan"))])])
    >>> [(p["step"], p["value"]) for p in chart["series"][0]["points"]], chart["skipped"]
    ([(0, 1.0), (1, 0.5)], 1)
    """
    left, right, top, bottom = 64, 16, 16, 36
    inset = 10  # keeps the first and last marks off the axes
    finite = [(label, [(s, v) for s, v in pts if v is not None and math.isfinite(v)]) for label, pts in series]
    skipped = sum(len(pts) for _, pts in series) - sum(len(pts) for _, pts in finite)
    xs = [s for _, pts in finite for s, _ in pts] or [0]
    ys = [v for _, pts in finite for _, v in pts] or [0.0]
    x_ticks, (x_lo, x_hi) = _ticks(min(xs), max(xs), integer=True)
    y_ticks, (y_lo, y_hi) = _ticks(min(ys), max(ys))
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x):
        return round(left + inset + (x - x_lo) / (x_hi - x_lo) * (plot_w - 2 * inset), 2)

    def sy(y):
        return round(top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h, 2)

    drawn = []
    for index, (label, pts) in enumerate(finite):
        points = [{"x": sx(s), "y": sy(v), "step": s, "value": v, "text": _fmt(v)} for s, v in pts]
        drawn.append({
            "label": label,
            "css": f"rl-s{index % PALETTE_SIZE}",
            "points": points,
            "path": " ".join(f"{p['x']},{p['y']}" for p in points),
        })
    return {
        "key": key,
        "width": width,
        "height": height,
        "box": {"left": left, "top": top, "right": width - right, "bottom": top + plot_h},
        "x_ticks": [{"pos": sx(t), "text": _fmt(t)} for t in x_ticks],
        "y_ticks": [{"pos": sy(t), "text": _fmt(t)} for t in y_ticks],
        "series": drawn,
        "count": sum(len(s["points"]) for s in drawn),
        "skipped": skipped,
    }


def _ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> tuple[list[float], tuple[float, float]]:
    """Round tick values covering lo..hi, and the axis range they span."""
    if not math.isfinite(hi - lo):
        return [lo, hi], (lo, hi)
    if lo == hi and integer:
        return [lo], (lo - 1, lo + 1)
    if lo == hi:
        pad = 1.0 if lo == 0 else abs(lo) * 0.1
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    start, end = math.floor(lo / step) * step, math.ceil(hi / step) * step
    ticks = [start + i * step for i in range(int(round((end - start) / step)) + 1)]
    return ticks, (start, end)


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".4g")
