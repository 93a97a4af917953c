"""Long series at any size: what a chart reads instead of every point.

A chart has about one point per pixel column, so a curve of a million steps is read
as buckets, each keeping its lowest and highest value (a spike stays visible) and its
mean (what smoothing works on). Reading every point of 300 curves of 10,000 steps
just to bucket them costs seconds, so ingest keeps **tiles**: for every numeric series
of at least ``TILED_FROM`` points, the count, sum, lowest and highest value (with
their steps) of each run of ``width`` steps, at widths 16, 64, 256... (while a series
has ``MIN_TILES`` of them: about 8% more rows than its points); a read takes the
widest tiles of which every bucket still gets one (or the points themselves, for a
short series) and folds them into buckets. Tiles hold exactly what the points hold: a
bucket has the min, max, count and mean of the points of its steps.

>>> rows = tile_rows("r", {("s", "k"): [("r", "s", "k", step, float(step % 100), None, "numeric", 0)
...                                     for step in range(10_000)]})
>>> [(width, sum(1 for t in rows if t[3] == width)) for width in (16, 64, 256, 1024)]
[(16, 625), (64, 157), (256, 40), (1024, 0)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

TILE_COLUMNS = ("run_id", "step_name", "key", "width", "tile", "count", "total", "lo", "lo_step", "hi", "hi_step",
                "first_step", "last_step")
WIDTHS = (16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
# Series shorter than this are read point by point (a few milliseconds at most).
TILED_FROM = 512
# A width is kept when the series has at least this many tiles of it.
MIN_TILES = 32


def tile_rows(run_id: str, groups: dict[tuple[str, str], list[tuple]], minimum: int = TILED_FROM) -> list[tuple]:
    """``metric_tiles`` rows (TILE_COLUMNS) of every numeric series of ``minimum`` points or
    more; ``groups`` are a run's metric rows by series (``summaries.group_series``)."""
    out: list[tuple] = []
    for (step_name, key), rows in groups.items():
        if len(rows) >= minimum:
            out += series_tiles(run_id, step_name, key, [(row[3], row[4]) for row in rows], minimum)
    return out


