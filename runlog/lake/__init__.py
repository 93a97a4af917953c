"""The index as a Parquet dataset (a "lake"): the same tables, written where data
platforms read them (a folder, ``s3://``, ``gs://``), built in parallel and in shards,
and queried with DuckDB, Spark, Polars or Trino.

Public API: :func:`build_lake` (``runlog lake build``) and its :class:`LakeReport`;
:func:`open_lake` (a read-only DuckDB connection with the lake's tables as views, for
``runlog query --lake``); the schema: ``TABLES``, ``LAKE_VERSION``, :func:`arrow_schema`.

Layout of a lake at DEST::

    DEST/_runlog/lake.json                 the descriptor: schema version, buckets
    DEST/_runlog/state/b00042/<seq>-...json  what bucket 42 holds (sources, fingerprints)
    DEST/<table>/part-b00042.parquet       bucket 42's rows of each table

>>> build_lake([".run_log_store"], "lake", workers=2).summary()   # doctest: +SKIP
"""

from __future__ import annotations

from .build import LakeReport, build_lake, parse_shard
from .duck import LakeDB, open_lake
from .tables import LAKE_VERSION, TABLES, arrow_schema

__all__ = ["LAKE_VERSION", "LakeDB", "LakeReport", "TABLES", "arrow_schema", "build_lake", "open_lake", "parse_shard"]
