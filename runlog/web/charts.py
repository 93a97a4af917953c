"""Line charts as screen geometry for the SVG templates, drawn by the server.

A chart gets series already downsampled (:func:`runlog.index.tiles.read_series`: every
point of a short series, each bucket's lowest and highest of a long one), and draws
each as one polyline: a thin raw line, with an exponential moving average over the
bucket means on top when ``smoothing`` is set (the raw line then stays faint behind it,
so a spike is never hidden). The y axis is linear or logarithmic; markers are drawn
only on short series (hovering shows any point: runlog.js).

>>> from runlog.index.tiles import Series
>>> chart = line_chart("loss", [Line("train", Series([(0, 1.0), (1, 0.5)], [(0, 1.0, 1), (1, 0.5, 1)]))])
>>> chart["lines"][0]["raw"]
'70.0,14.0 1090.0,266.0'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..index.tiles import Series

PALETTE_SIZE = 10  # series colours rl-s0..rl-s9 in runlog.css
MARKERS_UP_TO = 60  # points in a series drawn with a marker each
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)


@dataclass
class Line:
    label: str
    series: Series
    href: str = ""  # the full series (CSV), when the page offers it


def ema(means: list[tuple[float, float, int]], weight: float) -> list[tuple[float, float]]:
    """Debiased exponential moving average (TensorBoard's) of bucket means, weighting a
    bucket of ``n`` points as ``n`` steps, so the smoothing does not change with the
    downsampling.

    >>> [round(v, 3) for _, v in ema([(0, 1.0, 1), (1, 0.0, 1), (2, 0.0, 1)], 0.5)]
    [1.0, 0.333, 0.143]
    """
    out, numerator, denominator = [], 0.0, 0.0
    for x, mean, count in means:
        keep = weight ** count
        numerator = numerator * keep + (1 - keep) * mean
        denominator = denominator * keep + (1 - keep)
        out.append((x, numerator / denominator if denominator else mean))
    return out


def line_chart(title: str, lines: list[Line], *, width: int = 1100, height: int = 300, logy: bool = False,
               smoothing: float = 0.0, x_label: str = "step", zoom: bool = False) -> dict:
    """Geometry of one chart: axes, ticks, and per line its raw and smoothed polylines;
    ``zoom`` marks a chart whose x is steps, which dragging across zooms into."""
    left, right, top, bottom = 70, 10, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    usable = [(line, [(x, y) for x, y in line.series.points if y is not None and (y > 0 or not logy)])
              for line in lines]
    xs = [x for _, pts in usable for x, _ in pts] or [0]
    ys = [y for _, pts in usable for _, y in pts] or [1.0]
    x_ticks, (x_lo, x_hi) = ticks(min(xs), max(xs), integer=True)
    y_ticks, (y_lo, y_hi) = log_ticks(min(ys), max(ys)) if logy else ticks(min(ys), max(ys))
    to_y = math.log10 if logy else float

    def sx(x: float) -> float:
        return round(left + (x - x_lo) / (x_hi - x_lo) * plot_w, 1)

    def sy(y: float) -> float:
        return round(top + plot_h - (to_y(y) - to_y(y_lo)) / (to_y(y_hi) - to_y(y_lo)) * plot_h, 1)

    def polyline(points) -> str:
        return " ".join(f"{sx(x)},{sy(y)}" for x, y in points)

    drawn, hidden = [], 0
    for index, (line, points) in enumerate(usable):
        hidden += len(line.series.points) - len(points)
        smooth = [(x, y) for x, y in ema(line.series.means, smoothing) if y > 0 or not logy] if smoothing else []
        drawn.append({
            "label": line.label, "css": f"rl-s{index % PALETTE_SIZE}", "href": line.href,
            "raw": polyline(points), "smooth": polyline(smooth), "exact": line.series.exact,
            "markers": [{"x": sx(x), "y": sy(y), "step": x, "text": fmt(y)} for x, y in points]
            if line.series.exact and len(points) <= MARKERS_UP_TO else [],
        })
    return {
        "title": title, "width": width, "height": height, "logy": logy, "smoothing": smoothing, "x_label": x_label,
        "zoom": zoom,
        "box": {"left": left, "top": top, "right": width - right, "bottom": top + plot_h},
        "domain": {"x0": x_lo, "x1": x_hi, "y0": y_lo, "y1": y_hi},
        "x_ticks": [{"pos": sx(t), "text": fmt(t)} for t in x_ticks],
        "y_ticks": [{"pos": sy(t), "text": fmt(t)} for t in y_ticks],
        "lines": drawn,
        "skipped": sum(line.series.skipped for line in lines),
        "hidden": hidden,  # points <= 0 on a log scale
    }


def ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> tuple[list[float], tuple[float, float]]:
    """Round tick values covering lo..hi, and the axis range they span."""
    if not math.isfinite(hi - lo):
        return [lo, hi], (lo, hi)
    if lo == hi and integer:
        return [lo], (lo - 1, lo + 1)
    if lo == hi:
        pad = 1.0 if lo == 0 else abs(lo) * 0.1
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    start, end = math.floor(lo / step) * step, math.ceil(hi / step) * step
    values = [start + i * step for i in range(int(round((end - start) / step)) + 1)]
    return values, (start, end)


def log_ticks(lo: float, hi: float) -> tuple[list[float], tuple[float, float]]:
    """Ticks at powers of ten (and 2 and 5 times them when the range is short) for
    positive lo..hi, and the axis range."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if last == first:
        last += 1
    multiples = (1, 2, 5) if last - first <= 2 else (1,)
    values = [m * 10 ** e for e in range(first, last + 1) for m in multiples if lo <= m * 10 ** e <= hi * 1.0001]
    return values or [10 ** first, 10 ** last], (10 ** first, 10 ** last)


def fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".4g")
