"""Where an :class:`~runlog.api.Index` reads from, safely from several threads: an index
file gets one read-only connection per thread (SQLite reads in parallel); a lake gets
one DuckDB connection, used by one thread at a time.

>>> with Connections("runlog.db").use() as db:                      # doctest: +SKIP
...     db.conn.execute("select count(*) from runs").fetchone()
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RunlogError
from ..store import is_url

DEFAULT_DB = "runlog.db"


def default_path() -> str:
    """The index the CLI and :func:`runlog.open` read when given none: ``$RUNLOG_DB``,
    else ``runlog.db`` in the current folder."""
    return os.environ.get("RUNLOG_DB") or DEFAULT_DB


def is_lake(location: str | os.PathLike) -> bool:
    """A lake is a folder (an index is one file) or a URL (SQLite reads only local files)."""
    return is_url(str(location)) or Path(location).is_dir()


class Connections:
    """The connections of one index or lake at ``location``; :meth:`use` gives this
    thread's. The first is opened at once, so a wrong location fails here."""

    def __init__(self, location: str | os.PathLike, endpoint_url: str | None = None):
        self.location = str(location)
        self.endpoint_url = endpoint_url
        self.lake = None
        self.readers: list[Any] = []
        self.local = threading.local()
        self.lock = threading.Lock()
        self.closed = False
        if is_lake(location):
            from ..lake import LakeDB

            self.lake = LakeDB(self.location, endpoint_url)
        else:
            self._reader()

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """This thread's connection (an ``IndexReader``, or the ``LakeDB`` while it is this
        thread's turn)."""
        if self.closed:
            raise RunlogError(f"{self.location} was closed: open it again with runlog.open({self.location!r})")
        if self.lake is None:
            yield self._reader()
            return
        with self.lock:
            yield self.lake

    def _reader(self):
        reader = getattr(self.local, "reader", None)
        if reader is None:
            from ..index import IndexReader

            reader = IndexReader.open(self.location)
            with self.lock:
                self.readers.append(reader)
            self.local.reader = reader
        return reader

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for reader in self.readers:
                reader.close()
            self.readers.clear()
            if self.lake is not None:
                self.lake.close()
