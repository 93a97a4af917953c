"""runlog's Datasette plugin: run pages, metric charts, stored queries, run links.

Registered through the ``datasette`` entry point, so ``datasette runlog.db``
gets it as soon as runlog is installed with its ``datasette`` extra. It acts
on every attached database that looks like a runlog index (``runs``,
``steps`` and ``metrics`` tables) and leaves other databases alone.

Pages (``?db=NAME`` picks the index when several are attached):

- ``/-/runlog/runs``: the front door, runs to sort, filter and pick (:mod:`.runs_page`);
- ``/-/runlog/run/<run_id>``: one run, its facts and charts (:mod:`.run_page`);
- ``/-/runlog/compare?run=A&run=B``: runs side by side (:mod:`.compare_page`);
- ``/-/runlog/series.csv?run=&step=&key=``: every point of one series.

Charts are server-rendered SVG; the one script and style sheet are served
from the package (``/-/runlog/static/``), so nothing needs the internet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlencode

import markupsafe
from datasette import hookimpl
from datasette.utils import tilde_decode
from datasette.utils.asgi import Response, asgi_static

from ..index import functions
from ..index.readonly import tune
from ..index.queries import NAMED_QUERIES
from ..values import EPOCH_MS_COLUMNS, TIME_COLUMNS, iso_utc, iso_utc_ms
from .compare_page import compare_page
from .metadata import INDEX_TABLES, LARGE_TABLES, front_door, table_metadata
from .run_page import run_page, series_page
from .runs_page import runs_page
from .urls import index_names, run_url, runs_url, set_index_names, static_url

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
    if database in index_names(datasette):
        tune(conn)  # memory-mapped reads: a run page jumps between tables
    if _read_only(datasette, database):
        conn.execute("PRAGMA query_only = 1")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def runlog_requests(scope, receive, send):
            if scope["type"] == "http":
                await datasette.invoke_startup()  # which databases are indexes (once; a no-op after)
                # A read-only server answers reads only: Datasette 0.65 has no write API, but
                # a POST to a stored query fails with a 500 there instead of a clean refusal.
                if scope["method"] not in ("GET", "HEAD", "OPTIONS") and any(
                        _read_only(datasette, name) for name in datasette.databases):
                    await Response.text("runlog serve is read-only", status=405).asgi_send(send)
                    return
                redirect = _run_row_redirect(datasette, scope["path"])
                if redirect:
                    await Response.redirect(redirect).asgi_send(send)
                    return
                scope = _lighter_large_tables(datasette, scope)
            await app(scope, receive, send)

        return runlog_requests

    return wrap


def _run_row_redirect(datasette, path: str) -> str | None:
    """Datasette's page of one row of ``runs`` (where its tables link a run_id) is the run page."""
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[1] == "runs" and parts[0] in index_names(datasette) and "." not in parts[2]:
        return run_url(datasette, parts[0], tilde_decode(unquote(parts[2])))
    return None


def _lighter_large_tables(datasette, scope):
    """The table pages of the big tables skip the whole-table count and facet suggestions
    (on millions of rows they take seconds); ``_nocount=`` in the URL counts anyway."""
    parts = scope["path"].strip("/").split("/")
    if len(parts) != 2 or parts[0] not in index_names(datasette) or parts[1].split(".")[0] not in LARGE_TABLES:
        return scope
    query = scope.get("query_string", b"").decode("latin-1")
    names = {pair.split("=", 1)[0] for pair in query.split("&") if pair}
    extra = [f"{name}=1" for name in ("_nocount", "_nosuggest") if name not in names]
    if not extra:
        return scope
    return {**scope, "query_string": "&".join(filter(None, [query, *extra])).encode("latin-1")}


@hookimpl
def get_metadata(datasette, key, database, table):
    names = index_names(datasette)
    if not names:
        return {}
    return {
        "description_html": front_door(runs_url(datasette, names[0])),
        "databases": {name: {"description_html": front_door(runs_url(datasette, name)), "tables": table_metadata()}
                      for name in names},
    }


@hookimpl
def canned_queries(datasette, database):
    if database not in index_names(datasette):
        return None
    return {
        name: {"sql": q.sql, "title": q.title, "description": q.description, "params": list(q.params)}
        for name, q in NAMED_QUERIES.items()
    }


JSON_COLUMNS = {"parameters", "run_config", "value_text", "text"}


@hookimpl
def render_cell(value, column, table, database, datasette):
    """In a runlog index: run ids link to the run page, times read as UTC, long JSON folds."""
    if database not in index_names(datasette):
        return None
    if isinstance(value, dict):  # a foreign key Datasette expanded to {"value", "label"}
        value = value.get("value")
    if column in ("run_id", "original_run_id") and value and isinstance(value, str):
        return markupsafe.Markup('<a href="{}">{}</a>').format(run_url(datasette, database, value), value)
    if column in TIME_COLUMNS and isinstance(value, str) and value:
        return markupsafe.Markup('<time title="{}">{}</time>').format(value, iso_utc(value))
    if column in EPOCH_MS_COLUMNS and isinstance(value, int):
        return markupsafe.Markup('<time title="{}">{}</time>').format(value, iso_utc_ms(value))
    if column in JSON_COLUMNS and isinstance(value, str) and len(value) > 60 and value[:1] in "{[":
        return markupsafe.Markup('<details class="rl-json"><summary>{}…</summary><code>{}</code></details>').format(
            value[:60], value)
    return None


@hookimpl
def extra_css_urls(database, datasette):
    if database is None or database in index_names(datasette):
        return [static_url(datasette, "runlog.css")]
    return []


@hookimpl
def extra_js_urls(database, view_name, datasette):
    # runlog.js offers desc/asc for the leaderboard's direction, and styles runlog's bits.
    if view_name in ("table", "query", "row") and database in index_names(datasette):
        return [static_url(datasette, "runlog.js") + "?" + urlencode({"db": database})]
    return []


@hookimpl
def register_routes():
    return [
        (r"^/-/runlog/static/(?P<path>.*)$", asgi_static(STATIC)),
        (r"^/-/runlog/runs$", runs_page),
        (r"^/-/runlog/run/(?P<run_id>[^/]+)$", run_page),
        (r"^/-/runlog/compare$", compare_page),
        (r"^/-/runlog/series\.(?P<format>csv|json)$", series_page),
    ]