def series_tiles(run_id: str, step_name: str, key: str, points: Iterable[tuple[int, float | None]],
                 minimum: int = TILED_FROM) -> list[tuple]:
    """``metric_tiles`` rows of one series, from its ``(step, value)`` points in step order
    (none when it has fewer than ``minimum`` finite values)."""
    # each point as a tile of one step: (tile, count, total, lo, lo_step, hi, hi_step, first, last)
    tiles = [(step, 1, value, value, step, value, step, step, step) for step, value in points
             if value is not None and -math.inf < value < math.inf]
    if len(tiles) < minimum:
        return []
    out: list[tuple] = []
    previous = 1
    for width in WIDTHS:  # each width folds the tiles of the one before it
        tiles = merge_tiles(tiles, width // previous)
        previous = width
        if len(tiles) < MIN_TILES:
            break
        out.extend((run_id, step_name, key, width, *tile) for tile in tiles)
    return out


def merge_tiles(tiles: list[tuple], factor: int) -> list[tuple]:
    """Tiles (in step order) merged ``factor`` to one: tile ``t`` goes to ``t // factor``;
    each keeps the count, sum, lowest and highest (the first such step on ties)."""
    out = []
    current = None
    n = total = lo = lo_step = hi = hi_step = first = last = 0
    for tile, count, sum_, low, low_step, high, high_step, start, end in tiles:
        merged = tile // factor
        if merged != current:
            if current is not None:
                out.append((current, n, total, lo, lo_step, hi, hi_step, first, last))
            current, n, total, first = merged, 0, 0.0, start
            lo, lo_step, hi, hi_step = low, low_step, high, high_step
        else:
            if low < lo:
                lo, lo_step = low, low_step
            if high > hi:
                hi, hi_step = high, high_step
        n += count
        total += sum_
        last = end
    if current is not None:
        out.append((current, n, total, lo, lo_step, hi, hi_step, first, last))
    return out


# -- reading a series ------------------------------------------------------------------


@dataclass
class Series:
    """A series as a chart draws it: ``points`` ``(step, value)`` in step order (every
    point when short, else each bucket's lowest and highest); ``means`` ``(step, mean,
    count)`` per bucket (what smoothing works on); ``exact`` when nothing was folded."""

    points: list[tuple[int, float | None]] = field(default_factory=list)
    means: list[tuple[float, float, int]] = field(default_factory=list)
    exact: bool = True
    skipped: int = 0  # NaN and infinite points, not drawn


def read_series(conn, run_id: str, step_name: str, key: str, buckets: int,
                steps: tuple[int, int] | None = None) -> Series:
    """One numeric series of the index (only its steps in ``steps``, inclusive, when
    given: a zoom): every point when it has ``2 * buckets`` or fewer, else at most
    ``buckets`` buckets of its steps, each drawn as its lowest and highest point (so at
    most ``2 * buckets`` points)."""
    count, first, last = _extent(conn, run_id, step_name, key)
    if count and steps:
        first, last = max(first, steps[0]), min(last, steps[1])
        count = conn.execute(f"SELECT count(*) FROM metrics WHERE {_SERIES} AND step BETWEEN ? AND ?",
                             (run_id, step_name, key, first, last)).fetchone()[0] if first <= last else 0
    if not count:
        return Series()
    if count <= 2 * buckets:
        return _exact(conn, (run_id, step_name, key, first, last))
    span = last - first + 1
    # the widest tiles of which every bucket still gets one or more
    width = max((w for w in WIDTHS if last // w - first // w + 1 >= buckets), default=1)
    rows = _tiled(conn, (run_id, step_name, key), first, last, width) if width > 1 else []
    if not rows:  # a series ingested before it had tiles (or too short for them)
        rows = _points(conn, (run_id, step_name, key, first, last))
    return fold(rows, buckets, first, span, skipped=count - sum(row[0] for row in rows))


_SERIES = "run_id = ? AND step_name = ? AND key = ?"


def _tiled(conn, series: tuple, first: int, last: int, width: int) -> list[tuple]:
    """The tiles of ``width`` wholly inside ``first..last``, with the points of the
    partial tiles at either end."""
    inner_first, inner_end = -(-first // width), (last + 1) // width  # tiles inner_first .. inner_end - 1
    if inner_first >= inner_end:
        return []
    tiles = conn.execute(
        f"SELECT count, total, lo, lo_step, hi, hi_step, first_step, last_step FROM metric_tiles WHERE {_SERIES} "
        "AND width = ? AND tile BETWEEN ? AND ? ORDER BY tile", (*series, width, inner_first, inner_end - 1)).fetchall()
    if not tiles:
        return []
    return (_points(conn, (*series, first, inner_first * width - 1)) + tiles
            + _points(conn, (*series, inner_end * width, last)))


def _points(conn, series_range: tuple) -> list[tuple]:
    """Finite points of ``(run_id, step_name, key, first, last)`` as tiles of one step."""
    return conn.execute(
        f"SELECT 1, value, value, step, value, step, step, step FROM metrics WHERE {_SERIES} AND step BETWEEN ? AND ? "
        "AND value IS NOT NULL AND abs(value) < 9e999 ORDER BY step", series_range).fetchall()


def _extent(conn, run_id: str, step_name: str, key: str) -> tuple[int, int, int]:
    """Count and step range of a series, from its run-level summary (no scan of its points)."""
    row = conn.execute(f"SELECT count, first_step, last_step FROM run_metrics WHERE {_SERIES}",
                       (run_id, step_name, key)).fetchone()
    return tuple(row) if row else (0, 0, 0)


def _exact(conn, series_range: tuple) -> Series:
    series = Series()
    for step, value in conn.execute(f"SELECT step, value FROM metrics WHERE {_SERIES} AND step BETWEEN ? AND ? "
                                    "ORDER BY step", series_range):
        if value is None or math.isinf(value):
            series.skipped += 1
            continue
        series.points.append((step, value))
        series.means.append((step, value, 1))
    return series


def read_series_by_time(conn, run_id: str, step_name: str, key: str, buckets: int, origin_ms: int = 0) -> Series:
    """One numeric series against time: x is seconds since ``origin_ms`` (epoch ms),
    bucketed like :func:`read_series` by time (from the points: tiles are by step)."""
    rows = conn.execute("SELECT timestamp_ms, value FROM metrics WHERE run_id = ? AND step_name = ? AND key = ? "
                        "AND timestamp_ms IS NOT NULL ORDER BY timestamp_ms, step", (run_id, step_name, key)).fetchall()
    points = [(ms - origin_ms, value) for ms, value in rows if value is not None and not math.isinf(value)]
    skipped = len(rows) - len(points)
    if len(points) <= 2 * buckets:
        return Series([(ms / 1000, v) for ms, v in points], [(ms / 1000, v, 1) for ms, v in points], skipped=skipped)
    first, last = points[0][0], points[-1][0]
    folded = fold([(1, v, v, ms, v, ms, ms, ms) for ms, v in points], buckets, first, last - first + 1, skipped)
    folded.points = [(ms / 1000, v) for ms, v in folded.points]
    folded.means = [(ms / 1000, v, n) for ms, v, n in folded.means]
    return folded


def fold(rows: list[tuple], buckets: int, first: int, span: int, skipped: int = 0) -> Series:
    """Tiles (or points, as tiles of one step) into at most ``buckets`` buckets, each
    covering an equal share of the ``span`` steps from ``first``; a tile goes to the
    bucket its first step falls in. ``rows`` are ``(count, total, lo, lo_step, hi,
    hi_step, first_step, last_step)`` in step order. Each bucket keeps its lowest and
    highest point (the first such step on ties) and its mean."""
    series = Series(exact=False, skipped=skipped)
    points, means = series.points, series.means
    current = None
    n = total = lo = lo_step = hi = hi_step = start = end = 0

    def emit():
        if lo_step < hi_step:
            points.extend(((lo_step, lo), (hi_step, hi)))
        elif hi_step < lo_step:
            points.extend(((hi_step, hi), (lo_step, lo)))
        else:
            points.append((lo_step, lo))
        means.append(((start + end) / 2, total / n, n))

    for count, sum_, low, low_step, high, high_step, first_step, last_step in rows:
        bucket = max(0, first_step - first) * buckets // span
        if bucket != current:
            if current is not None:
                emit()
            current, n, total, start = bucket, 0, 0.0, first_step
            lo, lo_step, hi, hi_step = low, low_step, high, high_step
        elif low < lo:
            lo, lo_step = low, low_step
        if high > hi:
            hi, hi_step = high, high_step
        n += count
        total += sum_
        end = last_step
    if current is not None:
        emit()
    return series
