"""``/-/runlog/run/<run_id>``: everything about one run. Facts with the code identity
(commit, repository, clean or dirty) and the catalog; the step tree and attempts; the
parameters by run-level name; metrics recorded once as a table of values; every
series as a line chart, one line per step or branch that recorded the key, full page
width, with smoothing, a log scale and (where times differ) a time axis, set in the
URL (``smooth=0.9&logy=1&x=time``), as is a zoom into a range of steps
(``from=1000&to=2000``: dragging across a chart sets it). ``/-/runlog/series.csv``
gives a series whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any
from urllib.parse import unquote, urlencode

from datasette.utils.asgi import NotFound, Response

from ..index.points import timestamp_ms
from ..index.tiles import read_series, read_series_by_time
from ..values import iso_utc, json_safe
from .charts import SMOOTHING, Line, line_chart
from .pages import database_for, on_index, pairs, step_tree
from .urls import compare_url, index_names, run_url, runs_url, series_url, static_url

CHART_WIDTH = 1100
BUCKETS = 520  # about one point per pixel column of the plot (each bucket draws two)
X_AXES = {"step": "step", "time": "wall time (s since 1970)", "since": "seconds since the run started"}


class ChartOptions:
    """The charts' controls, as the URL holds them."""

    def __init__(self, args):
        try:
            smooth = float(args.get("smooth") or 0)
        except ValueError:
            smooth = 0.0
        self.smooth = min(SMOOTHING, key=lambda s: abs(s - smooth))
        self.logy = args.get("logy") in ("1", "on", "true")
        self.x = args.get("x") if args.get("x") in X_AXES else "step"
        # a zoom: the steps from..to (either end may be open)
        self.start, self.end = _step(args.get("from")), _step(args.get("to"))
        if self.start is not None and self.end is not None and self.start > self.end:
            self.start, self.end = self.end, self.start

    @property
    def steps(self) -> tuple[int, int] | None:
        if self.start is None and self.end is None:
            return None
        return (-(2 ** 63) if self.start is None else self.start, 2 ** 63 - 1 if self.end is None else self.end)


def _step(text: str | None) -> int | None:
    try:
        return int(float(text)) if text not in (None, "") else None
    except (ValueError, OverflowError):
        return None


def _load(index, run_id: str) -> dict[str, Any] | None:
    conn = index.conn

    def rows(sql: str) -> list[dict[str, Any]]:
        cursor = conn.execute(sql, (run_id,))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    runs = rows("SELECT * FROM runs WHERE run_id = ?")
    if not runs:
        return None
    return {
        "run": runs[0],
        "steps": rows("SELECT * FROM steps WHERE run_id = ? ORDER BY position"),
        "attempts": rows("SELECT a.* FROM attempts a LEFT JOIN steps s ON s.run_id = a.run_id AND "
                         "s.step_name = a.step_name WHERE a.run_id = ? ORDER BY s.position, a.attempt_number"),
        "params": rows("SELECT name, step_name, direction, kind, text FROM run_params WHERE run_id = ? "
                       "ORDER BY position, name"),
        "metrics": rows("SELECT * FROM run_metrics WHERE run_id = ? ORDER BY position, key"),
        "code": rows("SELECT code_identifier, code_identifier_type, code_identifier_url, code_identifier_dependable, "
                     "code_identifier_message, group_concat(DISTINCT step_name) AS steps FROM code_identities "
                     "WHERE run_id = ? GROUP BY 1, 2, 3, 4, 5 ORDER BY min(rowid)"),
        "catalog": rows("SELECT c.step_name, c.name, c.stage, c.data_hash, c.catalog_relative_path, "
                        "c.catalog_handler_location FROM catalog c LEFT JOIN steps s ON s.run_id = c.run_id "
                        "AND s.step_name = c.step_name WHERE c.run_id = ? ORDER BY s.position, c.name"),
    }


