"""``runlog serve``: Datasette on an index opened read-only, with runlog's metadata
and plugin (:mod:`runlog.web.plugin`), on a loopback port unless told otherwise.

>>> serve("runlog.db", port=8001)   # doctest: +SKIP
"""

from __future__ import annotations

import socket
import webbrowser
from pathlib import Path
from ..errors import MissingExtra, RunlogError
from ..index import open_db
from .metadata import build_metadata


def make_datasette(db_path: str | Path):
    """A Datasette on the index, read-only, with runlog's metadata.

    Reads use ``mode=ro`` connections and every connection is ``query_only``,
    so nothing sent over the web can change the file; an index updated by
    ``runlog ingest`` while serving shows up without a restart.

    >>> ds = make_datasette("runlog.db")  # doctest: +SKIP
    >>> await ds.client.get("/-/runlog/run/demo-1")  # doctest: +SKIP
    """
    path = Path(db_path)
    check_index(path)  # a missing index is the first thing to fix, with or without datasette
    try:
        from datasette.app import Datasette
    except ImportError:
        raise MissingExtra("datasette", "datasette") from None
    # Facet suggestions run a GROUP BY per column on every table page: seconds on the
    # big tables. The runs page's facets, and a table's own facets, stay.
    return Datasette(files=[str(path)], metadata=build_metadata(path.stem), settings={"suggest_facets": False})


def check_index(path: Path) -> None:
    """Refuse a missing file, or one that is not a runlog index, with a message saying the fix."""
    open_db(path, readonly=True).close()


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8001, open_browser: bool = False,
          on_ready=None) -> None:
    """Serve the index at http://host:port/ until interrupted (binds to loopback by default).

    ``on_ready(url)`` is called with the runs page's address once the server is about to
    accept requests; ``open_browser`` opens it.

    >>> serve("runlog.db", port=8001)  # doctest: +SKIP
    """
    ds = make_datasette(db_path)
    try:
        import uvicorn
    except ImportError:
        raise MissingExtra("datasette", "uvicorn") from None
    _check_port(host, port)
    url = (f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}") + "/-/runlog/runs"
    if on_ready:
        on_ready(url)
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RunlogError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port") from None
