"""Numbered migrations: each upgrades an index in place from the version before it,
from the index's own tables (run logs are never re-read), inside the transaction
that :func:`runlog.index.db.ensure_schema` holds.

To change the schema: edit ``SCHEMA_SQL`` (:mod:`.schema`), bump ``SCHEMA_VERSION``,
and add ``MIGRATIONS[new_version]``, a function of the ``sqlite_utils.Database``.
sqlite-utils changes the tables (``add_column``, ``drop``, ``update``; ``transform`` for
what SQLite's ALTER TABLE cannot do); new tables come from ``SCHEMA_SQL`` itself, so that
an upgraded index and a new one have the same DDL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..models import seed_shaped_config
from .schema import SCHEMA_SQL, statements
from .writer import refill_run_tables

if TYPE_CHECKING:
    from sqlite_utils import Database


def to_version_2(db: Database) -> None:
    """Run-level names and summaries (``run_metrics``, ``run_params``, filled by the
    next migration) replace ``run_latest``; runs in the seed's shape (every run runlog
    records) are labelled g2, not g1 (magnus)."""
    for statement in statements(SCHEMA_SQL, tables=("run_metrics", "run_params")):
        db.execute(statement)
    db["run_latest"].drop(ignore=True)
    for run_id, run_config in db.execute("SELECT run_id, run_config FROM runs WHERE format = 'g1'").fetchall():
        try:
            config = json.loads(run_config or "null")
        except ValueError:
            continue
        if seed_shaped_config(config):
            db["runs"].update(run_id, {"format": "g2"})


def to_version_3(db: Database) -> None:
    """Long series get tiles (``metric_tiles``) for the charts, and ``run_metrics`` says
    how many different times a series' points carry (``timestamps``); every run's
    run-level tables are computed again from its rows."""
    if "timestamps" not in db["run_metrics"].columns_dict:  # an index of schema 2 (one of schema 1 got it just now)
        db["run_metrics"].add_column("timestamps", int)
    for statement in statements(SCHEMA_SQL, tables=("metric_tiles",)):
        db.execute(statement)
    for (run_id,) in db.execute("SELECT run_id FROM runs").fetchall():
        refill_run_tables(db.conn, run_id)


# version -> the function that upgrades an index from version - 1.
MIGRATIONS: dict[int, Callable[[Database], None]] = {2: to_version_2, 3: to_version_3}
