"""Charts as screen geometry for the SVG templates: axes with round ticks, and one
polyline per series. Drawn by the server, so pages need no charting code.

>>> chart = svg_chart("loss", [("train", [(0, 1.0), (1, 0.5)])])
>>> chart["series"][0]["path"]
'74.0,16.0 534.0,204.0'
"""

from __future__ import annotations

import math

PALETTE_SIZE = 8  # series colours rl-s0..rl-s7 in runlog.css


def svg_chart(key: str, series: list[tuple[str, list[tuple[int, float | None]]]],
              width: int = 560, height: int = 240) -> dict:
    """Screen geometry for a line chart of value against step; the template draws it.

    Points that are NaN or infinite are counted in ``skipped`` and not drawn.

    >>> chart = svg_chart("loss", [("train", [(0, 1.0), (1, 0.5), (2, float("nan"))])])
    >>> [(p["step"], p["value"]) for p in chart["series"][0]["points"]], chart["skipped"]
    ([(0, 1.0), (1, 0.5)], 1)
    """
    left, right, top, bottom = 64, 16, 16, 36
    inset = 10  # keeps the first and last marks off the axes
    finite = [(label, [(s, v) for s, v in pts if v is not None and math.isfinite(v)]) for label, pts in series]
    skipped = sum(len(pts) for _, pts in series) - sum(len(pts) for _, pts in finite)
    xs = [s for _, pts in finite for s, _ in pts] or [0]
    ys = [v for _, pts in finite for _, v in pts] or [0.0]
    x_ticks, (x_lo, x_hi) = _ticks(min(xs), max(xs), integer=True)
    y_ticks, (y_lo, y_hi) = _ticks(min(ys), max(ys))
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x):
        return round(left + inset + (x - x_lo) / (x_hi - x_lo) * (plot_w - 2 * inset), 2)

    def sy(y):
        return round(top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h, 2)

    drawn = []
    for index, (label, pts) in enumerate(finite):
        points = [{"x": sx(s), "y": sy(v), "step": s, "value": v, "text": _fmt(v)} for s, v in pts]
        drawn.append({
            "label": label,
            "css": f"rl-s{index % PALETTE_SIZE}",
            "points": points,
            "path": " ".join(f"{p['x']},{p['y']}" for p in points),
        })
    return {
        "key": key,
        "width": width,
        "height": height,
        "box": {"left": left, "top": top, "right": width - right, "bottom": top + plot_h},
        "x_ticks": [{"pos": sx(t), "text": _fmt(t)} for t in x_ticks],
        "y_ticks": [{"pos": sy(t), "text": _fmt(t)} for t in y_ticks],
        "series": drawn,
        "count": sum(len(s["points"]) for s in drawn),
        "skipped": skipped,
    }


def _ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> tuple[list[float], tuple[float, float]]:
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
    ticks = [start + i * step for i in range(int(round((end - start) / step)) + 1)]
    return ticks, (start, end)


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".4g")
