"""Render rows as table, json, csv, tsv or nl (newline-delimited JSON), the same way everywhere.

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
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from decimal import Decimal
from typing import Any

FORMATS = ("table", "json", "csv", "tsv", "nl")


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")


def counted(count: int, noun: str) -> str:
    """``1 run``, ``2 runs``: a count and its noun, plural unless one."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def one_line(text: str) -> str:
    r"""``text`` with control characters, line breaks and lone surrogates escaped, so that
    a message about a hostile file or key name stays one printable line.

    >>> one_line("a\nb\x00c")
    'a\\nb\\x00c'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


def json_safe(value: Any) -> Any:
    """Replace non-finite floats (at any depth) by the strings JSON parsers accept; times
    (a lake's timestamps) by ISO 8601 text, decimals by floats."""
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


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
    if fmt in ("csv", "tsv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", **({"delimiter": "\t"} if fmt == "tsv" else {}))
        if headers:
            writer.writerow(columns)
        for row in rows:
            writer.writerow([_exact(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    return table(rows, columns, headers)


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
    return str(value).replace("\n", " ")


TIME_COLUMNS = {"start_time", "end_time", "ingested_at", "seen_at"}
EPOCH_MS_COLUMNS = {"timestamp_ms", "timestamp"}


def iso_utc(value: Any) -> str:
    """A run-log time (naive times are UTC, as everywhere in runlog) as ISO 8601 UTC,
    to the millisecond; anything that is not a time is shown as it is.

    >>> iso_utc("2026-11-26 09:27:35.361541"), iso_utc("2026-12-01T10:00:00+01:00")
    ('2026-11-26T09:27:35.361Z', '2026-12-01T09:00:00.000Z')
    """
    if isinstance(value, datetime):
        moment = value
    elif not isinstance(value, str):
        return str(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def iso_utc_ms(value: Any) -> str:
    """Epoch milliseconds as ISO 8601 UTC.

    >>> iso_utc_ms(1795685261802)
    '2026-11-26T09:27:41.802Z'
    """
    if isinstance(value, datetime):  # a lake's timestamp_ms
        return iso_utc(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    try:
        moment = datetime(1970, 1, 1) + timedelta(milliseconds=value)
    except OverflowError:
        return str(value)
    return moment.isoformat(timespec="milliseconds") + "Z"


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
