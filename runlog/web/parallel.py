"""A parallel-coordinates chart as screen geometry: one vertical axis per param or
metric summary, one polyline per run across them (up to 1,000 runs), coloured by the
last axis (the first metric's best summary) from best to worst.

A numeric axis is linear, or logarithmic when its values are positive and span two
decades or more (learning rates); a text axis spaces its values evenly. A run without
a value on an axis has a gap there.

>>> chart = parallel_coordinates([{"run_id": "a", "lr": 0.1, "loss": 0.5}, {"run_id": "b", "lr": 0.01, "loss": 0.2}],
...                              [("lr", "lr", False), ("loss", "min loss", True)])
>>> [line["run_id"] for line in chart["lines"]], len(chart["axes"])
(['a', 'b'], 2)
"""

from __future__ import annotations

import math
from typing import Any

from .charts import fmt

SHADES = 5  # colour classes rl-q0 (best) .. rl-q4 (worst) in runlog.css


def parallel_coordinates(rows: list[dict[str, Any]], axes: list[tuple[str, str, bool]], width: int = 1100,
                         height: int = 320) -> dict[str, Any]:
    """``axes`` are ``(column, label, lower_is_better)``; rows hold ``run_id`` and the columns."""
    left, right, top, bottom = 40, 40, 24, 30
    span = max(1, len(axes) - 1)
    placed = []
    for index, (column, label, lower) in enumerate(axes):
        x = round(left + index * (width - left - right) / span, 1)
        scale = _scale([row.get(column) for row in rows], top, height - bottom)
        placed.append({"column": column, "label": label, "x": x, "lower": lower, **scale})
    lines = []
    colour_axis = placed[-1] if placed else None
    for row in rows:
        segments, current = [], []
        for axis in placed:
            y = axis["y"](row.get(axis["column"]))
            if y is None:
                if len(current) > 1:
                    segments.append(current)
                current = []
            else:
                current.append(f"{axis['x']},{y}")
        if len(current) > 1:
            segments.append(current)
        lines.append({"run_id": row["run_id"], "segments": [" ".join(s) for s in segments],
                      "css": _shade(colour_axis, row) if colour_axis else "rl-q2",
                      "title": row["run_id"] + "".join(f", {a['label']} {_text(row.get(a['column']))}" for a in placed)})
    for axis in placed:
        for private in ("y", "range", "to"):
            axis.pop(private, None)
    return {"width": width, "height": height, "axes": placed, "lines": lines, "top": top, "bottom": height - bottom}


def _scale(values: list[Any], top: float, bottom: float) -> dict[str, Any]:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    texts = sorted({str(v) for v in values if v is not None and not isinstance(v, (int, float))})
    if texts or not numbers:
        order = {text: i for i, text in enumerate(texts)}
        step = (bottom - top) / max(1, len(texts) - 1)

        def place_text(value):
            return None if value is None or str(value) not in order else round(bottom - order[str(value)] * step, 1)

        return {"y": place_text, "ticks": [{"y": place_text(t), "text": t} for t in texts[:12]], "kind": "text"}
    lo, hi = min(numbers), max(numbers)
    log = lo > 0 and hi / lo >= 100
    to = math.log10 if log else float
    a, b = to(lo), to(hi)

    def place(value):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or (log and value <= 0):
            return None
        return round(bottom - (0.5 if a == b else (to(value) - a) / (b - a)) * (bottom - top), 1)

    marks = sorted({lo, hi} | ({10 ** e for e in range(math.ceil(a), math.floor(b) + 1)} if log else set()))
    return {"y": place, "ticks": [{"y": place(m), "text": fmt(m)} for m in marks], "kind": "log" if log else "linear",
            "range": (a, b), "to": to}


def _shade(axis: dict[str, Any], row: dict[str, Any]) -> str:
    """rl-q0 for the best values of the colouring axis, rl-q4 for the worst, rl-qn without one."""
    value = row.get(axis["column"])
    if "range" not in axis or axis["y"](value) is None:
        return "rl-qn"
    (a, b), to = axis["range"], axis["to"]
    goodness = 0.5 if a == b else (to(value) - a) / (b - a)
    if axis["lower"]:
        goodness = 1 - goodness
    return f"rl-q{min(SHADES - 1, int((1 - goodness) * SHADES))}"


def _text(value: Any) -> str:
    return "-" if value is None else fmt(value) if isinstance(value, float) else str(value)