def _charts(index, run_id: str, metrics: list[dict[str, Any]], options: ChartOptions, start_ms: int | None,
            link) -> list[dict[str, Any]]:
    """One chart per key recorded more than once, one line per step that recorded it."""
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for metric in metrics:
        if metric["count"] > 1 and metric["kind"] in ("numeric", "mixed"):
            by_key[metric["key"]].append(metric)
    charts = []
    for key, series in by_key.items():
        timed = any((m["timestamps"] or 0) > 1 for m in series)
        x = options.x if timed else "step"
        lines = []
        for m in series:
            if x == "step":
                points = read_series(index.conn, run_id, m["step_name"], key, BUCKETS, options.steps)
            else:
                points = read_series_by_time(index.conn, run_id, m["step_name"], key, BUCKETS,
                                             (start_ms or 0) if x == "since" else 0)
            lines.append(Line(m["name"], points, link(m["step_name"], key)))
        chart = line_chart(key, lines, width=CHART_WIDTH, logy=options.logy, smoothing=options.smooth,
                           x_label=X_AXES[x], zoom=x == "step")
        chart["names"] = [m["name"] for m in series]
        chart["timed"] = timed
        charts.append(chart)
    return charts


async def run_page(datasette, request):
    name, db = await database_for(datasette, request)
    run_id = unquote(request.url_vars["run_id"])
    options = ChartOptions(request.args)

    def link(step_name: str, key: str) -> str:
        return series_url(datasette, name, run_id, step_name, key)

    def work(index):
        found = _load(index, run_id)
        if found is not None:
            start = found["run"]["start_time"]
            found["charts"] = _charts(index, run_id, found["metrics"], options, timestamp_ms(start), link)
        return found

    found = await on_index(db, work)
    if found is None:
        raise NotFound(f"no run {run_id!r} in {name}")
    run = found["run"]
    values = [m for m in found["metrics"] if m["count"] == 1 or m["kind"] not in ("numeric", "mixed")]
    attempt_counts: dict[str, int] = defaultdict(int)
    for a in found["attempts"]:
        attempt_counts[a["step_name"]] += 1
    context = {
        "run": run, "database": name, "times": {k: iso_utc(run[k]) if run[k] else "" for k in ("start_time",
                                                                                                 "end_time")},
        "tree": step_tree(found["steps"], attempt_counts), "params": found["params"],
        "attempts": [{**a, "start_time": iso_utc(a["start_time"]) if a["start_time"] else "",
                      "end_time": iso_utc(a["end_time"]) if a["end_time"] else ""} for a in found["attempts"]],
        "values": values, "charts": found["charts"], "code": found["code"], "catalog": found["catalog"],
        "options": options, "smoothing": SMOOTHING, "x_axes": X_AXES,
        "timed": any(c["timed"] for c in found["charts"]),
        "compare_urls": {c["title"]: compare_url(datasette, name, metrics=[c["names"][0]], run_ids=[run_id])
                         for c in found["charts"]},
        "runs_url": runs_url(datasette, name), "action": run_url(datasette, name, run_id),
        "db_param": None if index_names(datasette)[:1] == [name] else name,
        "original_url": run["original_run_id"] and run_url(datasette, name, run["original_run_id"]),
        "unzoom": urlencode([(k, v) for k, v in pairs(request.args) if k not in ("from", "to")]),
        "css_url": static_url(datasette, "runlog.css"), "js_url": static_url(datasette, "runlog.js"),
    }
    return Response.html(await datasette.render_template("runlog_run.html", context, request=request))


async def series_page(datasette, request):
    """``/-/runlog/series.csv`` (or ``.json``) ``?run=&step=&key=``: every point of one series."""
    name, db = await database_for(datasette, request)
    run_id, step_name, key = (request.args.get(k) or "" for k in ("run", "step", "key"))
    points = await db.execute_fn(lambda conn: conn.execute(
        "SELECT step, value, value_text, kind, timestamp_ms FROM metrics WHERE run_id = ? AND step_name = ? "
        "AND key = ? ORDER BY step", (run_id, step_name, key)).fetchall())
    if not points:
        raise NotFound(f"no series {key!r} of step {step_name!r} in run {run_id!r}")
    columns = ["step", "value", "value_text", "kind", "timestamp_ms"]
    if request.url_vars["format"] == "json":
        body = json.dumps([json_safe(dict(zip(columns, p))) for p in points])
        return Response(body, content_type="application/json; charset=utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else repr(v) if isinstance(v, float) else v for v in p] for p in points)
    filename = f"{run_id}-{step_name}-{key}.csv".replace("/", "_").replace('"', "")
    return Response(buffer.getvalue(), content_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})
