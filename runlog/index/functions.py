"""SQL functions every connection to the index has (the CLI's, and Datasette's through
the plugin): ``regexp`` for the filter language's ``x REGEXP 'pattern'``, and
``runlog_direction`` for the leaderboard's direction.

>>> normalise_direction("min"), normalise_direction(None)
('asc', 'desc')
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache

from ..errors import UsageProblem

DIRECTIONS = {"asc": "asc", "min": "asc", "desc": "desc", "max": "desc"}


def normalise_direction(direction: str | None) -> str:
    """``asc`` or ``desc`` (``min``/``max`` are their synonyms; empty means desc)."""
    if direction is None or not str(direction).strip():
        return "desc"
    found = DIRECTIONS.get(str(direction).strip().lower())
    if found is None:
        raise UsageProblem(f"direction {direction!r}: use asc or desc (min and max mean the same)")
    return found


@lru_cache(maxsize=256)
def check_pattern(pattern: str) -> re.Pattern:
    """The compiled regular expression, or a one-line :class:`UsageProblem`."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageProblem(f"regexp {pattern!r} is not a regular expression ({exc})") from None


def regexp(pattern: str | None, value) -> bool | None:
    """SQLite calls ``regexp(pattern, value)`` for ``value REGEXP pattern``."""
    if pattern is None or value is None:
        return None
    return check_pattern(str(pattern)).search(str(value)) is not None


def register(conn: sqlite3.Connection) -> None:
    conn.create_function("regexp", 2, regexp, deterministic=True)
    conn.create_function("runlog_direction", 1, normalise_direction, deterministic=True)
