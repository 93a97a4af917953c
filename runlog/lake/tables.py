"""The lake's tables: the index's tables (same names, same columns, same rows) with
Arrow's natural types, and the buffers a bucket's rows are gathered in before they
become Arrow tables.

Types: text as ``string``, integers as ``int64``, flags (``use_cached``, ``mock``,
``code_identifier_dependable``) as ``bool``, values as ``float64``, times of the run
log (``start_time``, ``end_time``, ``ingested_at``) as ``timestamp[us, UTC]`` (naive
times in a log are UTC, as everywhere in runlog; a time that does not parse is null),
``timestamp_ms`` as ``timestamp[ms, UTC]``, JSON (``parameters``, ``run_config``,
``value_text`` of kind json) as strings holding strict JSON.

>>> LAKE_VERSION
1
>>> arrow_schema("metrics").field("timestamp_ms").type
TimestampType(timestamp[ms, tz=UTC])
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..index import flatten, summaries
from ..index.points import MetricPoints, PlainSeries
from ..models import parse_time
from ..values import TIME_COLUMNS

# The lake's schema version, in every file's metadata and in the lake's descriptor.
# A change to the columns or their types bumps it (a lake of another version is refused).
LAKE_VERSION = 1

COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": flatten.RUN_COLUMNS,
    "steps": flatten.STEP_COLUMNS,
    "attempts": flatten.ATTEMPT_COLUMNS,
    "params": flatten.PARAM_COLUMNS,
    "metrics": flatten.METRIC_COLUMNS,
    "catalog": flatten.CATALOG_COLUMNS,
    "code_identities": flatten.CODE_IDENTITY_COLUMNS,
    "run_metrics": summaries.RUN_METRIC_COLUMNS,
    "run_params": summaries.RUN_PARAM_COLUMNS,
}
TABLES = tuple(COLUMNS)

_BOOL = {"use_cached", "mock", "code_identifier_dependable"}
_INT = {"attempt_number", "position", "step", "count", "first_step", "last_step", "argmin", "argmax", "timestamps"}
_FLOAT = {"duration_s", "value", "first", "last", "min", "max", "mean"}
_EPOCH_MS = {"timestamp_ms"}
# Rows of a file come run by run, runs in name order (so row groups prune by run_id);
# the run-level tables are sorted by name, what leaderboards and filters ask for.
SORT_KEYS = {"run_metrics": ("name", "run_id"), "run_params": ("name", "run_id")}


def arrow_type(column: str):
    import pyarrow as pa

    if column in _BOOL:
        return pa.bool_()
    if column in _INT:
        return pa.int64()
    if column in _FLOAT:
        return pa.float64()
    if column in TIME_COLUMNS:  # text in the log: parsed, UTC
        return pa.timestamp("us", tz="UTC")
    if column in _EPOCH_MS:
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


def arrow_schema(table: str):
    """The Arrow schema of one lake table, with the lake's version in its metadata."""
    import pyarrow as pa

    return pa.schema([pa.field(c, arrow_type(c)) for c in COLUMNS[table]],
                     metadata={"runlog.lake_version": str(LAKE_VERSION), "runlog.table": table})


