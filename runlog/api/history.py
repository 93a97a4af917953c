"""Metric histories: the points of many runs and metrics in one long table, ``run_id,
metric, step, value, time``, by run, then metric, then step.

From an index, each series is one query along the metrics' primary key, and most read
only their values: a series whose steps have no gap (its summary's count is its step
span) and whose points share one time (the step's end) gets its steps and times from
its summary, so no Python object is made for them. The run id and the metric name are
kept once per series (:class:`~.result.Repeated`), not once per point. With
``max_points``, a longer series comes as the charts draw it: the lowest and highest
point of each bucket, from the tiles ingest keeps (:func:`runlog.index.tiles.read_series`).

From a lake, DuckDB answers in one query, as Arrow columns; with ``max_points``, the
series are copied into an in-memory index (with the tiles ingest would have kept) and
read as from an index, so that both give the same points.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import timedelta

from ..errors import UsageProblem
from ..index.schema import INSERT, SCHEMA_SQL
from ..index.summaries import group_series
from ..index.tiles import read_series, tile_rows
from .answers import Names, chosen_runs, names_of, run_metric_rows
from .columns import EPOCH, Column, Repeated, require
from .result import Result

HISTORY_COLUMNS = ("run_id", "metric", "step", "value", "time")
SERIES_COLUMNS = ("n.name AS metric, n.step_name, n.key, n.kind, n.count, n.first_step, n.last_step, n.timestamps, "
                  "n.timestamp_ms")
_SERIES = "run_id = ? AND step_name = ? AND key = ?"


def history(db, metrics: Names, run_ids: Names, where: str | None, steps: Sequence[int] | None,
            max_points: int | None) -> Result:
    names = names_of(metrics)
    if not names:
        raise UsageProblem("history needs one metric name or more, e.g. metrics=['loss']")
    if steps is not None and (len(steps) != 2 or not all(isinstance(s, int) for s in steps)):
        raise UsageProblem(f"steps={steps!r}: give (first, last), two step numbers (both included)")
    if max_points is not None and (not isinstance(max_points, int) or max_points < 2):
        raise UsageProblem(f"max_points={max_points!r}: give a number of points per series, 2 or more")
    steps = tuple(steps) if steps is not None else None
    if hasattr(db, "raw"):  # a lake, in DuckDB
        series = run_metric_rows(db, SERIES_COLUMNS, names, chosen_runs(db, run_ids, where))
        for s in series:
            s["timestamp_ms"] = _epoch_ms(s["timestamp_ms"])
        if max_points is None:
            return _lake_points(db, series, names, steps)
        with contextlib.closing(_in_memory_index(db, series)) as conn:
            return _index_points(conn, series, steps, max_points)
    with _snapshot(db.conn):  # the summaries and the points of one moment, whatever ingest does
        series = run_metric_rows(db, SERIES_COLUMNS, names, chosen_runs(db, run_ids, where))
        return _index_points(db.conn, series, steps, max_points)


@contextlib.contextmanager
def _snapshot(conn) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Without the cyclic garbage collector: reading a million points makes a million row
    tuples, each of which would count towards a collection that walks every object made
    so far (twice the time of the reading itself). Nothing made here forms a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Points:
    """The long table, gathered series by series."""

    def __init__(self) -> None:
        self.run_ids, self.metrics = Repeated([], []), Repeated([], [])
        self.steps: list[int] = []
        self.values: list[float | None] = []
        self.times: list[int | None] = []

    def add(self, run_id: str, metric: str, steps, values: Sequence, times: Sequence) -> None:
        if not values:
            return
        for column, label in ((self.run_ids, run_id), (self.metrics, metric)):
            if column.values and column.values[-1] == label:
                column.counts[-1] += len(values)
            else:
                column.values.append(label)
                column.counts.append(len(values))
        self.steps += steps
        self.values += values
        self.times += times

    def result(self) -> Result:
        return Result({"run_id": Column("str", self.run_ids), "metric": Column("str", self.metrics),
                       "step": Column("int", self.steps), "value": Column("float", self.values),
                       "time": Column("time", self.times, "ms")}, len(self.steps))


def _index_points(conn, series: list[dict], steps: tuple[int, int] | None, max_points: int | None) -> Result:
    points = Points()
    with _gc_paused():
        for s in series:
            first, last = s["first_step"], s["last_step"]
            if steps is not None:
                first, last = max(first, steps[0]), min(last, steps[1])
            if first is None or first > last:
                continue
            where = (_SERIES + " AND step BETWEEN ? AND ?", (s["run_id"], s["step_name"], s["key"], first, last))
            if max_points is not None and _count(conn, s, steps, where) > max_points:
                points.add(s["run_id"], s["metric"], *_downsampled(conn, s, steps, max_points, where))
            else:
                points.add(s["run_id"], s["metric"], *_every_point(conn, s, first, last, where))
    return points.result()


def _count(conn, s: dict, steps, where: tuple[str, tuple]) -> int:
    if steps is None:
        return s["count"]
    return conn.execute(f"SELECT count(*) FROM metrics WHERE {where[0]}", where[1]).fetchone()[0]


def _every_point(conn, s: dict, first: int, last: int, where: tuple[str, tuple]) -> tuple:
    if s["count"] == s["last_step"] - s["first_step"] + 1 and s["timestamps"] == 1:
        # no gap in the steps, one time for every point: read the values alone
        values = list(itertools.chain.from_iterable(
            conn.execute(f"SELECT value FROM metrics WHERE {where[0]} ORDER BY step", where[1])))
        if len(values) == last - first + 1:
            return range(first, last + 1), values, [s["timestamp_ms"]] * len(values)
    rows = conn.execute(f"SELECT step, value, timestamp_ms FROM metrics WHERE {where[0]} ORDER BY step",
                        where[1]).fetchall()
    return tuple(zip(*rows)) if rows else ((), (), ())


def _downsampled(conn, s: dict, steps, max_points: int, where: tuple[str, tuple]) -> tuple:
    drawn = read_series(conn, s["run_id"], s["step_name"], s["key"], max_points // 2, steps).points
    chosen = [step for step, _ in drawn]
    if s["timestamps"] == 1:
        times = [s["timestamp_ms"]] * len(drawn)
    else:
        stamps: dict[int, int | None] = {}
        for start in range(0, len(chosen), 500):
            part = chosen[start:start + 500]
            stamps.update(conn.execute(f"SELECT step, timestamp_ms FROM metrics WHERE {_SERIES} AND step IN "
                                       f"({', '.join('?' * len(part))})", (*where[1][:3], *part)))
        times = [stamps.get(step) for step in chosen]
    return chosen, [value for _, value in drawn], times


# -- a lake ------------------------------------------------------------------------------

_LAKE_POINTS = """SELECT n.run_id, n.name AS metric, m.step, m.value, m.timestamp_ms AS time
FROM run_metrics n JOIN metrics m ON m.run_id = n.run_id AND m.step_name = n.step_name AND m.key = n.key
WHERE n.name IN (SELECT unnest(?)) AND n.run_id IN (SELECT unnest(?))"""


def _lake_points(lake, series: list[dict], names: list[str], steps: tuple[int, int] | None) -> Result:
    pa = require("pyarrow", "lake")
    import pyarrow.compute as pc

    run_ids = list(dict.fromkeys(s["run_id"] for s in series))
    sql, args = _LAKE_POINTS, [names, run_ids]
    if steps is not None:
        sql, args = sql + " AND m.step BETWEEN ? AND ?", [*args, *steps]
    relation = lake.raw.sql(sql, params=args)
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()  # before 1.4
    # in the order of the series (runs, then metrics), then by step
    table = table.append_column("_run", pc.index_in(table["run_id"], value_set=pa.array(run_ids, pa.string())))
    table = table.append_column("_metric", pc.index_in(table["metric"], value_set=pa.array(names, pa.string())))
    table = table.sort_by([("_run", "ascending"), ("_metric", "ascending"), ("step", "ascending")])
    types = {"run_id": pa.string(), "metric": pa.string(), "step": pa.int64(), "value": pa.float64(),
             "time": pa.timestamp("ms", "UTC")}
    kinds = {"run_id": "str", "metric": "str", "step": "int", "value": "float", "time": "time"}
    return Result({name: Column(kinds[name], table[name].cast(types[name])) for name in HISTORY_COLUMNS},
                  table.num_rows)


def _in_memory_index(lake, series: list[dict]) -> sqlite3.Connection:
    """The series of a lake in an in-memory index: their points, summaries and the tiles
    ingest would have kept (a lake keeps none)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA_SQL)
    run_ids = list(dict.fromkeys(s["run_id"] for s in series))
    names = list(dict.fromkeys(s["metric"] for s in series))
    rows = lake.raw.execute(
        "SELECT m.run_id, m.step_name, m.key, m.step, m.value, m.value_text, m.kind, epoch_ms(m.timestamp_ms) "
        "FROM run_metrics n JOIN metrics m ON m.run_id = n.run_id AND m.step_name = n.step_name AND m.key = n.key "
        "WHERE n.name IN (SELECT unnest(?)) AND n.run_id IN (SELECT unnest(?))", [names, run_ids]).fetchall()
    conn.execute("BEGIN")
    conn.executemany(INSERT["metrics"], rows)
    for run_id, run_rows in itertools.groupby(sorted(rows, key=lambda row: row[0]), key=lambda row: row[0]):
        conn.executemany(INSERT["metric_tiles"], tile_rows(run_id, group_series(run_rows)))
    conn.executemany("INSERT INTO run_metrics (run_id, name, step_name, key, kind, count, first_step, last_step, "
                     "timestamps, timestamp_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(s["run_id"], s["metric"], s["step_name"], s["key"], s["kind"], s["count"], s["first_step"],
                       s["last_step"], s["timestamps"], s["timestamp_ms"]) for s in series])
    conn.execute("COMMIT")
    return conn


def _epoch_ms(moment) -> int | None:
    """A lake's time (an aware datetime) as the index keeps it, in epoch milliseconds."""
    if moment is None or isinstance(moment, int):
        return moment
    return (moment - EPOCH) // timedelta(milliseconds=1)
