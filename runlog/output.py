"""Render rows as table, json, csv or nl (newline-delimited JSON), the same way everywhere.

JSON output is strict JSON: NaN and infinities, which JSON has no literal for,
are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

>>> print(render([{"a": 1, "b": float("nan")}], "json"))
[
  {
    "a": 1,
    "b": "NaN"
  }
]
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

FORMATS = ("table", "json", "csv", "nl")


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    r"""``text`` with control characters, line breaks and lone surrogates escaped, so that
    a message about a hostile file or key name stays one printable line.

    >>> one_line("a\nb\x00c")
    'a\\nb\\x00c'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


def json_safe(value: Any) -> Any:
    """Replace non-finite floats (at any depth) by the strings JSON parsers accept."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def render(rows: Iterable[dict[str, Any]], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """Rows (dicts) as text in one of :data:`FORMATS`."""
    rows = list(rows)
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    if fmt == "json":
        return json.dumps([json_safe(r) for r in rows], indent=2, allow_nan=False)
    if fmt == "nl":
        return "\n".join(json.dumps(json_safe(r), allow_nan=False) for r in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    return table(rows, columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".6g") if math.isfinite(value) else json_safe(value)
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value))
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table; numbers right-aligned."""
    if not columns:
        return "(no rows)"
    cells = [[_cell(r.get(c)).replace("\n", " ") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in columns
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)
