"""Browsing the index: runlog's Datasette plugin (run and compare pages, SVG charts,
stored queries, table descriptions) and ``runlog serve``.

Public API: :func:`make_datasette`, :func:`serve`; the plugin module
:mod:`runlog.web.plugin` is what Datasette loads (entry point ``datasette``).
Pages and charts need the ``datasette`` extra; importing this package does not.

>>> serve("runlog.db", port=8001)   # doctest: +SKIP
"""

from __future__ import annotations

from .metadata import table_metadata
from .serve import make_datasette, serve

__all__ = ["make_datasette", "serve", "table_metadata"]
