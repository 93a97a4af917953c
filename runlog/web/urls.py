"""Which attached databases are runlog indexes, and the URLs of runlog's pages.

>>> run_url(datasette, "runlog", "demo-1")    # doctest: +SKIP
'/-/runlog/run/demo-1'
"""

from __future__ import annotations

import weakref
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


def run_url(datasette, database: str, run_id: str) -> str:
    """Link to a run's page; ``?db=`` only when it is not the first runlog index."""
    url = datasette.urls.path("-/runlog/run/" + quote(run_id, safe=""))
    names = index_names(datasette)
    return url if names and names[0] == database else f"{url}?{urlencode({'db': database})}"


def compare_url(datasette, database: str, key: str, run_ids=()) -> str:
    query = [("key", key)] + [("run", r) for r in run_ids]
    names = index_names(datasette)
    if not names or names[0] != database:
        query.append(("db", database))
    return datasette.urls.path("-/runlog/compare") + "?" + urlencode(query)
