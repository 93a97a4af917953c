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
The hooks are here; the pages in :mod:`.pages`, the charts in :mod:`.charts`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import markupsafe
from datasette import hookimpl
from datasette.utils.asgi import Response, asgi_static

from ..index import functions
from ..index.queries import NAMED_QUERIES
from .metadata import INDEX_TABLES, table_metadata
from .pages import compare_page, run_page
from .urls import index_names, run_url, set_index_names, static_url

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


# -- hooks ---------------------------------------------------------------------


@hookimpl
async def startup(datasette):
    found = []
    for name, db in datasette.databases.items():
        if name != "_internal" and INDEX_TABLES <= set(await db.table_names()):
            found.append(name)
    set_index_names(datasette, found)


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
    functions.register(conn)  # regexp, and the leaderboard's direction
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
    names = index_names(datasette)
    return {"databases": {name: {"tables": table_metadata()} for name in names}}


@hookimpl
def canned_queries(datasette, database):
    if database not in index_names(datasette):
        return None
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
    if database not in index_names(datasette):
        return None
    href = run_url(datasette, database, value)
    return markupsafe.Markup('<a href="{}">{}</a>').format(href, value)


@hookimpl
def extra_js_urls(database, view_name, datasette):
    # runlog.js links the run_id cells Datasette draws itself (the primary key
    # column of runs) and offers desc/asc for the leaderboard's direction.
    if view_name in ("table", "query", "row") and database in index_names(datasette):
        return [static_url(datasette, "runlog.js") + "?" + urlencode({"db": database})]
    return []


@hookimpl
def register_routes():
    return [
        (r"^/-/runlog/static/(?P<path>.*)$", asgi_static(STATIC)),
        (r"^/-/runlog/run/(?P<run_id>[^/]+)$", run_page),
        (r"^/-/runlog/compare$", compare_page),
    ]
