"""Numbered migrations: each upgrades an index in place from the version before it,
from the index's own tables (run logs are never re-read), inside the transaction
that :func:`runlog.index.db.ensure_schema` holds.

To change the schema: edit ``SCHEMA_SQL`` (:mod:`.schema`), bump ``SCHEMA_VERSION``,
and add ``MIGRATIONS[new_version]``, a function of the connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from ..models import seed_shaped_config
from .schema import SCHEMA_SQL, statements
from .writer import refill_run_tables


def to_version_2(conn: sqlite3.Connection) -> None:
    """Run-level names and summaries (``run_metrics``, ``run_params``, filled by the
    next migration) replace ``run_latest``; runs in the seed's shape (every run runlog
    records) are labelled g2, not g1 (magnus)."""
    for statement in statements(SCHEMA_SQL, tables=("run_metrics", "run_params")):
        conn.execute(statement)
    conn.execute("DROP TABLE IF EXISTS run_latest")
    for run_id, run_config in conn.execute("SELECT run_id, run_config FROM runs WHERE format = 'g1'").fetchall():
        try:
            config = json.loads(run_config or "null")
        except ValueError:
            continue
        if seed_shaped_config(config):
            conn.execute("UPDATE runs SET format = 'g2' WHERE run_id = ?", (run_id,))


def to_version_3(conn: sqlite3.Connection) -> None:
    """Long series get tiles (``metric_tiles``) for the charts, and ``run_metrics`` says
    how many different times a series' points carry (``timestamps``); every run's
    run-level tables are computed again from its rows."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(run_metrics)")}
    if "timestamps" not in columns:  # an index of schema 2 (one of schema 1 got it just now)
        conn.execute("ALTER TABLE run_metrics ADD COLUMN timestamps INTEGER")
    for statement in statements(SCHEMA_SQL, tables=("metric_tiles",)):
        conn.execute(statement)
    for (run_id,) in conn.execute("SELECT run_id FROM runs").fetchall():
        refill_run_tables(conn, run_id)


# version -> the function that upgrades an index from version - 1.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: to_version_2, 3: to_version_3}
