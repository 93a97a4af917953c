"""The index: every run of every store in one SQLite file, built incrementally by
ingest and read by every query, page and export.

Public API: :func:`ingest` and :class:`IngestReport`; :func:`open_db` (read-write, or
read-only: an :class:`IndexReader` behind an authorizer) and :func:`upgrade_index` (an index
of an older runlog, in place); the schema (``SCHEMA_VERSION``, :func:`schema_sql`);
:mod:`~runlog.index.queries` (named queries, :func:`run_sql`) and
:mod:`~runlog.index.reports` (runs, one run, metric history, comparisons);
:mod:`~runlog.index.flatten` (a run log as rows).

>>> ingest([".run_log_store"], "runlog.db").summary()                       # doctest: +SKIP
'6 runs ingested, 0 unchanged, 0 failed, 0 pruned; 53 metric points written'
>>> run_sql(open_db("runlog.db", readonly=True), "select count(*) n from runs")   # doctest: +SKIP
(['n'], [{'n': 6}])
"""

from __future__ import annotations

from .db import open_db, upgrade_index
from .ingester import IngestReport, ingest
from .queries import NAMED_QUERIES, run_named, run_sql
from .readonly import IndexReader
from .schema import SCHEMA_VERSION, schema_sql

__all__ = ["NAMED_QUERIES", "SCHEMA_VERSION", "IndexReader", "IngestReport", "ingest", "open_db", "run_named", "run_sql",
           "schema_sql", "upgrade_index"]
