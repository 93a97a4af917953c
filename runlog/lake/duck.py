"""SQL over a lake with DuckDB: the lake's tables as views over its Parquet files, the
index's derived views (``step_latest``, ``latest_metrics``, ``run_summary``) and its
function ``runlog_direction``, so that the named queries of
:mod:`runlog.index.queries` and ``runlog query`` SQL run unchanged.

Only SELECT statements run (``EXPLAIN`` too): DuckDB tells each statement's type
before it runs, so COPY, ATTACH, INSTALL, SET, CREATE... are refused. Object storage
is read through the same fsspec filesystem as the lake was written with.

>>> with open_lake("lake") as db:                                     # doctest: +SKIP
...     run_sql(db, "select count(*) from metrics")
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import MissingExtra, RunlogError
from ..index.functions import DIRECTIONS
from .dest import LakeDest
from .state import read_descriptor
from .tables import TABLES, arrow_schema

_DIRECTION_CASES = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in DIRECTIONS.items())
VIEWS = f"""
CREATE MACRO runlog_direction(d) AS CASE WHEN d IS NULL OR trim(CAST(d AS VARCHAR)) = '' THEN 'desc'
    ELSE CASE lower(trim(CAST(d AS VARCHAR))) {_DIRECTION_CASES}
    ELSE error('direction ' || CAST(d AS VARCHAR) || ': use asc or desc (min and max mean the same)') END END;
CREATE VIEW step_latest AS
SELECT run_id, step_name, key, step, value, value_text, kind, timestamp_ms FROM metrics
QUALIFY row_number() OVER (PARTITION BY run_id, step_name, key ORDER BY step DESC) = 1;
CREATE VIEW latest_metrics AS
SELECT run_id, step_name, key, step, value, value_text, kind FROM step_latest;
CREATE VIEW run_summary AS
SELECT r.run_id, r.tag, r.status, r.start_time, r.duration_s,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id) AS steps,
    (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id AND s.status = 'FAIL') AS failed_steps
FROM runs r;
"""
# A :name parameter (SQLite's style, as the named queries write them), outside quotes and casts.
_PARAM = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(?<![:\w]):([A-Za-z_]\w*)""")


def to_duckdb_params(sql: str) -> str:
    """``:name`` -> ``$name`` outside string literals and quoted names (``::`` casts stay).

    >>> to_duckdb_params("select ':x', a::int from t where b = :x")
    "select ':x', a::int from t where b = $x"
    """
    return _PARAM.sub(lambda m: m.group(1) or f"${m.group(2)}", sql)


