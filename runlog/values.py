"""Values as runlog shows them anywhere (messages, pages, exports, the terminal): counts
with their noun, one-line text, JSON-safe values, times as ISO 8601 UTC, and which
columns hold times.

>>> counted(2, "run"), one_line("a\\nb"), iso_utc_ms(0)
('2 runs', 'a\\\\nb', '1970-01-01T00:00:00.000Z')
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from decimal import Decimal
from typing import Any

# Columns of the index that hold a time as text (naive times are UTC), and those that
# hold epoch milliseconds.
TIME_COLUMNS = frozenset({"start_time", "end_time", "ingested_at", "seen_at"})
EPOCH_MS_COLUMNS = frozenset({"timestamp_ms", "timestamp"})

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
