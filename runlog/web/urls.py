"""Which attached databases are runlog indexes, and the URLs of runlog's pages. Every
link a page draws is built here, as plain server-side HTML (no JavaScript needed).

>>> run_url(datasette, "runlog", "demo-1")    # doctest: +SKIP
'/-/runlog/run/demo-1'
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from urllib.parse import quote, urlencode

# Datasette instance -> names of its databases that are runlog indexes, in order.
_indexes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def index_names(datasette) -> list[str]:
    """The attached databases that are runlog indexes (found at start-up)."""
    return _indexes.get(datasette) or []


def set_index_names(datasette, names: list[str]) -> None:
    _indexes[datasette] = names


def static_url(datasette, name: str) -> str:
    return datasette.urls.path(f"-/runlog/static/{name}")


def _with_db(datasette, database: str, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``?db=`` only when ``database`` is not the first runlog index."""
    names = index_names(datasette)
    return query if names and names[0] == database else [*query, ("db", database)]


def page_url(datasette, database: str, page: str, query: Iterable[tuple[str, str]] = ()) -> str:
    """``/-/runlog/<page>?...`` with ``query`` (pairs, repeated names kept)."""
    pairs = _with_db(datasette, database, [(k, str(v)) for k, v in query if v not in (None, "")])
    return datasette.urls.path(f"-/runlog/{page}") + (f"?{urlencode(pairs)}" if pairs else "")


def runs_url(datasette, database: str, query: Iterable[tuple[str, str]] = ()) -> str:
    return page_url(datasette, database, "runs", query)


def run_url(datasette, database: str, run_id: str, query: Iterable[tuple[str, str]] = ()) -> str:
    """Link to a run's page."""
    return page_url(datasette, database, "run/" + quote(run_id, safe=""), query)


def compare_url(datasette, database: str, metrics=(), run_ids=(), where: str | None = None) -> str:
    query = [("metric", m) for m in metrics] + [("run", r) for r in run_ids] + [("where", where or "")]
    return page_url(datasette, database, "compare", query)


def series_url(datasette, database: str, run_id: str, step_name: str, key: str, fmt: str = "csv") -> str:
    """Every point of one series, as CSV or JSON."""
    return page_url(datasette, database, f"series.{fmt}", [("run", run_id), ("step", step_name), ("key", key)])
