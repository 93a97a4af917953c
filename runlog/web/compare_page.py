"""``/-/runlog/compare``: runs side by side. The runs come from ``run=`` (repeated) or a
filter (``where=``, up to 1,000 runs); the metrics from ``metric=`` (run-level names;
by default the most common ones). One chart per metric overlays the runs; a table holds
each run's varying params and summaries, the best run per metric marked, judged lower-
or higher-is-better from the name and switchable (``dir=loss:desc``); a parallel-
coordinates chart draws params and summaries, one line per run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from ..index import lookup
from ..index.runs import list_runs, lower_is_better
from ..index.specs import Spec
from ..index.tiles import read_series
from ..values import iso_utc
from .charts import Line, line_chart
from .pages import attempt, database_for, on_index, pairs
from .parallel import parallel_coordinates
from .run_page import SMOOTHING, X_AXES, ChartOptions
from .urls import index_names, page_url, run_url, runs_url, static_url

MAX_RUNS = 1000
DEFAULT_METRICS = 2
POINT_BUDGET = 24_000  # points drawn per chart, whatever the number of runs (the page stays small)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _choose(index, args) -> dict[str, Any]:
    """Which runs and metrics the page shows, and in which direction each metric is best."""
    run_ids = list(dict.fromkeys(r for r in args.getlist("run") if r))
    where = (args.get("where") or "").strip()
    for run_id in run_ids:
        lookup.require_run(index, run_id)
    if run_ids:
        where = f"run_id in ({', '.join(_quote(r) for r in run_ids)})"
    metrics = list(dict.fromkeys(m for m in args.getlist("metric") + args.getlist("key") if m))
    for metric in metrics:
        lookup.require_metric(index, metric)
    if not where and metrics:
        where = " or ".join(f"{Spec('metric', m, 'count').label} > 0" for m in metrics)  # NaN last too
    if not where:
        return {"runs": [], "metrics": metrics, "where": ""}
    _, chosen = list_runs(index, [], where=where, limit=MAX_RUNS, defaults=("run_id",))
    runs = [row["run_id"] for row in chosen]
    if not metrics and runs:
        marks = ", ".join("?" * len(runs))
        metrics = [name for (name,) in index.conn.execute(
            f"SELECT name FROM run_metrics WHERE run_id IN ({marks}) AND kind = 'numeric' AND count > 1 "
            f"GROUP BY name ORDER BY count(*) DESC, min(position), name LIMIT {DEFAULT_METRICS}", runs)]
    return {"runs": runs, "metrics": metrics, "where": where}


def _directions(args, metrics: list[str]) -> dict[str, bool]:
    """metric -> lower is better (from the name, or ``dir=NAME:asc|desc|min|max``)."""
    lower = {m: lower_is_better(m) for m in metrics}
    for item in args.getlist("dir"):
        name, _, way = item.rpartition(":")
        if name in lower and way in ("asc", "min", "desc", "max"):
            lower[name] = way in ("asc", "min")
    return lower


def _table(index, runs: list[str], metrics: list[str], lower: dict[str, bool], extra: list[str]):
    """Each run's varying params and each metric's summaries (column specs), and the axes
    of the parallel-coordinates chart."""
    marks = ", ".join("?" * len(runs))
    params = [name for (name,) in index.conn.execute(
        f"SELECT name FROM run_params WHERE run_id IN ({marks}) GROUP BY name "
        f"HAVING count(DISTINCT coalesce(value, text)) > 1 ORDER BY min(position), name LIMIT 12", runs)]
    specs = [Spec("param", p).label for p in params]
    axes = [(Spec("param", p).label, Spec("param", p).label, False) for p in params]
    for metric in metrics:
        best = "min" if lower[metric] else "max"
        judge = Spec("metric", metric, best).label
        specs += [Spec("metric", metric).label, judge, Spec("metric", metric, f"arg{best}").label]
        axes.append((judge, judge, lower[metric]))
    where = f"run_id in ({', '.join(_quote(r) for r in runs)})"
    columns, rows = list_runs(index, list(dict.fromkeys(specs + extra)), where=where, limit=MAX_RUNS,
                              defaults=("run_id", "tag", "status", "start_time"))
    return columns, rows, axes


def _charts(index, runs: list[str], metrics: list[str], options: ChartOptions) -> list[dict[str, Any]]:
    buckets = max(40, min(520, POINT_BUDGET // (2 * max(1, len(runs)))))
    charts = []
    for metric in metrics:
        marks = ", ".join("?" * len(runs))
        where = {row[0]: (row[1], row[2]) for row in index.conn.execute(
            f"SELECT run_id, step_name, key FROM run_metrics WHERE name = ? AND run_id IN ({marks})", [metric, *runs])}
        lines = [Line(run_id, read_series(index.conn, run_id, *where[run_id], buckets, options.steps))
                 for run_id in runs if run_id in where]
        charts.append(line_chart(metric, lines, logy=options.logy, smoothing=options.smooth, zoom=True))
    return charts


def _load(index, args, options: ChartOptions) -> dict[str, Any]:
    chosen, error = attempt(lambda: _choose(index, args), {"runs": [], "metrics": [], "where": ""})
    found: dict[str, Any] = {**chosen, "error": error, "columns": [], "rows": [], "axes": [], "charts": []}
    if not error and chosen["runs"] and chosen["metrics"]:
        lower = _directions(args, chosen["metrics"])
        extra = [c for c in args.getlist("col") if c]
        table, error = attempt(lambda: _table(index, chosen["runs"], chosen["metrics"], lower, extra), ([], [], []))
        found["columns"], found["rows"], found["axes"] = table
        found["error"], found["lower"] = error, lower
        if not error:
            found["charts"] = _charts(index, chosen["runs"], chosen["metrics"], options)
    return found


async def compare_page(datasette, request):
    name, db = await database_for(datasette, request)
    options = ChartOptions(request.args)
    found = await on_index(db, lambda index: _load(index, request.args, options))
    lower = found.get("lower", {})
    best = _best(found["rows"], found["metrics"], lower)
    context = {
        "database": name, "error": found["error"], "runs": found["runs"], "metrics": found["metrics"],
        "where": request.args.get("where") or "", "columns": found["columns"],
        "rows": [_row(datasette, name, found["columns"], row, best) for row in found["rows"]],
        "charts": found["charts"], "options": options, "smoothing": SMOOTHING, "x_axes": X_AXES,
        "parallel": parallel_coordinates(found["rows"], found["axes"]) if len(found["rows"]) > 1 else None,
        "directions": [{"metric": m, "lower": lower[m], "switch_url": _switch(datasette, name, request.args, m, lower[m])}
                       for m in found["metrics"] if m in lower],
        "hidden": [(k, v) for k, v in pairs(request.args) if k not in ("smooth", "logy", "x", "from", "to")],
        "legend": len(found["runs"]) <= 20, "runs_url": runs_url(datasette, name),
        "db_param": None if index_names(datasette)[:1] == [name] else name,
        "unzoom": urlencode([(k, v) for k, v in pairs(request.args) if k not in ("from", "to")]),
        "css_url": static_url(datasette, "runlog.css"), "js_url": static_url(datasette, "runlog.js"),
    }
    return Response.html(await datasette.render_template("runlog_compare.html", context, request=request))


def _best(rows: list[dict[str, Any]], metrics: list[str], lower: dict[str, bool]) -> dict[str, Any]:
    """column -> the best value in it (the summary column that judges each metric)."""
    best = {}
    for metric in metrics:
        column = Spec("metric", metric, "min" if lower.get(metric) else "max").label
        values = [row[column] for row in rows if isinstance(row.get(column), (int, float))]
        if values:
            best[column] = min(values) if lower.get(metric) else max(values)
    return best


def _row(datasette, database: str, columns: list[str], row: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    cells = []
    for column in columns:
        value = row.get(column)
        text = "" if value is None else iso_utc(value) if column == "start_time" else \
            format(value, ".7g") if isinstance(value, float) else str(value)
        cells.append({"text": text, "numeric": isinstance(value, (int, float)), "best": best.get(column) == value
                      and value is not None, "href": run_url(datasette, database, value) if column == "run_id" else ""})
    return {"run_id": row["run_id"], "cells": cells}


def _switch(datasette, database: str, args, metric: str, lower: bool) -> str:
    """This page, with ``metric`` judged the other way."""
    kept = [(k, v) for k, v in pairs(args) if k != "db" and not (k == "dir" and v.rpartition(":")[0] == metric)]
    return page_url(datasette, database, "compare", [*kept, ("dir", f"{metric}:{'max' if lower else 'min'}")])