class LakeDB:
    """A read-only DuckDB connection over a lake; ``conn`` answers as the index's does."""

    def __init__(self, dest: str, endpoint_url: str | None = None):
        try:
            import duckdb
        except ImportError:
            raise MissingExtra("lake", "duckdb") from None
        self.duckdb = duckdb
        self.lake = LakeDest(dest, endpoint_url)
        if not self.lake.remote and not self.lake.path.is_dir():
            raise RunlogError(f"no lake at {self.lake.url}: build one with `runlog lake build STORE {dest}`")
        read_descriptor(self.lake)
        self.raw = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                      "autoload_known_extensions": False})
        if self.lake.remote:
            self.raw.register_filesystem(_read_ahead(self.lake.storage.fs))
        for table in TABLES:
            self._table_view(table)
        self.raw.execute(VIEWS)
        self.conn = _Conn(self)

    def _table_view(self, table: str) -> None:
        prefix = table
        files = [k for k in self.lake.list(prefix) if k.endswith(".parquet")]
        if not files:  # no run yet: an empty table of the lake's schema
            import pyarrow as pa

            empty = pa.Table.from_batches([], schema=arrow_schema(table))
            self.raw.from_arrow(empty).create_view(f"_empty_{table}")
            self.raw.execute(f"CREATE VIEW {table} AS SELECT * FROM _empty_{table}")
            return
        paths = [self._path(k) for k in files]
        listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        self.raw.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}])")

    def typed_sql(self, kind: str, name: str) -> str:
        """The SQL of a param's value, or a metric's last value, over a ``run_params`` or
        ``run_metrics`` row aliased ``{a}``. SQLite gives each cell its own type (see
        ``PARAM_SQL`` and ``SUMMARY_SQL`` in :mod:`runlog.index.runs`); a DuckDB column has
        one, chosen by what the name holds across runs: integers (a param), numbers, or
        text where any run's value is text (numbers then as text, as the API shows a
        column of both in SQLite)."""
        if kind == "param":
            if self._any("run_params", name, "value IS NULL AND text IS NOT NULL"):
                return "{a}.text"  # a number's text is its JSON: what str() gives in Python
            floats = self._any("run_params", name, "value IS NOT NULL AND NOT (regexp_full_match(text, '-?[0-9]+') "
                                                   "AND length(text) <= 18)")
            return "{a}.value" if floats else "CAST({a}.text AS BIGINT)"
        if not self._any("run_metrics", name, "last IS NULL AND kind != 'numeric'"):
            return "{a}.last"
        return ("CASE WHEN {a}.last IS NOT NULL THEN CAST({a}.last AS VARCHAR) "
                "WHEN {a}.kind != 'numeric' THEN {a}.last_text END")

    def _any(self, table: str, name: str, condition: str) -> bool:
        return self.raw.execute(f"SELECT 1 FROM {table} WHERE name = ? AND {condition} LIMIT 1",
                                [name]).fetchone() is not None

    def _path(self, key: str) -> str:
        if not self.lake.remote:
            return str(self.lake.path / key)
        return f"{self.lake.storage.protocol}://{self.lake.storage.path(key)}"

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> LakeDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Conn:
    """What :func:`runlog.index.queries.run_sql` and the name lookups ask of ``db.conn``:
    ``execute(sql, params)`` with ``?`` or ``:name`` parameters, a cursor back."""

    def __init__(self, db: LakeDB):
        self.db = db

    def execute(self, sql: str, params: Any = ()) -> _Cursor:
        duckdb = self.db.duckdb
        sql = to_duckdb_params(sql)
        try:
            statements = self.db.raw.extract_statements(sql)
        except duckdb.Error as exc:
            raise RunlogError(f"SQL error: {_first_line(exc)}") from None
        allowed = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
        for statement in statements:
            if statement.type not in allowed:
                raise RunlogError(f"refused: queries over a lake are read-only, and this statement is a "
                                  f"{statement.type.name} (the lake changes only through `runlog lake build`)")
        if isinstance(params, dict):
            params = {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}\b", sql)}
        try:
            cursor = self.db.raw.execute(sql, params or None)
        except duckdb.Error as exc:
            raise RunlogError(f"SQL error: {_first_line(exc)}") from None
        return _Cursor(cursor)


class _Cursor:
    def __init__(self, cursor):
        self.cursor = cursor
        self.description = cursor.description

    def fetchone(self):
        return self.cursor.fetchone()

    def fetchall(self):
        return self.cursor.fetchall()

    def __iter__(self):
        while True:
            rows = self.cursor.fetchmany(10_000)
            if not rows:
                return
            yield from rows


def _read_ahead(fs):
    """The storage's filesystem, reading files in 8 MiB blocks: a small Parquet file in one GET
    (DuckDB asks for its footer, then each column chunk)."""
    import copy

    fs = copy.copy(fs)
    fs.default_block_size = 8 << 20
    fs.default_cache_type = "readahead"
    return fs


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split("\n")[0].split())


def open_lake(dest: str, endpoint_url: str | None = None) -> LakeDB:
    """The lake at ``dest`` (a folder or URL), opened read-only in DuckDB."""
    return LakeDB(str(dest), endpoint_url)