def utc_time(text: Any) -> datetime | None:
    """A run-log time as an aware UTC datetime (naive is UTC); None when empty or not a time."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    moment = parse_time(text) if isinstance(text, str) else None
    return moment.replace(tzinfo=timezone.utc) if moment is not None else None


def _as_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


# Columns of the metrics table kept run-length encoded while a bucket is gathered: a
# series repeats its run, step, key, kind and time at every point, and Arrow turns
# runs into a column far faster than it converts one string per point.
RUN_LENGTH = {"run_id", "step_name", "key", "kind", "timestamp_ms"}


class Runs:
    """A run-length encoded column: ``values[i]`` repeated ``counts[i]`` times.

    >>> column = Runs(); column.add("a", 3); column.extend(["a", None, None]); list(column)
    ['a', 'a', 'a', 'a', None, None]
    """

    __slots__ = ("values", "counts")

    def __init__(self) -> None:
        self.values: list = []
        self.counts: list[int] = []

    def add(self, value: Any, count: int) -> None:
        if count <= 0:
            return
        if self.values:
            last = self.values[-1]
            if last is value or (type(last) is type(value) and last == value):
                self.counts[-1] += count
                return
        self.values.append(value)
        self.counts.append(count)

    def extend(self, values) -> None:
        if isinstance(values, Runs):  # its runs differ from their neighbours already: only the first may join
            if values.values:
                self.add(values.values[0], values.counts[0])
                self.values.extend(values.values[1:])
                self.counts.extend(values.counts[1:])
            return
        values = values if isinstance(values, list) else list(values)
        if not values:
            return
        if values.count(values[0]) == len(values):  # one run: a series' run, step, key...
            self.add(values[0], len(values))
            return
        # Where the value changes (in a series of dicts, the key changes at every row).
        cuts = [0, *(i for i in range(1, len(values)) if values[i] != values[i - 1]), len(values)]
        self.add(values[0], cuts[1])
        self.values.extend(values[i] for i in cuts[1:-1])
        self.counts.extend(end - start for start, end in zip(cuts[1:-1], cuts[2:]))

    def __len__(self) -> int:
        return sum(self.counts)

    def __iter__(self):
        for value, count in zip(self.values, self.counts):
            yield from [value] * count

    def to_arrow(self, kind):
        import itertools

        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.values:
            return pa.array([], type=kind)
        ends = pa.array(list(itertools.accumulate(self.counts)), type=pa.int64())
        raw_kind = pa.int64() if pa.types.is_timestamp(kind) else kind
        decoded = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, pa.array(self.values, type=raw_kind)))
        return decoded.cast(kind) if raw_kind != kind else decoded


def new_column(table: str, column: str) -> list | Runs:
    return Runs() if table == "metrics" and column in RUN_LENGTH else []


class TableBuffers:
    """One bucket's rows, as a list per column of each table (in ``COLUMNS`` order).

    Rows come in as a flattened run (:meth:`add_run`: plain series as whole columns), as
    tuples (:meth:`add_rows`, an index file's rows) or as columns (:meth:`extend`, another
    bucket's); :meth:`to_arrow` types them."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {t: [new_column(t, c) for c in COLUMNS[t]] for t in TABLES}

    def add_rows(self, table: str, rows: list[tuple]) -> None:
        if rows:
            for column, values in zip(self.columns[table], zip(*rows)):
                column.extend(values)

    def add_run(self, flat: flatten.FlatRun) -> None:
        """All rows of one run (:func:`runlog.index.flatten.flatten_json`)."""
        self.add_rows("runs", [flat.run])
        for table in ("steps", "attempts", "params", "catalog", "code_identities", "run_metrics", "run_params"):
            self.add_rows(table, getattr(flat, table))
        self.add_points(flat.points)

    def add_points(self, points: MetricPoints) -> None:
        """A run's metric points, in their order: a plain series as whole columns (no row per point)."""
        run_ids, names, keys, steps, values, texts, kinds, stamps = self.columns["metrics"]
        for part in points.parts:
            if type(part) is not PlainSeries:
                self.add_rows("metrics", part)
                continue
            n = len(part.steps)
            run_ids.add(points.run_id, n)
            names.add(part.step_name, n)
            keys.add(part.key, n)
            steps.extend(part.steps)
            values.extend(part.values or [None] * n)
            texts.extend(part.texts or [None] * n)
            kinds.add(part.kind, n)
            stamps.add(part.stamp, n)

    def extend(self, table: str, columns: list) -> None:
        for column, values in zip(self.columns[table], columns):
            column.extend(values)  # a list takes a Runs' expanded values, a Runs takes either

    def merge(self, other: TableBuffers) -> None:
        for table in TABLES:
            self.extend(table, other.columns[table])

    def rows(self, table: str) -> int:
        return len(self.columns[table][0])

    def table_rows(self, table: str) -> list[tuple]:
        """The rows of ``table`` as tuples (for tests and comparisons)."""
        return list(zip(*self.columns[table]))

    def to_arrow(self, table: str):
        """The rows of ``table`` as an Arrow table of :func:`arrow_schema` (sorted by its
        ``SORT_KEYS``, if any)."""
        import pyarrow as pa

        schema = arrow_schema(table)
        arrays = [_array(name, values) for name, values in zip(COLUMNS[table], self.columns[table])]
        result = pa.Table.from_arrays(arrays, schema=schema)
        keys = SORT_KEYS.get(table)
        if keys and result.num_rows > 1:
            result = result.sort_by([(k, "ascending") for k in keys])
        return result


def _array(column: str, values: list | Runs):
    import pyarrow as pa

    kind = arrow_type(column)
    if isinstance(values, Runs):
        return values.to_arrow(kind)
    if column in TIME_COLUMNS:  # text in the log: parsed, UTC
        return pa.array([utc_time(v) for v in values], type=kind)
    if column in _EPOCH_MS:
        return pa.array(values, type=pa.int64()).cast(kind)
    if column in _BOOL:
        return pa.array([_as_bool(v) for v in values], type=kind)
    return pa.array(values, type=kind)
