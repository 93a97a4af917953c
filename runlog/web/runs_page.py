"""``/-/runlog/runs``: the front door. One row per run, 100 to a page, with the params
that vary and the most common metrics as columns by default and any column spec added
(``col=``); sorted by a click on a header (``sort=``), filtered in the filter language
(``where=``), narrowed by tag and status facets. The whole state is in the URL, so a
view can be shared; everything is server-side HTML, so it works with JavaScript off.
The queries are the CLI's (:mod:`runlog.index.runs`).
"""

from __future__ import annotations

import math
import os
from typing import Any

from datasette.utils.asgi import Response

from ..errors import UsageProblem
from ..index.runs import count_runs, default_specs, list_runs, run_facets
from ..index.specs import parse_spec
from ..values import TIME_COLUMNS, iso_utc
from .pages import attempt, database_for, on_index
from .urls import index_names, run_url, runs_url, static_url

PAGE_SIZE = 100
# Default columns of an index, until the index changes (they take a scan of every run).
_defaults: dict[tuple, list[str]] = {}


def _cached_defaults(index, path: str | None) -> list[str]:
    stamp = tuple(_stat(f"{path}{suffix}") for suffix in ("", "-wal")) if path else None
    key = (path, stamp)
    if key not in _defaults or stamp is None:
        _defaults.clear()
        _defaults[key] = default_specs(index)
    return _defaults[key]


def _stat(path: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


class RunsView:
    """The page's state, as the URL holds it."""

    def __init__(self, args):
        self.where = (args.get("where") or "").strip()
        self.sort = [s for s in args.getlist("sort") if s]
        self.cols = [c for c in args.getlist("col") if c]
        self.tag = args.get("tag") or None
        self.status = args.get("status") or None
        try:
            self.page = max(1, int(args.get("page") or 1))
        except ValueError:
            self.page = 1

    def query(self, **changes) -> list[tuple[str, str]]:
        """The URL's parameters, with ``changes`` (a list replaces, None removes)."""
        state = {"where": self.where, "sort": self.sort, "col": self.cols, "tag": self.tag, "status": self.status,
                 "page": self.page if self.page > 1 else None} | changes
        pairs = []
        for name, value in state.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    pairs.append((name, str(item)))
        return pairs


def _load(index, view: RunsView, path: str | None) -> dict[str, Any]:
    defaults = _cached_defaults(index, path)
    specs = list(dict.fromkeys(defaults + view.cols))
    filters = {"where": view.where or None, "tag": view.tag, "status": view.status}
    (columns, rows), error = attempt(lambda: list_runs(index, specs, sort=view.sort, limit=PAGE_SIZE,
                                                       offset=(view.page - 1) * PAGE_SIZE, **filters), ([], []))
    if error:
        return {"columns": [], "rows": [], "total": 0, "facets": {}, "error": error, "defaults": defaults}
    # a default column that no run of this page has is noise here (the user's own stay)
    columns = [c for c in columns if c not in defaults or c in view.cols or any(r[c] is not None for r in rows)]
    return {"columns": columns, "rows": rows, "total": count_runs(index, **filters),
            "facets": run_facets(index, **filters), "error": "", "defaults": defaults}


async def runs_page(datasette, request):
    name, db = await database_for(datasette, request)
    view = RunsView(request.args)
    found = await on_index(db, lambda index: _load(index, view, db.path))
    pages = max(1, math.ceil(found["total"] / PAGE_SIZE))
    context = {
        "database": name, "view": view, "error": found["error"], "total": found["total"],
        "first": (view.page - 1) * PAGE_SIZE + 1, "last": (view.page - 1) * PAGE_SIZE + len(found["rows"]),
        "headers": [_header(datasette, name, view, column, found["defaults"]) for column in found["columns"]],
        "rows": [_row(datasette, name, found["columns"], row) for row in found["rows"]],
        "facets": {column: [_facet(datasette, name, view, column, value, count) for value, count in values]
                   for column, values in found["facets"].items()},
        "hidden": [(k, v) for k, v in view.query() if k not in ("where", "page")],
        "prev_url": runs_url(datasette, name, view.query(page=view.page - 1)) if view.page > 1 else "",
        "next_url": runs_url(datasette, name, view.query(page=view.page + 1)) if view.page < pages else "",
        "compare_action": datasette.urls.path("-/runlog/compare"),
        "db_param": None if index_names(datasette)[:1] == [name] else name,
        "action": runs_url(datasette, name), "css_url": static_url(datasette, "runlog.css"),
        "js_url": static_url(datasette, "runlog.js"),
    }
    return Response.html(await datasette.render_template("runlog_runs.html", context, request=request))


def _header(datasette, database: str, view: RunsView, column: str, defaults: list[str]) -> dict[str, Any]:
    """A column header: a link that sorts by it (again: the other way), and one to remove
    a column the user added."""
    current = view.sort[0] if view.sort else ""
    sort = f"-{column}" if current == column else column
    arrow = " ▲" if current == column else " ▼" if current == f"-{column}" else ""
    removable = column in view.cols and column not in defaults
    return {
        "label": column, "arrow": arrow, "kind": _kind(column),
        "sort_url": runs_url(datasette, database, view.query(sort=[sort], page=None)),
        "remove_url": runs_url(datasette, database, view.query(col=[c for c in view.cols if c != column], page=None))
        if removable else "",
    }


def _kind(column: str) -> str:
    try:
        return parse_spec(column).kind
    except UsageProblem:  # "steps", and other columns that are not specs
        return "field"


def _row(datasette, database: str, columns: list[str], row: dict[str, Any]) -> dict[str, Any]:
    cells = []
    for column in columns:
        value = row.get(column)
        css = "rl-num" if isinstance(value, (int, float)) else "rl-time" if column in TIME_COLUMNS else ""
        cells.append({"text": _text(column, value), "css": css,
                      "href": run_url(datasette, database, value) if column == "run_id" else ""})
    return {"run_id": row["run_id"], "cells": cells}


def _text(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in TIME_COLUMNS:
        return iso_utc(value)
    if isinstance(value, float):
        return format(value, ".7g")
    return str(value)


def _facet(datasette, database: str, view: RunsView, column: str, value: Any, count: int) -> dict[str, Any]:
    selected = getattr(view, column) == value
    return {"value": "(none)" if value in (None, "") else value, "count": count, "selected": selected,
            "url": runs_url(datasette, database, view.query(**{column: None if selected else value, "page": None}))}
