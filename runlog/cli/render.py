r"""Rows as text for the terminal: table, json, csv, tsv or nl (newline-delimited JSON),
the same way for every command (``--format``), and one run's step tree (``runlog show``).

JSON output is strict JSON: NaN and infinities, which JSON has no literal for,
are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. TSV never
quotes: a tab, line break, carriage return or backslash inside a value is written
``\t``, ``\n``, ``\r``, ``\\``, so every line is one row and ``cut -f`` works.

>>> print(render([{"a": 1, "b": float("nan")}], "json"))
[
  {
    "a": 1,
    "b": "NaN"
  }
]
>>> print(render([{"id": 'say "hi"\tthere'}], "tsv"))
id
say "hi"\tthere
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from ..values import EPOCH_MS_COLUMNS, TIME_COLUMNS, iso_utc, iso_utc_ms, json_safe, one_line

FORMATS = ("table", "json", "csv", "tsv", "nl")
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def render(rows: Iterable[dict[str, Any]], fmt: str = "table", columns: Sequence[str] | None = None,
           headers: bool = True) -> str:
    """Rows (dicts) as text in one of :data:`FORMATS`.

    ``table`` is for reading: times as ISO 8601 UTC, floats to 7 significant digits.
    ``json``, ``nl``, ``csv`` and ``tsv`` are for scripts: every digit, times as stored.
    ``headers=False`` leaves out the header line of table, csv and tsv.
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    if fmt == "json":
        return json.dumps([json_safe(r) for r in rows], indent=2, allow_nan=False)
    if fmt == "nl":
        return "\n".join(json.dumps(json_safe(r), allow_nan=False) for r in rows)
    if fmt == "tsv":
        lines = [columns] if headers else []
        lines += [[_exact(row.get(c)) for c in columns] for row in rows]
        return "\n".join("\t".join(tsv_cell(cell) for cell in line) for line in lines)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if headers:
            writer.writerow(columns)
        for row in rows:
            writer.writerow([_exact(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    return table(rows, columns, headers)


def tsv_cell(text: str) -> str:
    r"""A TSV field: backslash, tab, line feed and carriage return escaped, nothing quoted.

    >>> tsv_cell('a\tb "c"\\d')
    'a\\tb "c"\\\\d'
    """
    return text.translate(_TSV_ESCAPES)


def _exact(value: Any) -> str:
    """A cell for csv/tsv: every digit (the shortest text that reads back as the same float)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json_safe(value)
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value))
    if isinstance(value, (datetime, date, dtime, Decimal)):
        return str(json_safe(value))
    return str(value)


def _readable(value: Any, column: str) -> str:
    """A cell for the table: times as ISO 8601 UTC, floats to 7 significant digits."""
    if value is None:
        return ""
    if column in EPOCH_MS_COLUMNS or column.endswith("_time_ms"):
        return iso_utc_ms(value)
    if column in TIME_COLUMNS or column.endswith("_time"):
        return iso_utc(value)
    if isinstance(value, float):
        return format(value, ".7g") if math.isfinite(value) else json_safe(value)
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe(value))
    if isinstance(value, Decimal):
        return format(float(value), ".7g")
    if isinstance(value, datetime):
        return iso_utc(value)
    # One cell, one line: line feeds read as spaces; a tab, a carriage return or a terminal
    # escape sequence in a hostile value is shown escaped, so it cannot break the table.
    return one_line(str(value).replace("\n", " "))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: bool = True) -> str:
    """A plain aligned text table; numbers right-aligned."""
    if not columns:
        return "(no rows)" if headers else ""
    cells = [[_readable(r.get(c), c) for c in columns] for r in rows]
    widths = [max([len(c) if headers else 0] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)
        and c not in EPOCH_MS_COLUMNS for c in columns
    ]
    lines = []
    if headers:
        lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    if not rows and headers:
        lines.append("(no rows)")
    return "\n".join(lines)


# -- one run (runlog show) --------------------------------------------------------


def render_run(detail: dict[str, Any]) -> str:
    """``show_run``'s document as text: the step tree with branches indented."""
    run = detail["run"]
    lines = [
        f"run {run['run_id']}  status {run['status']}  tag {run['tag'] or '-'}  format {run['format']} {run['layout']}",
        f"start {_time(run['start_time'])}  end {_time(run['end_time'])}  duration {_seconds(run['duration_s'])}",
    ]
    if run.get("original_run_id"):
        lines.append(f"retry of {run['original_run_id']} (use_cached={bool(run['use_cached'])})")
    lines.append(f"source {run['source_path']}")
    if run["parameters"]:
        lines.append("parameters")
        lines += [f"  {p['key']} = {_short(p['value'])}  ({p['kind']})" for p in run["parameters"]]
    lines.append("steps")
    level: dict[str, int] = {}
    last_branch = ""
    for step in detail["steps"]:
        branch = step["branch"]
        parent = _owner(branch, level)
        depth = level[parent] + 1 if parent is not None else 0
        level[step["step_name"]] = depth
        if branch and branch != last_branch:
            lines.append("  " + "    " * (depth - 1) + f"  branch {branch}")
        last_branch = branch
        pad = "  " + "    " * depth
        mock = "  (mock)" if step["mock"] else ""
        lines.append(f"{pad}{step['name']}  [{step['step_type']}]  {step['status']}{mock}")
        if step["message"]:
            lines.append(f"{pad}  message: {step['message']}")
        for a in step["attempts"]:
            retry = f"  retry {a['retry_indicator']}" if a["retry_indicator"] else ""
            lines.append(f"{pad}  attempt {a['attempt_number']}  {a['status']}  {_time(a['start_time'])}  "
                         f"{_seconds(a['duration_s'])}{retry}")
            for p in step["params"]:
                if p["attempt_number"] == a["attempt_number"]:
                    lines.append(f"{pad}    {p['direction']} {p['key']} = {_short(p['value'])}")
    lines.append("metrics")
    if detail["metrics"]:
        columns = ["name", "kind", "points", "last_step", "last", "min", "argmin", "max", "argmax", "mean"]
        lines += ["  " + line for line in table(detail["metrics"], columns).splitlines()]
    else:
        lines.append("  (none)")
    return "\n".join(lines)


def _owner(branch: str, level: dict[str, int]) -> str | None:
    """The step a branch belongs to: the longest step name that prefixes it."""
    if not branch:
        return None
    best = None
    for name in level:
        if branch.startswith(name + ".") and (best is None or len(name) > len(best)):
            best = name
    return best


def _time(value: str | None) -> str:
    return iso_utc(value) if value else "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."
